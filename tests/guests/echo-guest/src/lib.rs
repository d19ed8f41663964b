//! A well-behaved plugin: `echo` returns its arguments, `fail` fails politely.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "plugin",
});

use exports::pipecat::plugin::tools::{Guest, ToolError, ToolInfo};

struct Echo;

impl Guest for Echo {
    fn list_tools() -> Vec<ToolInfo> {
        vec![
            ToolInfo {
                name: "echo".into(),
                description: "Returns its arguments object unchanged.".into(),
                parameters: r#"{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}"#.into(),
            },
            ToolInfo {
                name: "fail".into(),
                description: "Always fails with the given reason.".into(),
                parameters: r#"{"type":"object","properties":{"reason":{"type":"string"}}}"#.into(),
            },
        ]
    }

    fn call_tool(name: String, arguments: String) -> Result<String, ToolError> {
        let args: serde_json::Value = serde_json::from_str(&arguments)
            .map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
        match name.as_str() {
            "echo" => {
                if !args.get("text").is_some_and(serde_json::Value::is_string) {
                    return Err(ToolError::InvalidArguments(
                        "`text` must be a string".into(),
                    ));
                }
                Ok(arguments)
            }
            "fail" => {
                let reason = args
                    .get("reason")
                    .and_then(|r| r.as_str())
                    .unwrap_or("no reason");
                Err(ToolError::Failed(reason.to_string()))
            }
            other => Err(ToolError::Failed(format!("no tool named {other}"))),
        }
    }
}

export!(Echo);
