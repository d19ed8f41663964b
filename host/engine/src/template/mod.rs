//! Templates: minijinja without a loader (no file access), with fuel, a recursion limit, an output cap and
//! a per-render byte budget.
//!
//! Every template of a workflow is compiled once, when the workflow is parsed, into one [`Templates`] set; a
//! template is named by its JSON path in the document (`nodes[2].prompt`). The render context holds `input`,
//! the fields of a JSON object input at top level, and `nodes.<id>.output` of finished nodes. Undefined
//! values are chainable (`nodes.skipped.output` renders empty). A `fromjson`
//! filter parses JSON text (e.g. a tool's result) into a value.
//!
//! # Limits
//! Fuel bounds the instructions of a render, but one instruction can do unbounded work: `range(100000) *
//! 100000000` is a lazy sequence of 10¹³ items that `sum`, `list` or `join` then walk natively, and `join`,
//! `replace`, `indent`, `tojson`, `batch` or a `{% set %}` block can build gigabytes from a few bytes. So
//! the builtin filters that walk a sequence refuse one of more than [`MAX_ITEMS`] items, and every byte a
//! render builds through an emit (`{{ … }}`, also into a block being captured), an expanding filter or an
//! operator (`~`, `+`, `*`: rewritten into calls to metered functions, see `operators.rs`) is charged to a
//! budget of [`BUDGET_FACTOR`] × the output cap (at least × [`BUDGET_FLOOR`]: a condition's output is one
//! byte, but it may compare long lists); the output cap itself is enforced as the text is written.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};

use minijinja::{
    AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior, Value,
};

/// Instructions one render may execute.
pub const TEMPLATE_FUEL: u64 = 1_000_000;
/// Nesting depth of one render.
pub const TEMPLATE_RECURSION: usize = 64;
/// Items a filter may walk in one sequence (minijinja's own cap on `range`).
pub const MAX_ITEMS: usize = 100_000;
/// Bytes a render may build (emitted or built by filters), as a multiple of its output cap.
pub const BUDGET_FACTOR: usize = 16;
/// The smallest output cap a budget is reckoned from (the default rendered-size cap, 1 MiB).
pub const BUDGET_FLOOR: usize = 1 << 20;
/// Largest width a filter may pad or indent to (`indent`, `tojson(indent=…)`, `format` widths).
const MAX_WIDTH: usize = 1_000;

/// The compiled templates of one workflow.
pub struct Templates {
    env: Environment<'static>,
    json_valued: HashSet<String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a render failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    /// The rendered text is over the cap.
    #[error("rendered text is over {0} bytes")]
    TooLarge(usize),
    /// The template ran out of fuel.
    #[error("template ran out of fuel (too much work)")]
    OutOfFuel,
    /// The template built more than its byte budget (emitted text, captured blocks, filter results).
    #[error("template builds more than {0} bytes (too much data)")]
    OverBudget(usize),
    /// Any other template error (undefined filter, type error, bad JSON for `fromjson`, …).
    #[error("{0}")]
    Failed(String),
}

impl Templates {
    /// An empty set with the engine's environment (no loader, no auto-escaping, `fromjson`, fuel).
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_recursion_limit(TEMPLATE_RECURSION);
        env.add_filter("fromjson", fromjson);
        env.set_formatter(
            |out: &mut Output<'_>, state: &State<'_, '_>, value: &Value| {
                charge(value_bytes(value)?)?;
                minijinja::escape_formatter(out, state, value)
            },
        );
        guard_builtins(&mut env);
        add_operators(&mut env);
        Templates {
            env,
            json_valued: HashSet::new(),
        }
    }

    /// Compiles a text template under `name`.
    pub fn add_text(&mut self, name: &str, source: &str) -> Result<(), String> {
        let source = meter(source)?.into_owned();
        self.env
            .add_template_owned(name.to_string(), source)
            .map_err(describe)
    }

    /// Compiles a JSON-valued template: a string that is exactly one `{{ expr }}` renders to the expression's
    /// value (keeping its JSON type); any other string renders to text.
    pub fn add_value(&mut self, name: &str, source: &str) -> Result<(), String> {
        match single_expression(source) {
            Some(expr) => {
                let expr = check_expression(&self.env, expr)?;
                self.env
                    .add_template_owned(name.to_string(), format!("{{{{ ({expr}) | tojson }}}}"))
                    .map_err(describe)?;
                self.json_valued.insert(name.to_string());
                Ok(())
            }
            None => self.add_text(name, source),
        }
    }

    /// Compiles a condition expression under `name`.
    pub fn add_condition(&mut self, name: &str, expr: &str) -> Result<(), String> {
        let expr = check_expression(&self.env, expr)?;
        self.env
            .add_template_owned(
                name.to_string(),
                format!("{{% if ({expr}) %}}1{{% endif %}}"),
            )
            .map_err(describe)
    }

    /// Renders template `name` to text of at most `cap` bytes.
    pub fn render(&self, name: &str, ctx: &Value, cap: usize) -> Result<String, RenderError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| RenderError::Failed(describe(e)))?;
        let mut out = Capped {
            buf: Vec::new(),
            cap,
        };
        let budget = cap.max(BUDGET_FLOOR).saturating_mul(BUDGET_FACTOR);
        let _budget = Budget::start(budget);
        // minijinja can panic on hostile input (an overflowing `seq * n` in debug builds, the lexer bug
        // noted at `check_expression`): a failed render, not a dead task.
        let rendered = catch_unwind(AssertUnwindSafe(|| {
            template.render_captured_to(ctx, &mut out)
        }));
        match rendered {
            _ if Budget::exhausted() => Err(RenderError::OverBudget(budget)),
            Ok(Ok(_)) => String::from_utf8(out.buf).map_err(|e| RenderError::Failed(e.to_string())),
            Ok(Err(e)) if e.kind() == ErrorKind::WriteFailure => Err(RenderError::TooLarge(cap)),
            Ok(Err(e)) if e.kind() == ErrorKind::OutOfFuel => Err(RenderError::OutOfFuel),
            Ok(Err(e)) => Err(RenderError::Failed(describe(e))),
            Err(_) => Err(RenderError::Failed(
                "the template engine failed on this template".to_string(),
            )),
        }
    }

    /// Renders a template added with [`Templates::add_value`] to a JSON value.
    pub fn render_value(
        &self,
        name: &str,
        ctx: &Value,
        cap: usize,
    ) -> Result<serde_json::Value, RenderError> {
        let text = self.render(name, ctx, cap)?;
        if self.json_valued.contains(name) {
            serde_json::from_str(&text)
                .map_err(|e| RenderError::Failed(format!("value is not JSON: {e}")))
        } else {
            Ok(serde_json::Value::String(text))
        }
    }

    /// Evaluates a condition added with [`Templates::add_condition`].
    pub fn eval_condition(&self, name: &str, ctx: &Value) -> Result<bool, RenderError> {
        Ok(self.render(name, ctx, 16)? == "1")
    }

    /// The node ids a template reads through `nodes.<id>`.
    pub fn referenced_nodes(&self, name: &str) -> Vec<String> {
        let Ok(template) = self.env.get_template(name) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = template
            .undeclared_variables(true)
            .into_iter()
            .filter_map(|var| {
                var.strip_prefix("nodes.")
                    .map(|rest| rest.split('.').next().unwrap_or("").to_string())
            })
            .filter(|id| !id.is_empty())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        ids.sort();
        ids
    }
}

