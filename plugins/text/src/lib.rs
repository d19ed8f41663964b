//! Pipecat plugin `text`: small text utilities for workflows.
//!
//! [`case`] holds case and slug conversions, [`measure`] counts, [`edit`] truncation and replacement,
//! [`extract`] regex extraction (with size limits on the pattern, the text and the matches).

use pipecat_plugin_sdk::plugin;

pub mod case;
pub mod edit;
pub mod extract;
pub mod measure;

use case::{lowercase, slugify, uppercase};
use edit::{replace, truncate};
use extract::regex_extract;
use measure::{char_count, word_count};

/// Longest input text accepted by every tool, in bytes (1 MiB, the host's output cap).
pub const MAX_TEXT: usize = 1 << 20;

/// Rejects texts over [`MAX_TEXT`].
pub(crate) fn check_len(text: &str) -> Result<(), pipecat_plugin_sdk::ToolError> {
    if text.len() > MAX_TEXT {
        return Err(pipecat_plugin_sdk::ToolError::invalid_arguments(format!(
            "text is {} bytes, more than the limit of {MAX_TEXT}",
            text.len()
        )));
    }
    Ok(())
}

plugin!(
    uppercase,
    lowercase,
    word_count,
    char_count,
    slugify,
    regex_extract,
    truncate,
    replace
);

#[cfg(test)]
mod tests {
    use super::*;
    use pipecat_plugin_sdk::PluginTools;

    #[test]
    fn lists_every_tool_with_an_object_schema() {
        let names: Vec<String> = Plugin::list().into_iter().map(|t| t.name).collect();
        assert_eq!(
            names,
            [
                "uppercase",
                "lowercase",
                "word_count",
                "char_count",
                "slugify",
                "regex_extract",
                "truncate",
                "replace"
            ]
        );
        for tool in Plugin::list() {
            let schema: serde_json::Value = serde_json::from_str(&tool.parameters).unwrap();
            assert_eq!(schema["type"], "object", "{}", tool.name);
            assert!(!tool.description.is_empty());
        }
    }

    #[test]
    fn string_results_are_returned_as_is() {
        assert_eq!(
            Plugin::call("uppercase", r#"{"text": "héllo"}"#).unwrap(),
            "HÉLLO"
        );
        assert_eq!(
            Plugin::call("word_count", r#"{"text": "a b  c"}"#).unwrap(),
            r#"{"words":3}"#
        );
    }

    #[test]
    fn rejects_oversized_text() {
        let text = "a".repeat(MAX_TEXT + 1);
        let args = serde_json::json!({ "text": text }).to_string();
        let err = Plugin::call("uppercase", &args).unwrap_err();
        assert!(
            matches!(err, pipecat_plugin_sdk::ToolError::InvalidArguments(_)),
            "{err:?}"
        );
    }
}
