//! Hostile templates end as a template error, quickly and in bounded memory, instead of spinning or
//! allocating without limit: fuel bounds instructions, the output cap is enforced while writing, filters
//! refuse sequences of more than `MAX_ITEMS` items (a lazy `seq * n` included), and every byte an emit or an
//! expanding filter builds is charged to the render's budget (see `template/mod.rs`, "Limits").

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pipecat_engine::template::{RenderError, Templates, context};
use pipecat_engine::{RunContext, RunLimits, RunStatus, ToolRunner, parse};
use pipecat_fake_llm::FakeLlm;
use serde_json::json;

const CAP: usize = 1 << 20;

fn render(source: &str) -> (Result<String, RenderError>, Duration) {
    let mut templates = Templates::new();
    templates.add_text("t", source).expect("compiles");
    let ctx = context(&minijinja::Value::from("hi"), &Default::default());
    let started = Instant::now();
    let rendered = templates.render("t", &ctx, CAP);
    (rendered, started.elapsed())
}

/// Each of these allocated gigabytes or ran for hours before (measured on a debug build in a 3 GiB address
/// space: `range(100000) | join("x" * 100000)` and `("a" * 100000) | replace("a", "b" * 100000)` aborted
/// on a 3.2 GB allocation, a `{% set %}` block of 100000 × 10 KB took 6 s and 1.9 GB, `(range(100000) *
/// 100000000) | sum` still ran after 20 s).
#[test]
fn hostile_templates_fail_fast_with_a_template_error() {
    let cases = [
        // Already bounded by minijinja (repetition over 10^8 bytes, ranges over 10^5 items) or by fuel and
        // the output cap.
        r#"{{ "x" * 1000000000 }}"#,
        "{{ range(100000000) | list }}",
        r#"{% for i in range(100000) %}{{ "x" * 1000 }}{% endfor %}"#,
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        // Bounded now.
        r#"{{ "x" * 100000000 }}"#,
        "{{ [1] * 100000000 }}",
        "{{ ([1] * 100000000) | list | length }}",
        "{{ (range(100000) * 100000000) | sum }}",
        "{{ (range(100000) * 100000) | list | length }}",
        "{{ [1, 2] * 9223372036854775807 }}",
        "{{ [[range(10) * 100000000]] }}",
        "{{ [range(10) * 100000000, range(10) * 100000000] | sort }}",
        "{{ -1 is in (range(100000) * 100000000) }}",
        r#"{{ range(100000) | join("x" * 100000) | length }}"#,
        r#"{{ ("a" * 100000) | replace("a", "b" * 100000) | length }}"#,
        r#"{{ ("a\n" * 100000) | indent(100000) | length }}"#,
        "{{ range(100000) | list | tojson(indent=100000) | length }}",
        r#"{{ "%999999999s" | format("x") }}"#,
        "{{ [1] | batch(1000000000, 0) | list | length }}",
        r#"{% set x %}{% for i in range(100000) %}{{ "x" * 10000 }}{% endfor %}{% endset %}{{ x | length }}"#,
        r#"{% macro m() %}{% for i in range(100000) %}{{ "y" * 10000 }}{% endfor %}{% endmacro %}{{ m() | length }}"#,
        "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}",
    ];
    for source in cases {
        let (rendered, took) = render(source);
        assert!(rendered.is_err(), "{source}: rendered {rendered:?}");
        assert!(took < Duration::from_secs(10), "{source}: took {took:?}");
    }
}

#[test]
fn the_budget_is_reported_as_such() {
    let (rendered, _) = render(
        r#"{% set x %}{% for i in range(100000) %}{{ "x" * 10000 }}{% endfor %}{% endset %}{{ x | length }}"#,
    );
    assert_eq!(rendered, Err(RenderError::OverBudget(16 * CAP)));
    let (rendered, _) = render("{{ range(100000) * 100000000 }}");
    let message = rendered.expect_err("refused").to_string();
    assert!(message.contains("100000 items"), "{message}");
}

