//! The runtime behind [`tool`](crate::tool) and [`plugin!`](crate::plugin!): describing tools, dispatching
//! calls, and exporting the WIT `tools` interface.

use crate::ToolError;
use crate::bindings::exports::pipecat::plugin::tools::Guest;
use crate::bindings::pipecat::plugin::types;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One tool of a plugin, as the [`tool`](crate::tool) attribute describes it.
#[derive(Clone, Copy)]
pub struct Tool {
    /// Name, unique within the plugin: `[a-z0-9_-]`, at most 64 characters.
    pub name: &'static str,
    /// What the tool does, shown to language models (the function's doc comment).
    pub description: &'static str,
    /// Generates the JSON Schema of the arguments object.
    pub schema: fn() -> String,
    /// Deserializes the JSON arguments, runs the function and encodes its result.
    pub call: fn(&str) -> Result<String, ToolError>,
}

impl std::fmt::Debug for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tool")
            .field("name", &self.name)
            .field("description", &self.description)
            .finish()
    }
}

/// Implemented by `#[tool]` for a hidden type named like the tool function; `plugin!` calls it.
#[doc(hidden)]
pub trait Describe {
    /// The tool's description.
    fn tool() -> Tool;
}

/// What a tool tells the host about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolInfo {
    /// The tool's name.
    pub name: String,
    /// What the tool does.
    pub description: String,
    /// JSON Schema (as JSON text) of the arguments object.
    pub parameters: String,
}

/// A set of tools; [`plugin!`](crate::plugin!) implements it for the `Plugin` struct it defines, and every
/// implementor exports the WIT `tools` interface.
pub trait PluginTools {
    /// The tools, in the order they are listed.
    fn tools() -> Vec<Tool>;

    /// Name, description and argument schema of every tool.
    fn list() -> Vec<ToolInfo> {
        Self::tools()
            .iter()
            .map(|t| ToolInfo {
                name: t.name.into(),
                description: t.description.into(),
                parameters: (t.schema)(),
            })
            .collect()
    }

    /// Calls the tool `name` with `arguments` (a JSON object, as text), as the host does.
    fn call(name: &str, arguments: &str) -> Result<String, ToolError> {
        match Self::tools().iter().find(|t| t.name == name) {
            Some(tool) => (tool.call)(arguments),
            None => Err(ToolError::InvalidArguments(format!(
                "this plugin has no tool named `{name}`"
            ))),
        }
    }
}

impl<T: PluginTools> Guest for T {
    fn list_tools() -> Vec<types::ToolInfo> {
        T::list()
            .into_iter()
            .map(|t| types::ToolInfo {
                name: t.name,
                description: t.description,
                parameters: t.parameters,
            })
            .collect()
    }

    fn call_tool(name: String, arguments: String) -> Result<String, types::ToolError> {
        T::call(&name, &arguments).map_err(Into::into)
    }
}

/// The JSON Schema of `A` as JSON text.
pub fn schema_of<A: JsonSchema>() -> String {
    let schema = schemars::schema_for!(A);
    serde_json::to_string(&schema).unwrap_or_else(|_| String::from(r#"{"type":"object"}"#))
}

/// Deserializes `arguments` into `A`, calls `f`, and encodes its result: a JSON string is returned as is,
/// any other value as JSON text. Used by the code [`tool`](crate::tool) generates.
pub fn invoke<A, R, E>(arguments: &str, f: fn(A) -> Result<R, E>) -> Result<String, ToolError>
where
    A: DeserializeOwned,
    R: Serialize,
    E: Into<ToolError>,
{
    let arguments = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    let args: A =
        serde_json::from_str(arguments).map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
    let value = f(args).map_err(Into::into)?;
    match serde_json::to_value(&value) {
        Ok(serde_json::Value::String(text)) => Ok(text),
        Ok(other) => Ok(other.to_string()),
        Err(e) => Err(ToolError::Failed(format!(
            "could not encode the result as JSON: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, JsonSchema)]
    struct Args {
        /// A number.
        n: i64,
    }

    fn text(args: Args) -> Result<String, ToolError> {
        Ok(format!("n={}", args.n))
    }

    fn json(args: Args) -> Result<serde_json::Value, ToolError> {
        Ok(serde_json::json!({ "double": args.n * 2 }))
    }

    fn fails(_: Args) -> Result<(), ToolError> {
        Err(ToolError::failed("nope"))
    }

    struct Two;

    impl PluginTools for Two {
        fn tools() -> Vec<Tool> {
            vec![
                Tool {
                    name: "text",
                    description: "Text.",
                    schema: schema_of::<Args>,
                    call: |a| invoke(a, text),
                },
                Tool {
                    name: "fails",
                    description: "Fails.",
                    schema: schema_of::<Args>,
                    call: |a| invoke(a, fails),
                },
            ]
        }
    }

    #[test]
    fn strings_are_returned_as_is_and_other_values_as_json() {
        assert_eq!(invoke(r#"{"n": 2}"#, text).unwrap(), "n=2");
        assert_eq!(invoke(r#"{"n": 2}"#, json).unwrap(), r#"{"double":4}"#);
    }

    #[test]
    fn bad_arguments_are_invalid_arguments_and_errors_pass_through() {
        assert!(
            matches!(invoke(r#"{"n": "x"}"#, text), Err(ToolError::InvalidArguments(m)) if m.contains("invalid type"))
        );
        assert!(matches!(
            invoke("not json", text),
            Err(ToolError::InvalidArguments(_))
        ));
        assert!(
            matches!(invoke("", text), Err(ToolError::InvalidArguments(m)) if m.contains("missing field `n`"))
        );
        assert_eq!(invoke(r#"{"n": 1}"#, fails), Err(ToolError::failed("nope")));
    }

    #[test]
    fn dispatches_by_name_and_lists_schemas() {
        assert_eq!(Two::call("text", r#"{"n": 5}"#).unwrap(), "n=5");
        assert_eq!(
            Two::call("fails", r#"{"n": 5}"#),
            Err(ToolError::failed("nope"))
        );
        assert!(
            matches!(Two::call("other", "{}"), Err(ToolError::InvalidArguments(m)) if m.contains("`other`"))
        );
        let list = Two::list();
        assert_eq!(
            list.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["text", "fails"]
        );
        let schema: serde_json::Value = serde_json::from_str(&list[0].parameters).unwrap();
        assert_eq!(schema["properties"]["n"]["description"], "A number.");
    }

    #[test]
    fn the_wit_export_maps_errors_to_their_variants() {
        use crate::bindings::pipecat::plugin::types::ToolError as Wit;
        assert!(
            matches!(<Two as Guest>::call_tool("fails".into(), r#"{"n":1}"#.into()), Err(Wit::Failed(m)) if m == "nope")
        );
        assert!(matches!(
            <Two as Guest>::call_tool("text".into(), "[]".into()),
            Err(Wit::InvalidArguments(_))
        ));
        assert_eq!(<Two as Guest>::list_tools().len(), 2);
    }
}
