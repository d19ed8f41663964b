//! `query`: a jq filter over a JSON value, run by jaq.

use crate::Input;
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use pipecat_plugin_sdk::{ToolError, tool};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// Longest filter accepted, in bytes.
pub const MAX_FILTER: usize = 4096;
/// Most outputs collected from one filter.
pub const MAX_OUTPUTS: usize = 10_000;

/// Arguments of `query`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct QueryArgs {
    /// A jq filter, e.g. `.items[] | select(.price > 10) | .name`.
    pub filter: String,
    /// The input the filter runs on.
    #[serde(flatten)]
    pub input: Input,
}

/// Runs a jq filter (jq syntax, e.g. `.items[] | select(.price > 10) | .name`) over JSON given as `data` or
/// `json_text`. Returns the single output value, or a JSON array when the filter yields zero or several values.
#[tool]
pub fn query(args: QueryArgs) -> Result<Value, ToolError> {
    let input = args.input.value()?;
    let mut outputs = run(&args.filter, &input)?;
    Ok(if outputs.len() == 1 {
        outputs.remove(0)
    } else {
        Value::Array(outputs)
    })
}

/// Every output of `filter` run on `input`.
pub fn run(filter: &str, input: &Value) -> Result<Vec<Value>, ToolError> {
    if filter.len() > MAX_FILTER {
        return Err(ToolError::invalid_arguments(format!(
            "filter longer than {MAX_FILTER} bytes"
        )));
    }
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(
            &arena,
            File {
                code: filter,
                path: (),
            },
        )
        .map_err(|errors| ToolError::invalid_arguments(load_errors(filter, errors)))?;
    let compiled = Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errors| {
            let names: Vec<String> = errors
                .into_iter()
                .flat_map(|(_, undefined)| undefined)
                .map(|(name, what)| {
                    format!(
                        "undefined {} `{name}` at byte {}",
                        what.as_str(),
                        offset(filter, name)
                    )
                })
                .collect();
            ToolError::invalid_arguments(format!("invalid filter: {}", names.join("; ")))
        })?;

    let text = input.to_string();
    let value = jaq_json::read::parse_single(text.as_bytes())
        .map_err(|e| ToolError::failed(format!("could not read the input: {e}")))?;
    let ctx = Ctx::<data::JustLut<Val>>::new(&compiled.lut, Vars::new([]));
    let mut outputs = Vec::new();
    for output in compiled.id.run((ctx, value)).map(unwrap_valr) {
        if outputs.len() == MAX_OUTPUTS {
            return Err(ToolError::failed(format!(
                "the filter produced more than {MAX_OUTPUTS} values"
            )));
        }
        let val = output.map_err(|e| ToolError::failed(format!("filter error: {e}")))?;
        let rendered = val.to_string();
        outputs.push(serde_json::from_str(&rendered).unwrap_or(Value::String(rendered)));
    }
    Ok(outputs)
}

/// Where `part` (a slice of `code`) starts in `code`, in bytes.
fn offset(code: &str, part: &str) -> usize {
    (part.as_ptr() as usize)
        .saturating_sub(code.as_ptr() as usize)
        .min(code.len())
}

fn load_errors(code: &str, errors: jaq_core::load::Errors<&str, ()>) -> String {
    use jaq_core::load::Error;
    let mut messages = Vec::new();
    for (_, error) in errors {
        match error {
            Error::Io(items) => messages.extend(
                items
                    .into_iter()
                    .map(|(path, why)| format!("{path}: {why}")),
            ),
            Error::Lex(items) => messages.extend(items.into_iter().map(|(expect, at)| {
                format!("expected {} at byte {}", expect.as_str(), offset(code, at))
            })),
            Error::Parse(items) => messages.extend(items.into_iter().map(|(expect, at)| {
                let found = if at.is_empty() {
                    "end of filter".to_owned()
                } else {
                    format!("`{at}`")
                };
                format!(
                    "expected {} but found {found} at byte {}",
                    expect.as_str(),
                    offset(code, at)
                )
            })),
        }
    }
    format!("invalid filter: {}", messages.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(filter: &str, input: Value) -> Result<Vec<Value>, ToolError> {
        run(filter, &input)
    }

    #[test]
    fn runs_jq_filters() {
        let doc = json!({"items": [{"name": "a", "price": 5}, {"name": "b", "price": 20}]});
        assert_eq!(
            q(".items[] | select(.price > 10) | .name", doc.clone()).unwrap(),
            [json!("b")]
        );
        assert_eq!(
            q("[.items[].price] | add", doc.clone()).unwrap(),
            [json!(25)]
        );
        assert_eq!(
            q(".items | map(.name) | join(\",\")", doc.clone()).unwrap(),
            [json!("a,b")]
        );
        assert_eq!(q(".items | length", doc).unwrap(), [json!(2)]);
        assert_eq!(
            q("keys", json!({"b": 1, "a": 2})).unwrap(),
            [json!(["a", "b"])]
        );
        assert_eq!(q("empty", json!(null)).unwrap(), Vec::<Value>::new());
        assert_eq!(
            q(".[] * 2", json!([1, 2.5])).unwrap(),
            [json!(2), json!(5.0)]
        );
    }

    #[test]
    fn query_returns_one_value_or_an_array() {
        let args = |filter: &str| QueryArgs {
            filter: filter.into(),
            input: Input {
                data: Some(json!([1, 2])),
                json_text: None,
            },
        };
        assert_eq!(query(args(".[0]")).unwrap(), json!(1));
        assert_eq!(query(args(".[]")).unwrap(), json!([1, 2]));
    }

    #[test]
    fn reports_syntax_and_name_errors_as_invalid_arguments() {
        let err = q(".a | (", json!({})).unwrap_err();
        assert!(
            matches!(&err, ToolError::InvalidArguments(m) if m.starts_with("invalid filter")),
            "{err:?}"
        );
        let err = q("nosuchfn(1)", json!({})).unwrap_err();
        assert!(
            matches!(&err, ToolError::InvalidArguments(m) if m.contains("undefined filter `nosuchfn` at byte 0")),
            "{err:?}"
        );
    }

    #[test]
    fn reports_runtime_errors_and_caps_outputs() {
        let err = q(".a", json!([1])).unwrap_err();
        assert!(
            matches!(&err, ToolError::Failed(m) if m.starts_with("filter error")),
            "{err:?}"
        );
        let err = q("repeat(1)", json!(null)).unwrap_err();
        assert!(
            matches!(&err, ToolError::Failed(m) if m.contains("more than")),
            "{err:?}"
        );
        assert!(q(&" ".repeat(MAX_FILTER + 1), json!(null)).is_err());
    }
}