/// Builds a render context from the run input and the outputs of finished nodes (`id -> output`).
pub fn context(input: &Value, nodes: &BTreeMap<String, Value>) -> Value {
    let mut top: BTreeMap<String, Value> = BTreeMap::new();
    if input.kind() == minijinja::value::ValueKind::Map
        && let Ok(iter) = input.try_iter()
    {
        for key in iter {
            if let Some(k) = key.as_str()
                && let Ok(v) = input.get_item(&key)
            {
                top.insert(k.to_string(), v);
            }
        }
    }
    let node_map: BTreeMap<&str, Value> = nodes
        .iter()
        .map(|(id, out)| (id.as_str(), Value::from_iter([("output", out.clone())])))
        .collect();
    top.insert("input".to_string(), input.clone());
    top.insert("nodes".to_string(), Value::from_iter(node_map));
    Value::from_iter(top)
}

/// `expr` when `source` is exactly one `{{ expr }}` (surrounding whitespace allowed).
fn single_expression(source: &str) -> Option<&str> {
    let inner = source.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") || inner.contains("{#")
    {
        return None;
    }
    let inner = inner.trim_start_matches('-').trim_end_matches('-');
    Some(inner.trim())
}

/// Compiles `expr` as one expression, as the template `{{ (expr) }}`, and returns it with its operators
/// metered. Never through `compile_expression`: its parser takes the longest expression at the start of the
/// text and ignores the rest, and its compiler folds constants (`("a" * 99999999) ~ …`) before anything is
/// metered. minijinja's expression lexer also panics ("empty lexer stack") on `}}` followed by more text
/// (found by fuzzing, fuzz/corpus/template/regression-empty-lexer-stack), so `}}` is rejected first, as
/// [`single_expression`] does for value templates.
fn check_expression(env: &Environment<'static>, expr: &str) -> Result<String, String> {
    const OPEN: &str = "{{ (";
    const CLOSE: &str = ") }}";
    if expr.contains("}}") {
        return Err("syntax error: unexpected `}}` in an expression".to_string());
    }
    if !closes_only_its_own(expr) {
        return Err("syntax error: unexpected `)` in an expression".to_string());
    }
    let wrapped = format!("{OPEN}{expr}{CLOSE}");
    let metered = meter(&wrapped)?;
    env.template_from_str(&metered).map_err(describe)?;
    metered
        .strip_prefix(OPEN)
        .and_then(|inner| inner.strip_suffix(CLOSE))
        .map(str::to_string)
        .ok_or_else(|| "an operator of this expression could not be checked for limits".to_string())
}

fn fromjson(text: &str) -> Result<Value, Error> {
    charge(text.len())?;
    serde_json::from_str::<serde_json::Value>(text)
        .map(Value::from_serialize)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("fromjson: {e}")))
}

fn describe(e: Error) -> String {
    match e.line() {
        Some(line) => format!(
            "{} (line {line})",
            e.detail().unwrap_or(&e.kind().to_string())
        ),
        None => e
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.kind().to_string()),
    }
}

struct Capped {
    buf: Vec<u8>,
    cap: usize,
}

impl io::Write for Capped {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.cap {
            return Err(io::Error::other("template output cap"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

mod guard;
mod operators;

use guard::{Budget, charge, guard_builtins, value_bytes};
use operators::{add_operators, closes_only_its_own, meter};
