//! Regex extraction, bounded in pattern size, compiled size and number of matches.

use pipecat_plugin_sdk::{ToolError, tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Longest pattern accepted, in bytes.
pub const MAX_PATTERN: usize = 1024;
/// Cap of the compiled program size (the regex crate's `size_limit`).
pub const MAX_COMPILED: usize = 1 << 20;
/// Most matches returned.
pub const MAX_MATCHES: usize = 1000;

/// Arguments of `regex_extract`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExtractArgs {
    /// A regular expression (Rust `regex` syntax: no look-around or back-references).
    pub pattern: String,
    /// The text to search.
    pub text: String,
}

/// One match.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Match {
    /// The whole matched text.
    pub text: String,
    /// Byte offset of the match in the text.
    pub start: usize,
    /// Capture groups in order (`null` for a group that did not take part).
    pub groups: Vec<Option<String>>,
    /// Named capture groups (`null` for one that did not take part).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub named: serde_json::Map<String, serde_json::Value>,
}

/// Result of `regex_extract`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Matches {
    /// The matches, in order.
    pub matches: Vec<Match>,
    /// Whether more matches existed than were returned.
    pub truncated: bool,
}

/// Finds every match of `pattern` (a regular expression) in the text; returns each match's text, offset
/// and capture groups (at most 1000 matches).
#[tool]
pub fn regex_extract(args: ExtractArgs) -> Result<Matches, ToolError> {
    crate::check_len(&args.text)?;
    if args.pattern.len() > MAX_PATTERN {
        return Err(ToolError::invalid_arguments(format!(
            "pattern longer than {MAX_PATTERN} bytes"
        )));
    }
    let regex = regex::RegexBuilder::new(&args.pattern)
        .size_limit(MAX_COMPILED)
        .dfa_size_limit(MAX_COMPILED)
        .build()
        .map_err(|e| ToolError::invalid_arguments(format!("invalid pattern: {e}")))?;
    let names: Vec<Option<&str>> = regex.capture_names().collect();
    let mut matches = Vec::new();
    let mut truncated = false;
    for caps in regex.captures_iter(&args.text) {
        if matches.len() == MAX_MATCHES {
            truncated = true;
            break;
        }
        let Some(whole) = caps.get(0) else { continue };
        let groups = (1..caps.len())
            .map(|i| caps.get(i).map(|m| m.as_str().to_owned()))
            .collect();
        let mut named = serde_json::Map::new();
        for (i, name) in names.iter().enumerate() {
            if let Some(name) = name {
                let value = caps
                    .get(i)
                    .map_or(serde_json::Value::Null, |m| m.as_str().into());
                named.insert((*name).to_owned(), value);
            }
        }
        matches.push(Match {
            text: whole.as_str().to_owned(),
            start: whole.start(),
            groups,
            named,
        });
    }
    Ok(Matches { matches, truncated })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(pattern: &str, text: &str) -> Result<Matches, ToolError> {
        regex_extract(ExtractArgs {
            pattern: pattern.into(),
            text: text.into(),
        })
    }

    #[test]
    fn returns_matches_groups_and_named_groups() {
        let found = extract(r"(?P<key>\w+)=(\d+)?", "a=1 b= c=3").unwrap();
        assert_eq!(found.matches.len(), 3);
        assert_eq!(found.matches[0].text, "a=1");
        assert_eq!(
            found.matches[0].groups,
            vec![Some("a".into()), Some("1".into())]
        );
        assert_eq!(found.matches[1].groups, vec![Some("b".into()), None]);
        assert_eq!(found.matches[2].start, 7);
        assert_eq!(found.matches[2].named["key"], "c");
        assert!(!found.truncated);
    }

    #[test]
    fn caps_the_number_of_matches() {
        let found = extract("a", &"a".repeat(MAX_MATCHES + 5)).unwrap();
        assert_eq!(found.matches.len(), MAX_MATCHES);
        assert!(found.truncated);
    }

    #[test]
    fn rejects_invalid_and_oversized_patterns() {
        assert!(
            matches!(extract("(", "x"), Err(ToolError::InvalidArguments(m)) if m.contains("invalid pattern"))
        );
        assert!(matches!(
            extract(&"a".repeat(MAX_PATTERN + 1), "x"),
            Err(ToolError::InvalidArguments(_))
        ));
        // A pattern whose compiled form is far over the size limit.
        assert!(matches!(
            extract(r"\w{1000}\w{1000}", "x"),
            Err(ToolError::InvalidArguments(_))
        ));
    }
}
