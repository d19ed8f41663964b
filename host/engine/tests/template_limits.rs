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
