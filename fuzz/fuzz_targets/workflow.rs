//! Arbitrary bytes -> workflow document parsing (`parse`) and validation (`validate`, `check`).
//!
//! Invariants: nothing panics; `check` accepts a document exactly when `parse` accepts it and `validate`
//! finds no problem in the result; every rejection carries at least one problem with a non-empty code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipecat_engine::{ToolSpec, ValidationEnv, ValidationLimits, check, parse_with, validate};
use serde_json::{Value, json};

/// Like the tests' `TestEnv`: a few tools and the providers `openai`, `anthropic`, `backup`.
struct FuzzEnv;

const TOOLS: [&str; 6] = [
    "text.uppercase",
    "weather.get_weather",
    "math.add",
    "fail.always",
    "calculator.calculate",
    "sync.meet",
];

impl ValidationEnv for FuzzEnv {
    fn tool(&self, reference: &str) -> Option<ToolSpec> {
        if !TOOLS.contains(&reference) {
            return None;
        }
        let (plugin, name) = reference.split_once('.')?;
        Some(ToolSpec {
            plugin: plugin.into(),
            name: name.into(),
            description: format!("fuzz tool {reference}"),
            parameters: json!({"type": "object"}),
        })
    }

    fn has_provider(&self, name: &str) -> bool {
        ["openai", "anthropic", "backup"].contains(&name)
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    // Smaller than the defaults so that big-document paths (`too_large`) are reachable in a short run.
    let limits = ValidationLimits {
        max_nodes: 64,
        max_edges: 256,
        max_template_len: 2048,
        max_tools_per_node: 8,
    };
    let env = FuzzEnv;
    let parsed = parse_with(&doc, &limits);
    let env_problems = match &parsed {
        Ok(workflow) => {
            for node in &workflow.doc.nodes {
                assert!(
                    workflow.node_index(&node.id).is_some(),
                    "node {:?} not indexed",
                    node.id
                );
            }
            Some(validate(workflow, &env))
        }
        Err(problems) => {
            assert!(
                !problems.is_empty(),
                "parse rejected a document without a problem"
            );
            None
        }
    };
    let checked = check(&doc, &env, &limits);
    if let Err(problems) = &checked {
        assert!(
            !problems.is_empty(),
            "check rejected a document without a problem"
        );
        assert!(problems.iter().all(|p| !p.code.is_empty()), "{problems:?}");
    }
    let parse_and_validate_ok = env_problems.as_ref().is_some_and(Vec::is_empty);
    assert_eq!(
        checked.is_ok(),
        parse_and_validate_ok,
        "check and parse+validate disagree: check {:?}, validate {env_problems:?}",
        checked.as_ref().err(),
    );
});
