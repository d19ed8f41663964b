//! Pipecat plugin `calculator`: one tool, `calculate`, evaluating arithmetic expressions such as
//! `2 * (3 + 4) ^ 2 / sqrt(16)`.
//!
//! [`lexer`] turns the text into tokens, [`parser`] evaluates them by recursive descent (with a nesting
//! limit), [`functions`] holds the named functions and constants. Errors name the 1-based character position.

use pipecat_plugin_sdk::{ToolError, plugin, tool};
use schemars::JsonSchema;
use serde::Deserialize;

mod functions;
mod lexer;
mod parser;

/// Longest expression accepted, in characters.
pub const MAX_LEN: usize = 4096;

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalcError {
    /// 1-based character position the error refers to.
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

impl CalcError {
    pub(crate) fn at(position: usize, message: impl Into<String>) -> Self {
        Self {
            position,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for CalcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at position {}", self.message, self.position)
    }
}

impl std::error::Error for CalcError {}

/// Evaluates `expression`.
pub fn evaluate(expression: &str) -> Result<f64, CalcError> {
    let len = expression.chars().count();
    if len > MAX_LEN {
        return Err(CalcError::at(
            MAX_LEN + 1,
            format!("expression longer than {MAX_LEN} characters"),
        ));
    }
    let tokens = lexer::tokenize(expression)?;
    let value = parser::evaluate(&tokens, len)?;
    if !value.is_finite() {
        return Err(CalcError::at(1, "the result is not a finite number"));
    }
    Ok(value)
}

/// `value` as JSON: a whole number without `.0` when it is exactly representable.
pub fn to_json_number(value: f64) -> serde_json::Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if value.fract() == 0.0 && value.abs() < EXACT {
        #[allow(clippy::cast_possible_truncation)]
        let whole = value as i64;
        serde_json::Value::from(whole)
    } else {
        serde_json::Value::from(value)
    }
}

/// Arguments of `calculate`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CalculateArgs {
    /// The expression, e.g. `2 * (3 + 4) ^ 2`. Operators `+ - * / % ^` (`^` is right-associative),
    /// parentheses, unary minus, decimals; functions sqrt, abs, sin, cos, tan, ln, log10, exp, floor, ceil,
    /// round, min, max, pow; constants pi and e.
    pub expression: String,
}

/// Evaluates an arithmetic expression and returns `{"result": <number>}`. Supports + - * / % ^ (power),
/// parentheses, unary minus, decimals, the functions sqrt, abs, sin, cos, tan, ln, log10, exp, floor, ceil,
/// round, min, max, pow and the constants pi and e. Trigonometric functions use radians.
#[tool]
pub fn calculate(args: CalculateArgs) -> Result<serde_json::Value, ToolError> {
    let value = evaluate(&args.expression).map_err(|e| ToolError::failed(e.to_string()))?;
    Ok(serde_json::json!({ "result": to_json_number(value) }))
}

plugin!(calculate);

#[cfg(test)]
mod tests;
