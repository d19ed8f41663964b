//! Prometheus metrics (`GET /metrics`, text exposition format 0.0.4), kept in memory.
//!
//! HTTP requests are counted by [`track_http`], a middleware that labels them with the matched route
//! template (`/v1/runs/{run_id}`, never the raw path). Runs, nodes, tools and LLM calls are counted from
//! each finished run's [`RunSummary`] by the stats task. Gauges (sandbox pool, runs in flight, store size)
//! are read when scraped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;
use crate::stats::agg::RunSummary;

/// Upper bounds (seconds) of every latency histogram.
const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A Prometheus histogram.
#[derive(Debug, Clone, Default)]
struct PromHist {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl PromHist {
    fn observe(&mut self, seconds: f64) {
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Default)]
struct Families {
    http_requests: BTreeMap<Labels, u64>,
    http_duration: BTreeMap<Labels, PromHist>,
    runs: BTreeMap<Labels, u64>,
    run_duration: BTreeMap<Labels, PromHist>,
    node_duration: BTreeMap<Labels, PromHist>,
    tool_calls: BTreeMap<Labels, u64>,
    tool_duration: BTreeMap<Labels, PromHist>,
    llm_duration: BTreeMap<Labels, PromHist>,
    llm_tokens: BTreeMap<Labels, u64>,
}

/// The in-memory metric families.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Families>,
}

fn us_to_s(us: u64) -> f64 {
    us as f64 / 1_000_000.0
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Families> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one HTTP request.
    pub fn http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut f = self.lock();
        let labels = vec![("method", method.to_string()), ("route", route.to_string())];
        let mut with_status = labels.clone();
        with_status.push(("status", status.to_string()));
        *f.http_requests.entry(with_status).or_default() += 1;
        f.http_duration.entry(labels).or_default().observe(seconds);
    }

    /// Counts one finished run.
    pub fn run(&self, run: &RunSummary) {
        let mut f = self.lock();
        let wf = run.workflow_id.to_string();
        *f.runs
            .entry(vec![
                ("workflow_id", wf.clone()),
                ("status", run.status.as_str().to_string()),
            ])
            .or_default() += 1;
        f.run_duration
            .entry(vec![("workflow_id", wf)])
            .or_default()
            .observe(us_to_s(run.us));
        for node in run.nodes.iter().filter(|n| n.status != "skipped") {
            f.node_duration
                .entry(vec![("type", node.kind.clone())])
                .or_default()
                .observe(us_to_s(node.us));
            if let Some((provider, model)) = &node.llm {
                let labels = vec![("provider", provider.clone()), ("model", model.clone())];
                // The node's time minus its tool calls: time spent waiting for the provider.
                f.llm_duration
                    .entry(labels.clone())
                    .or_default()
                    .observe(us_to_s(node.us.saturating_sub(node.tool_us)));
                for (direction, n) in [("input", node.tokens.0), ("output", node.tokens.1)] {
                    let mut l = labels.clone();
                    l.push(("direction", direction.to_string()));
                    *f.llm_tokens.entry(l).or_default() += n;
                }
            }
        }
        for tool in &run.tools {
            let outcome = tool.error.clone().unwrap_or_else(|| "ok".to_string());
            *f.tool_calls
                .entry(vec![("tool", tool.tool.clone()), ("outcome", outcome)])
                .or_default() += 1;
            f.tool_duration
                .entry(vec![("tool", tool.tool.clone())])
                .or_default()
                .observe(us_to_s(tool.us));
        }
    }

    /// The exposition text of the counters and histograms, followed by `gauges`.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let f = self.lock();
        let mut out = String::with_capacity(4096);
        counter(
            &mut out,
            "pipecat_http_requests_total",
            "HTTP requests by method, route template and status.",
            &f.http_requests,
        );
        histogram(
            &mut out,
            "pipecat_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            &f.http_duration,
        );
        counter(
            &mut out,
            "pipecat_runs_total",
            "Finished runs by workflow and status.",
            &f.runs,
        );
        histogram(
            &mut out,
            "pipecat_run_duration_seconds",
            "Whole-run duration by workflow.",
            &f.run_duration,
        );
        histogram(
            &mut out,
            "pipecat_node_duration_seconds",
            "Node duration by node type (skipped nodes excluded).",
            &f.node_duration,
        );
        counter(
            &mut out,
            "pipecat_tool_calls_total",
            "Tool calls by tool and outcome (ok, or the failure kind: fuel_exhausted, timeout, …).",
            &f.tool_calls,
        );
        histogram(
            &mut out,
            "pipecat_tool_duration_seconds",
            "Tool call duration by tool.",
            &f.tool_duration,
        );
        histogram(
            &mut out,
            "pipecat_llm_duration_seconds",
            "Time LLM nodes spent on their provider (node time minus tool calls) by provider and model.",
            &f.llm_duration,
        );
        counter(
            &mut out,
            "pipecat_llm_tokens_total",
            "LLM tokens by provider, model and direction.",
            &f.llm_tokens,
        );
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(l: &Labels, extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn counter(out: &mut String, name: &str, help: &str, family: &BTreeMap<Labels, u64>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (l, v) in family {
        let _ = writeln!(out, "{name}{} {v}", labels(l, None));
    }
}

fn histogram(out: &mut String, name: &str, help: &str, family: &BTreeMap<Labels, PromHist>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (l, h) in family {
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{} {}",
                labels(l, Some(("le", &le.to_string()))),
                h.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{} {}",
            labels(l, Some(("le", "+Inf"))),
            h.count
        );
        let _ = writeln!(out, "{name}_sum{} {}", labels(l, None), h.sum);
        let _ = writeln!(out, "{name}_count{} {}", labels(l, None), h.count);
    }
}

/// Middleware counting every request by its route template (`unmatched` when no route matched).
pub async fn track_http(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    state.monitor.metrics.http(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