#[test]
fn the_guarded_filters_still_work() {
    let cases = [
        (r#"{{ [1, 2, 3] | join(", ") }}"#, "1, 2, 3"),
        (r#"{{ "a-b-c" | replace("-", "+") }}"#, "a+b+c"),
        (r#"{{ "ab" | replace("", ".") }}"#, ".a.b."),
        ("{{ [3, 1, 2] | sort | list }}", "[1, 2, 3]"),
        ("{{ [3, 1, 3] | unique | list | sum }}", "4"),
        (
            r#"{{ {"b": 1, "a": [1, 2]} | tojson }}"#,
            r#"{"a":[1,2],"b":1}"#,
        ),
        (r#"{{ {"a": 1} | tojson(indent=2) }}"#, "{\n  \"a\": 1\n}"),
        ("{{ \"x\\ny\" | indent(2) }}", "x\n  y"),
        (r#"{{ "%s=%d" | format("a", 3) }}"#, "a=3"),
        ("{{ [1, 2, 3] | batch(2) | list }}", "[[1, 2], [3]]"),
        ("{{ range(100000) | list | length }}", "100000"),
        ("{{ ([1, 2] * 3) | sum }}", "9"),
        ("{{ 2 is in [1, 2] }}", "True"),
        (
            r#"{{ [{"n": 2}, {"n": 1}] | map(attribute="n") | max }}"#,
            "2",
        ),
        (
            r#"{% set x %}{{ "a" * 3 }}{% endset %}{{ x ~ x }}"#,
            "aaaaaa",
        ),
        (r#"{{ "<a&b>" | urlencode }}"#, "%3Ca%26b%3E"),
    ];
    for (source, want) in cases {
        assert_eq!(render(source).0.as_deref(), Ok(want), "{source}");
    }
}

/// What minijinja's operators build used to be bounded only by fuel: a string doubled forty times asks for a
/// terabyte (in a 4 GB address space, without the metering, the first case aborted the whole test process:
/// "memory allocation of 2147483664 bytes failed"), and constant folding built `("a" * 99999999) ~ …` while compiling. Each
/// operator is now a metered call: these fail their render, and compile at once.
#[test]
fn operators_cannot_build_without_bound() {
    let ten = r#"("a" * 99999999)"#;
    let folded = format!("{{{{ {} }}}}", vec![ten; 50].join(" ~ "));
    let folded_add = format!("{{{{ {} }}}}", vec![ten; 50].join(" + "));
    let doubled = format!(
        r#"{{% set a = "x" * 1000 %}}{}{{{{ a | length }}}}"#,
        "{% set a = a ~ a %}".repeat(40)
    );
    let cases = [
        r#"{% set ns = namespace(a="xxxxxxxx") %}{% for i in range(60) %}{% set ns.a = ns.a ~ ns.a %}{% endfor %}{{ ns.a | length }}"#,
        r#"{% set ns = namespace(a="xxxxxxxx") %}{% for i in range(60) %}{% set ns.a = ns.a + ns.a %}{% endfor %}{{ ns.a | length }}"#,
        r#"{% set ns = namespace(a="xx") %}{% for i in range(60) %}{% set ns.a = ns.a * 2 %}{% endfor %}{{ ns.a | length }}"#,
        r#"{% set ns = namespace(a="xx") %}{% for i in range(60) %}{% set ns.a = 2 * ns.a %}{% endfor %}{{ ns.a | length }}"#,
        "{% set ns = namespace(a=[1]) %}{% for i in range(60) %}{% set ns.a = ns.a + ns.a %}{% endfor %}{{ ns.a | length }}",
        "{% set ns = namespace(a=[1]) %}{% for i in range(60) %}{% set ns.a = ns.a * 2 %}{% endfor %}{{ ns.a | length }}",
        r#"{% macro f(s, n) %}{% if n > 0 %}{{ f(s ~ s, n - 1) }}{% else %}{{ s | length }}{% endif %}{% endmacro %}{{ f("ab", 60) }}"#,
        r#"{% set ns = namespace(a="x") %}{% for i in range(60) %}{% set ns.a = "%s%s" | format(ns.a, ns.a) %}{% endfor %}{{ ns.a | length }}"#,
        &doubled,
        &folded,
        &folded_add,
        // One comparison walks both values whole, natively: these spun for minutes (100 of the first took
        // 0.8 s in a release build; this is 100,000).
        "{% set a = range(100000)|list %}{% set b = range(100000)|list %}{% for i in range(100000) %}{% if a == b %}{% endif %}{% endfor %}",
        "{% set a = range(100000)|list %}{% for i in range(100000) %}{% if 99999 in a %}{% endif %}{% endfor %}",
        "{% set a = range(100000)|list %}{% for i in range(100000) %}{% if a is eq(a) %}{% endif %}{% endfor %}",
        "{% set a = range(100000)|list %}{% for i in range(100000) %}{{ (a | sort | first) }}{% endfor %}",
        "{% set a = range(100000)|list %}{% set m = {} %}{% for i in range(100000) %}{{ m[a] }}{% endfor %}",
        "{% set ns = namespace(a=[1]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns.a == ns.a }}",
    ];
    for source in cases {
        let started = Instant::now();
        let mut templates = Templates::new();
        templates.add_text("t", source).expect("compiles");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{source}: compiling took {:?}",
            started.elapsed()
        );
        let (rendered, took) = render(source);
        assert!(
            matches!(
                rendered,
                Err(RenderError::OverBudget(_) | RenderError::Failed(_))
            ),
            "{source}: rendered {rendered:?}"
        );
        assert!(took < Duration::from_secs(10), "{source}: took {took:?}");
    }
    // Repeating nothing many times builds nothing, and takes no time either (found by fuzzing:
    // fuzz/corpus/template/regression-empty-list-repeated; minijinja stepped through every empty copy).
    for (source, want) in [
        ("{{ ([] * 99999999 * 99999999) | length }}", "0"),
        ("{{ 1 ~ ([1] * 0 * 99999999) }}", "1[]"),
        ("{{ (range(0) * 99999999 * 99999999) | list }}", "[]"),
    ] {
        let (rendered, took) = render(source);
        assert_eq!(rendered.as_deref(), Ok(want), "{source}");
        assert!(took < Duration::from_secs(10), "{source}: took {took:?}");
    }
    // A condition renders one byte, but has the budget of any render: it may compare long lists.
    let mut templates = Templates::new();
    templates
        .add_condition("c", "input.tag in input.allowed")
        .expect("compiles");
    let allowed: Vec<String> = (0..50_000).map(|i| format!("t{i}")).collect();
    let input =
        minijinja::Value::from_serialize(serde_json::json!({"tag": "t49999", "allowed": allowed}));
    let ctx = context(&input, &Default::default());
    assert_eq!(templates.eval_condition("c", &ctx), Ok(true));
    // Conditions and value templates are single expressions, compiled on their own path.
    let mut templates = Templates::new();
    let expr = vec![ten; 50].join(" ~ ");
    templates.add_condition("c", &expr).expect("compiles");
    templates
        .add_value("v", &format!("{{{{ {expr} }}}}"))
        .expect("compiles");
    let ctx = context(&minijinja::Value::from("hi"), &Default::default());
    assert!(matches!(
        templates.eval_condition("c", &ctx),
        Err(RenderError::OverBudget(_))
    ));
    assert!(matches!(
        templates.render_value("v", &ctx, CAP),
        Err(RenderError::OverBudget(_))
    ));
}

/// The metered operators give what minijinja's own give: each template is rendered by a plain minijinja
/// environment and by ours, on the same context.
#[test]
fn metered_operators_agree_with_minijinja() {
    let cases = [
        "{{ 1 + 2 }}",
        "{{1+2}}",
        "{{ 2 * 3 }}",
        "{{ 1.5 + 1 }}",
        "{{ 2.0 + 1 }}",
        "{{ 2.0 * 3 }}",
        "{{ true + 1 }}",
        "{{ 9223372036854775807 * 2 }}",
        "{{ -9223372036854775807 - 1 + -1 }}",
        "{{ 170141183460469231731687303715884105727 + 1 }}",
        "{{ 7 * 0.5 }}",
        "{{ 1 + 2 * 3 }}",
        "{{ (1 + 2) * 3 }}",
        "{{ ((1) + (2)) }}",
        "{{ -1 * 2 }}",
        "{{ 2 ** 3 * 2 }}",
        "{{ 10 - 2 + 3 }}",
        "{{ 9223372036854775807 + 1 }}",
        r#"{{ "a" ~ 1 }}"#,
        r#"{{ "a" + "b" }}"#,
        r#"{{ "ab" * 2 }}"#,
        r#"{{ 2 * "ab" }}"#,
        r#"{{ "ab" * 0 }}"#,
        "{{ [1] + [2] }}",
        "{{ ([1, 2] + [3]) | sum }}",
        "{{ [1, 2] * 2 }}",
        "{{ [] * 3 }}",
        "{{ ([1] * 0) | list }}",
        "{{ 0 * [1, 2] }}",
        "{{ (range(0) * 5) | length }}",
        "{{ (range(3) + range(2)) | list }}",
        r#"{{ "x" ~ (1 + 2) ~ "y" }}"#,
        r#"{{ "é" ~ "ü" ~ "€" }}"#,
        "{{ input ~ input }}",
        "{{ input | upper ~ input }}",
        "{{ input ~ input | upper }}",
        "{{ (input ~ \"-\") * 2 }}",
        "{{ input\n  ~\n  \"!\" }}",
        r#"{{ "a b" | replace("a", "x" ~ "y") }}"#,
        r#"{% macro m(x="a" ~ "b") %}{{ x ~ x }}{% endmacro %}{{ m() }}{{ m("c" + "d") }}"#,
        r#"{% set ns = namespace(s="") %}{% for i in range(5) %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.s }}"#,
        "{% for i in range(3) if i * 2 > 1 %}{{ i + 10 }}{% endfor %}",
        "{{ 1 + 2 if 2 * 2 == 4 else 3 ~ 4 }}",
        r#"{{ {"a": 1 + 1, "b" ~ "c": [2 * 2]} | tojson }}"#,
        "{{ range(10)[1 + 1:2 * 3] | list }}",
        "{{ (1 + 2) is odd }}",
        "{{ undefined_thing ~ \"x\" }}",
        r#"{% set x %}{{ 1 + 1 }}{% endset %}{{ x ~ x }}"#,
        r#"{% with a = 1 + 1 %}{{ a * a }}{% endwith %}"#,
        r#"{% filter upper %}{{ "a" ~ "b" }}{% endfilter %}"#,
        "{{ \"a\" + 1 }}",
        "{{ [1] * \"x\" }}",
        "{{ 1 ~ 2 + 3 * 4 ** 2 }}",
        "{{ 1 < 2 < 3 }}",
        "{{ 3 > 2 > 5 }}",
        r#"{{ "a" in "abc" }}"#,
        "{{ 1 not in [1, 2] }}",
        "{{ not 1 in [1] }}",
        "{{ (input ~ \"x\") | length > 2 }}",
        "{{ ((1 + 2)) == 3 }}",
        r#"{% if (input | upper) == "HI" %}y{% endif %}"#,
        r#"{{ {"a": 1}["a"] }}"#,
        r#"{{ {input: 1}[input] }}"#,
        "{{ range(5)[1 + 1] }}",
        "{% for x in [1, 1, 2] %}{% if loop.changed(x) %}{{ x }}{% endif %}{% endfor %}",
        "{{ [1, 2] is eq([1, 2]) }}",
        "{{ (1 if true else 2) == 1 }}",
        r#"{{ input is in ["hi"] }}"#,
        r#"{{ [1, 2, 3] | select("gt", 1) | list }}"#,
        r#"{{ [{"n": 1}, {"n": 2}] | selectattr("n", "equalto", 2) | list }}"#,
        "{{ (input == \"hi\") and (1 != 2) }}",
        "{{ -input|length < 0 }}",
        "{{ ((input) if true else 2) == \"hi\" }}",
        "{{ ((input)) ~ (((\"x\"))) }}",
        "{{ (input not in [\"a\"]) == true }}",
        "{{ true == input is not none }}",
        "{{ (input is not none) == true }}",
        "{{ input is not odd == false }}",
    ];
    let ctx = context(&minijinja::Value::from("hi"), &Default::default());
    let mut plain = minijinja::Environment::new();
    plain.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    plain.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    for source in cases {
        let want = plain.render_str(source, &ctx).map_err(|e| {
            let detail = e
                .detail()
                .map_or_else(|| e.kind().to_string(), str::to_string);
            format!("{detail} (line {})", e.line().unwrap_or(0))
        });
        let got = render(source).0.map_err(|e| e.to_string());
        assert_eq!(got, want, "{source}");
    }
}

/// A condition or value expression is compiled as a whole template, never through minijinja's expression
/// parser, which takes the longest expression at the start and ignores the rest (found by fuzzing:
/// fuzz/corpus/template/regression-expression-with-trailing-text) and folds constants before anything is
/// metered; and text that closes the parentheses it is wrapped in is refused (also found by fuzzing:
/// regression-expression-closing-its-wrapper).
#[test]
fn expressions_are_checked_whole() {
    let mut templates = Templates::new();
    let error = templates
        .add_condition("c", r#"input ~ "x" "= (1 + 2) * 3"#)
        .expect_err("trailing text");
    assert!(!error.contains("could not be checked"), "{error}");
    let error = templates
        .add_condition("c", "input == 1 input")
        .expect_err("trailing text");
    assert!(error.contains("expected `)`"), "{error}");
    // Not one expression, although it parses inside the parentheses the condition is wrapped in.
    let error = templates
        .add_condition("c", "reacraw * 1 + 4) *(placraw * 1 + 4) *( 3")
        .expect_err("two expressions");
    assert!(error.contains("unexpected `)`"), "{error}");
    templates.add_condition("d", "((input))").expect("compiles");
    templates
        .add_condition("c", "(input ~ \"!\") == \"hi!\"")
        .expect("compiles");
    let ctx = context(&minijinja::Value::from("hi"), &Default::default());
    assert_eq!(templates.eval_condition("c", &ctx), Ok(true));
}

/// Errors still name their line after the rewrite (it adds no line breaks): a syntax error, and an operator
/// that fails inside its metered call.
#[test]
fn errors_keep_their_line() {
    let mut templates = Templates::new();
    let error = templates
        .add_text("t", "{{ a ~ b }}\n{{ c + d }}\n{{ e ~ }}")
        .expect_err("syntax error");
    assert!(error.contains("line 3"), "{error}");
    let (rendered, _) = render("{{ input }}\n\n{{ \"a\" + 1 }}");
    let error = rendered.expect_err("fails").to_string();
    assert!(
        error.contains("+ operator") && error.contains("line 3"),
        "{error}"
    );
}

/// In a run, a template over its limits fails its node with `template_error`, like any template error.
#[tokio::test]
async fn a_hostile_template_fails_its_run_with_a_template_error() {
    let doc = json!({
        "name": "hostile",
        "nodes": [{"id": "t", "type": "template", "template": "{{ (range(100000) * 100000000) | sum }}"}],
        "edges": [],
        "output": "t"
    });
    let fake = FakeLlm::start().await;
    let engine = support::engine(&fake, RunLimits::default());
    let tools: Arc<dyn ToolRunner> = Arc::new(support::ClosureTools::standard());
    let started = Instant::now();
    let outcome = engine
        .run(
            Arc::new(parse(&doc).expect("valid")),
            json!("x"),
            tools,
            RunContext::new(),
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(outcome.status, RunStatus::Error);
    let error = outcome.error.expect("error");
    assert_eq!(error.code, "template_error");
    assert_eq!(error.node_id.as_deref(), Some("t"));
    assert!(error.message.contains("items"), "{}", error.message);
}
