//! A small price table for cost estimates.

use crate::types::Usage;

/// `(model prefix, USD per million input tokens, USD per million output tokens)`, longest
/// prefixes first so `gpt-4o-mini` is not priced as `gpt-4o`.
const PRICES: &[(&str, f64, f64)] = &[
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-3.5-turbo", 0.50, 1.50),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-4o", 2.50, 10.00),
    ("o4-mini", 1.10, 4.40),
    ("o3-mini", 1.10, 4.40),
    ("claude-3-5-haiku", 0.80, 4.00),
    ("claude-3-haiku", 0.25, 1.25),
    ("claude-haiku-4-5", 1.00, 5.00),
    ("claude-3-5-sonnet", 3.00, 15.00),
    ("claude-3-7-sonnet", 3.00, 15.00),
    ("claude-sonnet-4", 3.00, 15.00),
    ("claude-opus-4", 15.00, 75.00),
];

/// Estimated cost in USD of `usage` on `model`, when the model is in the table.
pub fn cost_usd(model: &str, usage: Usage) -> Option<f64> {
    let (_, input, output) = PRICES
        .iter()
        .find(|(prefix, _, _)| model.starts_with(prefix))?;
    Some((usage.input_tokens as f64 * input + usage.output_tokens as f64 * output) / 1_000_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_models() {
        let usage = Usage {
            input_tokens: 1_000_000,
            output_tokens: 1_000_000,
        };
        assert_eq!(cost_usd("gpt-4o-mini-2024-07-18", usage), Some(0.75));
        assert_eq!(cost_usd("gpt-4o", usage), Some(12.5));
        assert_eq!(cost_usd("claude-sonnet-4-20250514", usage), Some(18.0));
        assert_eq!(cost_usd("llama3.2", usage), None);
    }
}
