//! Validation: every problem kind reported with its path, big documents bounded.

mod support;

use pipecat_engine::{Problem, ValidationLimits, check, parse, validate};
use serde_json::{Value, json};

fn env() -> support::TestEnv {
    support::TestEnv(support::ClosureTools::standard())
}

fn has(problems: &[Problem], path: &str, code: &str) -> bool {
    problems.iter().any(|p| p.path == path && p.code == code)
}

#[test]
fn one_document_with_many_problems_reports_all() {
    let doc = json!({
        "name": "broken",
        "colour": "red",
        "nodes": [
            {"id": "a", "type": "llm", "provider": "nope", "model": "m", "prompt": "{{ input", "tools": ["weather.get_weather", "ghost.tool", "notareference"]},
            {"id": "a", "type": "template", "template": "x"},
            {"id": "b", "type": "teleport"},
            {"id": "c", "type": "template", "template": "ok", "extra": 1},
            {"type": "template", "template": "no id"},
            {"id": "d", "type": "llm", "provider": "openai", "model": "m", "prompt": "hi", "output_schema": {"type": "not-a-type"}},
            {"id": "cond", "type": "condition"},
            {"id": "r", "type": "router", "provider": "openai", "model": "m"},
            {"id": "t", "type": "tool", "tool": "ghost.tool", "arguments": {"x": "{{ nodes.nowhere.output }}"}},
            {"id": "loop1", "type": "template", "template": "1"},
            {"id": "loop2", "type": "template", "template": "2"}
        ],
        "edges": [
            {"from": "a", "to": "zzz"},
            {"from": "r", "to": "d"},
            {"from": "loop1", "to": "loop2"},
            {"from": "loop2", "to": "loop1"},
            {"from": "d", "to": "t", "condition": "true"}
        ],
        "output": "loop2"
    });
    let problems = match check(&doc, &env(), &ValidationLimits::default()) {
        Ok(_) => panic!("a broken document was accepted"),
        Err(problems) => problems,
    };
    let expected = [
        ("colour", "unknown_field"),
        ("nodes[1].id", "duplicate_id"),
        ("nodes[2].type", "unknown_node_type"),
        ("nodes[3].extra", "unknown_field"),
        ("nodes[4].id", "missing_id"),
        ("edges[0].to", "unknown_node"),
        ("edges", "cycle"),
        ("output", "output_unreachable"),
        ("nodes[0].tools[2]", "invalid_tool_reference"),
        ("nodes[6]", "condition_without_edges"),
        ("edges[1].description", "router_edge_without_description"),
        ("edges[4]", "unexpected_edge_condition"),
        ("nodes[0].provider", "unknown_provider"),
        ("nodes[0].tools[1]", "unresolved_tool"),
        ("nodes[8].tool", "unresolved_tool"),
    ];
    let missing: Vec<_> = expected
        .iter()
        .filter(|(path, code)| !has(&problems, path, code))
        .collect();
    assert!(missing.is_empty(), "missing {missing:?} in {problems:#?}");
    // The resolvable tool is not reported.
    assert!(
        !problems.iter().any(|p| p.path == "nodes[0].tools[0]"),
        "{problems:#?}"
    );
    // Problems serialize with path, code, message.
    let value = serde_json::to_value(&problems[0]).expect("serialize");
    assert!(
        value.get("path").is_some()
            && value.get("code").is_some()
            && value.get("message").is_some()
    );
}

#[test]
fn templates_schemas_and_references_are_compiled() {
    // Without the structural problems above (which stop compilation), template and schema errors show.
    let doc = json!({
        "name": "templates",
        "nodes": [
            {"id": "a", "type": "llm", "provider": "openai", "model": "m", "prompt": "{{ input", "system": "{% if %}"},
            {"id": "s", "type": "llm", "provider": "openai", "model": "m", "prompt": "x", "output_schema": {"type": "not-a-type"}},
            {"id": "t", "type": "tool", "tool": "text.uppercase", "arguments": {"text": "{{ nodes.later.output }}", "n": "{{ 1 + }}"}},
            {"id": "later", "type": "template", "template": "{{ nodes.a.output }}"},
            {"id": "c", "type": "condition"},
            {"id": "x", "type": "template", "template": "x"},
            {"id": "y", "type": "template", "template": "y"}
        ],
        "edges": [
            {"from": "a", "to": "later"},
            {"from": "c", "to": "x", "condition": "input ==="},
            {"from": "c", "to": "y"}
        ],
        "output": "later"
    });
    let problems = parse(&doc).expect_err("invalid");
    for (path, code) in [
        ("nodes[0].prompt", "invalid_template"),
        ("nodes[0].system", "invalid_template"),
        ("nodes[1].output_schema", "invalid_output_schema"),
        ("nodes[2].arguments.n", "invalid_template"),
        ("nodes[2].arguments.text", "template_unknown_node"),
        ("edges[1].condition", "invalid_condition"),
        ("edges[2]", "edge_without_condition"),
    ] {
        assert!(
            has(&problems, path, code),
            "missing {path} {code} in {problems:#?}"
        );
    }
}

