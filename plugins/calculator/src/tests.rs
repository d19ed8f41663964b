use super::*;
use pipecat_plugin_sdk::PluginTools;

fn eval(expr: &str) -> f64 {
    evaluate(expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn error(expr: &str) -> String {
    evaluate(expr).expect_err(expr).to_string()
}

#[test]
fn follows_precedence_and_associativity() {
    assert_eq!(eval("1 + 2 * 3"), 7.0);
    assert_eq!(eval("(1 + 2) * 3"), 9.0);
    assert_eq!(eval("10 - 4 - 3"), 3.0);
    assert_eq!(eval("64 / 4 / 2"), 8.0);
    assert_eq!(eval("2 ^ 3 ^ 2"), 512.0);
    assert_eq!(eval("-2 ^ 2"), -4.0);
    assert_eq!(eval("2 ^ -1"), 0.5);
    assert_eq!(eval("17 % 5"), 2.0);
    assert_eq!(eval("--3"), 3.0);
    assert_eq!(eval("2 * (3 + 4) ^ 2 / sqrt(16)"), 24.5);
}

#[test]
fn reads_decimals_and_exponents() {
    assert_eq!(eval("1.5 + .25"), 1.75);
    assert_eq!(eval("1e3 + 2.5E-1"), 1000.25);
}

#[test]
fn knows_functions_and_constants() {
    assert_eq!(eval("sqrt(81) + abs(-2)"), 11.0);
    assert_eq!(eval("floor(2.7) + ceil(2.1) + round(2.5)"), 8.0);
    assert_eq!(eval("min(3, 1, 2) + max(3, 1, 2) + pow(2, 10)"), 1028.0);
    assert!((eval("sin(pi / 2)") - 1.0).abs() < 1e-12);
    assert!((eval("cos(0) + tan(0)") - 1.0).abs() < 1e-12);
    assert!((eval("ln(e)") - 1.0).abs() < 1e-12);
    assert_eq!(eval("log10(1000)"), 3.0);
    assert!((eval("exp(1)") - std::f64::consts::E).abs() < 1e-12);
}

#[test]
fn reports_errors_with_positions() {
    assert_eq!(error("1 / 0"), "division by zero at position 3");
    assert_eq!(error("5 % (2 - 2)"), "division by zero at position 3");
    assert_eq!(error("1 +"), "unexpected end of expression at position 4");
    assert_eq!(error("(1 + 2"), "missing `)` at position 7");
    assert_eq!(error("1 + 2)"), "unexpected `)` at position 6");
    assert_eq!(error("2 3"), "unexpected number `3` at position 3");
    assert_eq!(error("foo + 1"), "unknown name `foo` at position 1");
    assert_eq!(
        error("sqrt + 1"),
        "`sqrt` is a function: call it as `sqrt(...)` at position 1"
    );
    assert_eq!(error("foo(1)"), "unknown function `foo` at position 1");
    assert_eq!(
        error("pow(2)"),
        "pow takes 2 arguments, got 1 at position 1"
    );
    assert_eq!(error("sqrt(-4)"), "sqrt of a negative number at position 1");
    assert_eq!(error(""), "empty expression at position 1");
    assert_eq!(
        error("10 ^ 400"),
        "the result is not a finite number at position 1"
    );
}

#[test]
fn limits_nesting_and_length() {
    let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
    assert!(error(&deep).contains("nested deeper than 64 levels"));
    let minus = format!("{}1", "-".repeat(1000));
    assert!(error(&minus).contains("nested deeper"));
    let long = "1+".repeat(MAX_LEN);
    assert!(error(&long).contains("longer than"));
    let ok = format!("{}1{}", "(".repeat(30), ")".repeat(30));
    assert_eq!(eval(&ok), 1.0);
}

#[test]
fn the_tool_returns_integers_without_a_fraction() {
    assert_eq!(
        Plugin::call("calculate", r#"{"expression": "6 * 7"}"#).unwrap(),
        r#"{"result":42}"#
    );
    assert_eq!(
        Plugin::call("calculate", r#"{"expression": "1 / 4"}"#).unwrap(),
        r#"{"result":0.25}"#
    );
    assert_eq!(
        Plugin::call("calculate", r#"{"expression": "-2^2"}"#).unwrap(),
        r#"{"result":-4}"#
    );
}

#[test]
fn the_tool_reports_failures_and_bad_arguments() {
    assert_eq!(
        Plugin::call("calculate", r#"{"expression": "1/0"}"#),
        Err(ToolError::failed("division by zero at position 2"))
    );
    assert!(matches!(
        Plugin::call("calculate", r#"{"expr": "1"}"#),
        Err(ToolError::InvalidArguments(_))
    ));
}

#[test]
fn the_tool_is_listed_with_a_schema() {
    let tools = Plugin::list();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].name, "calculate");
    assert!(
        tools[0]
            .description
            .starts_with("Evaluates an arithmetic expression")
    );
    let schema: serde_json::Value = serde_json::from_str(&tools[0].parameters).unwrap();
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["properties"]["expression"]["type"], "string");
    assert_eq!(schema["required"], serde_json::json!(["expression"]));
}
