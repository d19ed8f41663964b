//! A parsed, checked workflow with its templates and output schemas compiled once.

use std::collections::HashMap;

use serde_json::Value;

use crate::document::{NodeKind, WorkflowDoc};
use crate::graph::Graph;
use crate::template::Templates;
use crate::validate::Problem;

/// A workflow ready to run: the document plus compiled templates, schemas and adjacency.
///
/// Built by [`crate::parse`]; immutable afterwards, so one `Arc<Workflow>` serves every run of a published
/// version.
#[derive(Debug)]
pub struct Workflow {
    /// The document as published.
    pub doc: WorkflowDoc,
    pub(crate) templates: Templates,
    pub(crate) schemas: HashMap<usize, jsonschema::Validator>,
    pub(crate) graph: Graph,
}

impl Workflow {
    /// The node index of `id`.
    pub fn node_index(&self, id: &str) -> Option<usize> {
        self.graph.index.get(id).copied()
    }

    /// Compiles templates and schemas; every failure is a problem with its path.
    pub(crate) fn compile(doc: WorkflowDoc, graph: Graph) -> (Workflow, Vec<Problem>) {
        let mut problems = Vec::new();
        let mut templates = Templates::new();
        let mut schemas = HashMap::new();
        let text =
            |templates: &mut Templates, path: String, source: &str, problems: &mut Vec<Problem>| {
                if let Err(message) = templates.add_text(&path, source) {
                    problems.push(Problem::new(path, "invalid_template", message));
                }
            };
        for (i, node) in doc.nodes.iter().enumerate() {
            match &node.kind {
                NodeKind::Llm(llm) => {
                    text(&mut templates, prompt_name(i), &llm.prompt, &mut problems);
                    if let Some(system) = &llm.system {
                        text(&mut templates, system_name(i), system, &mut problems);
                    }
                    if let Some(schema) = &llm.output_schema {
                        match jsonschema::validator_for(schema) {
                            Ok(validator) => {
                                schemas.insert(i, validator);
                            }
                            Err(e) => problems.push(Problem::new(
                                format!("nodes[{i}].output_schema"),
                                "invalid_output_schema",
                                e.to_string(),
                            )),
                        }
                    }
                }
                NodeKind::Router(router) => {
                    text(
                        &mut templates,
                        prompt_name(i),
                        router.prompt.as_deref().unwrap_or("{{ input }}"),
                        &mut problems,
                    );
                    if let Some(system) = &router.system {
                        text(&mut templates, system_name(i), system, &mut problems);
                    }
                }
                NodeKind::Template(t) => text(
                    &mut templates,
                    format!("nodes[{i}].template"),
                    &t.template,
                    &mut problems,
                ),
                NodeKind::Tool(tool) => {
                    for (key, value) in &tool.arguments {
                        add_values(
                            &mut templates,
                            format!("nodes[{i}].arguments.{key}"),
                            value,
                            &mut problems,
                        );
                    }
                }
                NodeKind::Condition(_) => {}
            }
        }
        for (e, edge) in doc.edges.iter().enumerate() {
            if let Some(condition) = &edge.condition {
                let path = condition_name(e);
                if let Err(message) = templates.add_condition(&path, condition) {
                    problems.push(Problem::new(path, "invalid_condition", message));
                }
            }
        }
        (
            Workflow {
                doc,
                templates,
                schemas,
                graph,
            },
            problems,
        )
    }
}

fn add_values(templates: &mut Templates, path: String, value: &Value, problems: &mut Vec<Problem>) {
    match value {
        Value::String(source) => {
            if let Err(message) = templates.add_value(&path, source) {
                problems.push(Problem::new(path, "invalid_template", message));
            }
        }
        Value::Array(items) => {
            for (k, item) in items.iter().enumerate() {
                add_values(templates, format!("{path}[{k}]"), item, problems);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                add_values(templates, format!("{path}.{key}"), item, problems);
            }
        }
        _ => {}
    }
}

/// Template name of node `i`'s prompt.
pub(crate) fn prompt_name(i: usize) -> String {
    format!("nodes[{i}].prompt")
}

/// Template name of node `i`'s system prompt.
pub(crate) fn system_name(i: usize) -> String {
    format!("nodes[{i}].system")
}

/// Template name of edge `e`'s condition.
pub(crate) fn condition_name(e: usize) -> String {
    format!("edges[{e}].condition")
}
