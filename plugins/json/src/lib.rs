//! Pipecat plugin `json`: `query` runs a jq filter over a JSON value (with [jaq](https://github.com/01mf02/jaq),
//! a jq clone in Rust: `jaq-core`, `jaq-std` and `jaq-json`), `keys` lists an object's keys and `pick` keeps
//! some of them.
//!
//! [`jq`] compiles and runs filters with limits on filter size and output count; [`shape`] holds `keys`
//! and `pick`.

use pipecat_plugin_sdk::{ToolError, plugin};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

pub mod jq;
pub mod shape;

use jq::query;
use shape::{keys, pick};

/// The JSON input of every tool: either `data` (any JSON value) or `json_text` (JSON as a string, handy when
/// a workflow template produced it).
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct Input {
    /// The JSON value to work on.
    #[serde(default)]
    pub data: Option<Value>,
    /// The JSON value to work on, as text (used when `data` is absent).
    #[serde(default)]
    pub json_text: Option<String>,
}

impl Input {
    /// The value, from `data` or parsed from `json_text`.
    pub fn value(self) -> Result<Value, ToolError> {
        match (self.data, self.json_text) {
            (Some(_), Some(_)) => Err(ToolError::invalid_arguments(
                "give either `data` or `json_text`, not both",
            )),
            (Some(value), None) => Ok(value),
            (None, Some(text)) => serde_json::from_str(&text)
                .map_err(|e| ToolError::invalid_arguments(format!("`json_text` is not JSON: {e}"))),
            (None, None) => Err(ToolError::invalid_arguments(
                "give the JSON as `data` or as `json_text`",
            )),
        }
    }
}

plugin!(query, keys, pick);

#[cfg(test)]
mod tests {
    use super::*;
    use pipecat_plugin_sdk::PluginTools;

    #[test]
    fn lists_its_tools() {
        let names: Vec<String> = Plugin::list().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["query", "keys", "pick"]);
    }

    #[test]
    fn runs_a_query_through_the_plugin_interface() {
        let out = Plugin::call(
            "query",
            r#"{"filter": ".a.b", "data": {"a": {"b": [1, 2]}}}"#,
        )
        .unwrap();
        assert_eq!(out, "[1,2]");
        let out = Plugin::call(
            "query",
            r#"{"filter": ".[] | .name", "json_text": "[{\"name\":\"x\"},{\"name\":\"y\"}]"}"#,
        )
        .unwrap();
        assert_eq!(out, r#"["x","y"]"#);
    }

    #[test]
    fn input_needs_exactly_one_source() {
        assert!(Input::default().value().is_err());
        let both = Input {
            data: Some(Value::Null),
            json_text: Some("1".into()),
        };
        assert!(both.value().is_err());
        let bad = Input {
            data: None,
            json_text: Some("{".into()),
        };
        assert!(
            matches!(bad.value(), Err(ToolError::InvalidArguments(m)) if m.contains("not JSON"))
        );
    }
}
