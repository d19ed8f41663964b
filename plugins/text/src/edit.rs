//! Truncation and replacement.

use pipecat_plugin_sdk::{ToolError, tool};
use schemars::JsonSchema;
use serde::Deserialize;

/// Arguments of `truncate`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TruncateArgs {
    /// The text to shorten.
    pub text: String,
    /// Most characters to keep, the suffix included.
    pub max_chars: usize,
    /// Appended when the text was cut (default `…`).
    #[serde(default = "default_suffix")]
    pub suffix: String,
}

fn default_suffix() -> String {
    "…".into()
}

/// Shortens the text to at most `max_chars` characters, ending with `suffix` (default `…`) when cut;
/// prefers cutting at a word boundary.
#[tool]
pub fn truncate(args: TruncateArgs) -> Result<String, ToolError> {
    crate::check_len(&args.text)?;
    let count = args.text.chars().count();
    if count <= args.max_chars {
        return Ok(args.text);
    }
    let suffix_len = args.suffix.chars().count();
    if suffix_len > args.max_chars {
        return Err(ToolError::invalid_arguments(
            "`suffix` is longer than `max_chars`",
        ));
    }
    let keep = args.max_chars - suffix_len;
    let cut: String = args.text.chars().take(keep).collect();
    let next_is_space = args.text.chars().nth(keep).is_some_and(char::is_whitespace);
    let cut = match cut.rfind(char::is_whitespace) {
        Some(at) if !next_is_space && at > 0 => cut[..at].trim_end().to_owned(),
        _ => cut.trim_end().to_owned(),
    };
    Ok(cut + &args.suffix)
}

/// Arguments of `replace`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReplaceArgs {
    /// The text to change.
    pub text: String,
    /// The exact text to look for (not a pattern).
    pub find: String,
    /// What to put instead.
    pub replacement: String,
    /// Replace at most this many occurrences (default: all).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Replaces occurrences of `find` (plain text, not a pattern) in the text with `replacement`.
#[tool]
pub fn replace(args: ReplaceArgs) -> Result<String, ToolError> {
    crate::check_len(&args.text)?;
    if args.find.is_empty() {
        return Err(ToolError::invalid_arguments("`find` must not be empty"));
    }
    let out = match args.limit {
        Some(n) => args.text.replacen(&args.find, &args.replacement, n),
        None => args.text.replace(&args.find, &args.replacement),
    };
    crate::check_len(&out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(text: &str, max_chars: usize) -> String {
        truncate(TruncateArgs {
            text: text.into(),
            max_chars,
            suffix: default_suffix(),
        })
        .unwrap()
    }

    #[test]
    fn truncates_at_word_boundaries() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("the quick brown fox", 12), "the quick…");
        assert_eq!(cut("the quick brown fox", 11), "the quick…");
        assert_eq!(cut("abcdefghij", 5), "abcd…");
        assert_eq!(cut("héllo wörld", 6), "héllo…");
        let err = truncate(TruncateArgs {
            text: "abcdef".into(),
            max_chars: 2,
            suffix: "...".into(),
        });
        assert!(matches!(err, Err(ToolError::InvalidArguments(_))));
    }

    #[test]
    fn replaces() {
        let args = |limit| ReplaceArgs {
            text: "a-b-c".into(),
            find: "-".into(),
            replacement: "+".into(),
            limit,
        };
        assert_eq!(replace(args(None)).unwrap(), "a+b+c");
        assert_eq!(replace(args(Some(1))).unwrap(), "a+b-c");
        let empty = ReplaceArgs {
            text: "x".into(),
            find: String::new(),
            replacement: "y".into(),
            limit: None,
        };
        assert!(matches!(
            replace(empty),
            Err(ToolError::InvalidArguments(_))
        ));
    }
}
