//! `keys` and `pick`: simple reshaping without a filter language.

use crate::Input;
use pipecat_plugin_sdk::{ToolError, tool};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Lists the keys of a JSON object, in their order; returns a JSON array of strings.
#[tool]
pub fn keys(args: Input) -> Result<Vec<String>, ToolError> {
    match args.value()? {
        Value::Object(map) => Ok(map.keys().cloned().collect()),
        other => Err(ToolError::failed(format!(
            "expected an object, got {}",
            kind(&other)
        ))),
    }
}

/// Arguments of `pick`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PickArgs {
    /// The object to pick from.
    #[serde(flatten)]
    pub input: Input,
    /// The keys to keep; keys the object lacks are left out.
    pub keys: Vec<String>,
}

/// Keeps only the given keys of a JSON object (or of each object of an array); returns the smaller JSON.
#[tool]
pub fn pick(args: PickArgs) -> Result<Value, ToolError> {
    let keep = |map: Map<String, Value>| -> Value {
        Value::Object(
            map.into_iter()
                .filter(|(k, _)| args.keys.contains(k))
                .collect(),
        )
    };
    match args.input.value()? {
        Value::Object(map) => Ok(keep(map)),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(map) => Ok(keep(map)),
                other => Err(ToolError::failed(format!(
                    "expected objects in the array, got {}",
                    kind(&other)
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Err(ToolError::failed(format!(
            "expected an object or an array of objects, got {}",
            kind(&other)
        ))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(value: Value) -> Input {
        Input {
            data: Some(value),
            json_text: None,
        }
    }

    #[test]
    fn lists_keys_in_order() {
        assert_eq!(keys(data(json!({"b": 1, "a": 2}))).unwrap(), ["b", "a"]);
        assert_eq!(
            keys(data(json!([1]))).unwrap_err(),
            ToolError::failed("expected an object, got an array")
        );
    }

    #[test]
    fn picks_keys_of_objects_and_arrays_of_objects() {
        let args = |value| PickArgs {
            input: data(value),
            keys: vec!["id".into(), "name".into()],
        };
        assert_eq!(
            pick(args(json!({"id": 1, "name": "a", "secret": "x"}))).unwrap(),
            json!({"id": 1, "name": "a"})
        );
        assert_eq!(
            pick(args(json!([{"id": 1, "x": 0}, {"name": "b"}]))).unwrap(),
            json!([{"id": 1}, {"name": "b"}])
        );
        assert!(pick(args(json!("text"))).is_err());
    }
}
