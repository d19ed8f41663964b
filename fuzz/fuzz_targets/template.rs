//! Arbitrary template text, input and node outputs -> the engine's template compile and render.
//!
//! Invariants: nothing panics, every render ends (fuel, recursion limit) and its output stays under the cap,
//! and every template that parses has its operators metered (the rewrite is never refused; a chain of more
//! than 140 operators in one expression is a syntax error of its own).
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use pipecat_engine::template::{RenderError, Templates, context};

/// Input layout: byte 0 is the kind (`% 3`: 0 text template, 1 JSON-valued template, 2 condition), bytes 1-2
/// the output cap (little endian, kept small so that the cap is often hit), then UTF-8 text split at NUL
/// bytes: the template source, the run input (JSON text, or a plain string when it does not parse), then
/// pairs of node id and node output.
struct Input<'a> {
    kind: u8,
    cap: usize,
    source: &'a str,
    input: &'a str,
    nodes: Vec<(&'a str, &'a str)>,
}

impl<'a> Input<'a> {
    fn decode(data: &'a [u8]) -> Option<Input<'a>> {
        let (&kind, rest) = data.split_first()?;
        let (cap, rest) = rest.split_first_chunk::<2>()?;
        let text = std::str::from_utf8(rest).ok()?;
        let mut parts = text.split('\0');
        let source = parts.next().unwrap_or("");
        let input = parts.next().unwrap_or("");
        let mut nodes = Vec::new();
        while let (Some(id), Some(out)) = (parts.next(), parts.next()) {
            nodes.push((id, out));
        }
        Some(Input {
            kind,
            cap: usize::from(u16::from_le_bytes(*cap)),
            source,
            input,
            nodes,
        })
    }
}

fn json_or_string(text: &str) -> minijinja::Value {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => minijinja::Value::from_serialize(&v),
        Err(_) => minijinja::Value::from(text),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::decode(data) else {
        return;
    };
    if input.source.len() > 4096 {
        return;
    }
    let mut templates = Templates::new();
    let name = "nodes[0].prompt";
    let added = match input.kind % 3 {
        0 => templates.add_text(name, input.source),
        1 => templates.add_value(name, input.source),
        _ => templates.add_condition(name, input.source),
    };
    if let Err(message) = added {
        // Refusing is for sources that do not parse; every parsed operator must be rewritten and metered.
        assert!(!message.contains("could not be checked"), "{message}");
        return;
    }
    for id in templates.referenced_nodes(name) {
        assert!(!id.is_empty());
    }
    let nodes: BTreeMap<String, minijinja::Value> = input
        .nodes
        .iter()
        .take(8)
        .map(|(id, out)| (id.to_string(), json_or_string(out)))
        .collect();
    let ctx = context(&json_or_string(input.input), &nodes);
    let cap = input.cap;
    match input.kind % 3 {
        0 => match templates.render(name, &ctx, cap) {
            Ok(text) => assert!(text.len() <= cap, "{} bytes over the cap {cap}", text.len()),
            Err(RenderError::TooLarge(c)) => assert_eq!(c, cap),
            Err(_) => {}
        },
        1 => {
            let _ = templates.render_value(name, &ctx, cap);
        }
        _ => {
            let _ = templates.eval_condition(name, &ctx);
        }
    }
});
