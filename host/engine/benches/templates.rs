//! Template renders: a plain substitution, an operator, a condition, and a loop that compares, so that the
//! cost of metering operators and comparisons (`template/operators.rs`) is measured, not assumed.
//!
//! `cargo bench -p pipecat-engine --bench templates`

use criterion::{Criterion, criterion_group, criterion_main};
use pipecat_engine::template::{Templates, context};

fn bench(c: &mut Criterion) {
    let mut templates = Templates::new();
    let cases = [
        ("substitution", "Hello, {{ input.name }}!"),
        ("concat", r#"{{ "Hello, " ~ input.name ~ "!" }}"#),
        ("arithmetic", "{{ input.count * 2 + 1 }}"),
        (
            "loop_of_comparisons",
            r#"{% for t in input.tags %}{% if t == "b" or t in ["c", "d"] %}{{ t }}{% endif %}{% endfor %}"#,
        ),
    ];
    for (name, source) in cases {
        templates.add_text(name, source).expect("compiles");
    }
    templates
        .add_condition("condition", r#"input.name == "Ada" and input.count > 3"#)
        .expect("compiles");
    let input = minijinja::Value::from_serialize(serde_json::json!({
        "name": "Ada", "count": 7, "tags": ["a", "b", "c", "d", "e", "f", "g", "h"]
    }));
    let ctx = context(&input, &Default::default());
    let mut group = c.benchmark_group("template");
    for (name, _) in cases {
        group.bench_function(name, |b| {
            b.iter(|| templates.render(name, &ctx, 1 << 20).expect("renders"))
        });
    }
    group.bench_function("condition", |b| {
        b.iter(|| {
            templates
                .eval_condition("condition", &ctx)
                .expect("evaluates")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