#[test]
fn condition_with_closing_braces_is_a_problem_not_a_panic() {
    // minijinja's expression lexer panicked on `}}` followed by more text (found by fuzz/ `workflow`).
    let doc = json!({
        "name": "braces",
        "nodes": [
            {"id": "c", "type": "condition"},
            {"id": "x", "type": "template", "template": "x"},
            {"id": "y", "type": "template", "template": "y"}
        ],
        "edges": [
            {"from": "c", "to": "x", "condition": "input }}12"},
            {"from": "c", "to": "y", "default": true}
        ],
        "output": "x"
    });
    let problems = parse(&doc).expect_err("invalid");
    assert!(
        has(&problems, "edges[0].condition", "invalid_condition"),
        "{problems:#?}"
    );
}

#[test]
fn missing_fields_and_unknown_output() {
    let doc = json!({"nodes": [{"id": "a", "type": "template"}], "output": "b"});
    let problems = parse(&doc).expect_err("invalid");
    assert!(has(&problems, "name", "missing_field"), "{problems:#?}");
    assert!(
        has(&problems, "nodes[0].template", "missing_field"),
        "{problems:#?}"
    );
    assert!(
        has(&problems, "output", "unknown_output_node"),
        "{problems:#?}"
    );
    assert!(has(
        &parse(&json!([1])).expect_err("not an object"),
        "",
        "invalid_document"
    ));
}

#[test]
fn valid_document_passes_and_env_problems_come_from_validate() {
    let doc = json!({
        "name": "ok",
        "nodes": [
            {"id": "llm_node_1", "type": "llm", "provider": "openai", "model": "gpt-4o-mini", "prompt": "{{ input }}",
             "tools": ["weather.get_weather"], "fallbacks": [{"provider": "elsewhere", "model": "m"}]},
            {"id": "reply", "type": "template", "template": "Answer: {{ nodes.llm_node_1.output }}"}
        ],
        "edges": [{"from": "llm_node_1", "to": "reply"}],
        "output": "reply",
        "plugins": {"weather": {"config": {"units": "metric"}, "allowed_hosts": ["https://api.open-meteo.com"], "limits": {"timeout_ms": 5000}}},
        "limits": {"max_steps": 10}
    });
    let workflow = parse(&doc).expect("valid");
    assert_eq!(
        workflow.doc.plugins["weather"].allowed_hosts,
        vec!["https://api.open-meteo.com".to_string()]
    );
    let problems = validate(&workflow, &env());
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(has(
        &problems,
        "nodes[0].fallbacks[0].provider",
        "unknown_provider"
    ));
    // The document round-trips through serde.
    let again: Value = serde_json::to_value(&workflow.doc).expect("serialize");
    assert!(parse(&again).is_ok());
}

#[test]
fn ten_thousand_nodes_rejected_with_a_size_problem() {
    let nodes: Vec<Value> = (0..10_000)
        .map(|i| json!({"id": format!("n{i}"), "type": "template", "template": "x"}))
        .collect();
    let edges: Vec<Value> = (1..10_000)
        .map(|i| json!({"from": format!("n{}", i - 1), "to": format!("n{i}")}))
        .collect();
    let doc = json!({"name": "huge", "nodes": nodes, "edges": edges, "output": "n9999"});
    let problems = parse(&doc).expect_err("too large");
    assert!(has(&problems, "nodes", "too_large"), "{problems:#?}");
}

#[test]
fn thousand_node_chain_is_valid() {
    let nodes: Vec<Value> = (0..1_000)
        .map(|i| {
            let template = if i == 0 {
                "{{ input }}".to_string()
            } else {
                format!("{{{{ nodes.n{}.output }}}}.", i - 1)
            };
            json!({"id": format!("n{i}"), "type": "template", "template": template})
        })
        .collect();
    let edges: Vec<Value> = (1..1_000)
        .map(|i| json!({"from": format!("n{}", i - 1), "to": format!("n{i}")}))
        .collect();
    let doc = json!({"name": "chain", "nodes": nodes, "edges": edges, "output": "n999"});
    let workflow = parse(&doc).expect("a 1,000-node chain is valid");
    assert_eq!(workflow.doc.nodes.len(), 1_000);
    // A 1,000-node cycle is found as well.
    let mut cyclic = doc.clone();
    cyclic["edges"]
        .as_array_mut()
        .expect("edges")
        .push(json!({"from": "n999", "to": "n0"}));
    assert!(has(&parse(&cyclic).expect_err("cycle"), "edges", "cycle"));
}
