//! Answers of `GET /v1/workflows/{id}/stats`: a window's summary and its time buckets, from aggregates.

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::agg::{Agg, Part, Tier, WorkflowStats};
use super::hist::Hist;
use crate::limits::rfc3339;

/// A selectable window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last hour, in minute buckets.
    Hour,
    /// The last 24 hours, in hour buckets.
    Day,
    /// The last 30 days, in day buckets.
    Month,
    /// All time (the chart shows the last 30 days).
    All,
}

impl Window {
    /// Parses `1h`, `24h`, `30d` or `all`.
    pub fn parse(s: &str) -> Option<Window> {
        Some(match s {
            "1h" => Window::Hour,
            "24h" | "1d" => Window::Day,
            "30d" => Window::Month,
            "all" => Window::All,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Window::Hour => "1h",
            Window::Day => "24h",
            Window::Month => "30d",
            Window::All => "all",
        }
    }

    /// The bucket tier and how many buckets the chart shows.
    fn tier(self) -> (Tier, i64) {
        match self {
            Window::Hour => (Tier::Minute, 60),
            Window::Day => (Tier::Hour, 24),
            Window::Month | Window::All => (Tier::Day, 30),
        }
    }
}

fn ms(us: Option<u64>) -> Value {
    us.map_or(Value::Null, |us| json!(us as f64 / 1000.0))
}

fn latency(h: &Hist) -> Value {
    if h.count() == 0 {
        return Value::Null;
    }
    json!({
        "p50": ms(h.percentile(50.0)),
        "p95": ms(h.percentile(95.0)),
        "p99": ms(h.percentile(99.0)),
        "mean": h.mean().map(|m| m / 1000.0),
        "max": ms(h.max()),
    })
}

fn part(p: &Part) -> Value {
    json!({
        "count": p.count,
        "errors": p.errors,
        "error_codes": p.error_codes,
        "latency_ms": latency(&p.duration),
    })
}

fn rate(ok: u64, all: u64) -> Value {
    if all == 0 {
        Value::Null
    } else {
        json!(ok as f64 / all as f64)
    }
}

/// The JSON answer for one workflow over a window, at `now`.
pub fn answer(stats: Option<&WorkflowStats>, window: Window, now: OffsetDateTime) -> Value {
    let empty = WorkflowStats::default();
    let stats = stats.unwrap_or(&empty);
    let (tier, count) = window.tier();
    let len = tier.seconds();
    let last = now.unix_timestamp().div_euclid(len);
    let first = last - count + 1;
    let buckets = stats.tier(tier);
    let mut summary = Agg::default();
    let mut points = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for slot in first..=last {
        let agg = buckets.get(&slot);
        if let Some(agg) = agg {
            summary.merge(agg);
        }
        let start = OffsetDateTime::from_unix_timestamp(slot * len).unwrap_or(now);
        let (runs, success, error) = agg.map_or((0, 0, 0), |a| (a.runs, a.success, a.error));
        let h = agg.map(|a| &a.duration);
        points.push(json!({
            "start": rfc3339(start),
            "runs": runs,
            "success": success,
            "error": error,
            "success_rate": rate(success, runs),
            "p50_ms": ms(h.and_then(|h| h.percentile(50.0))),
            "p95_ms": ms(h.and_then(|h| h.percentile(95.0))),
            "p99_ms": ms(h.and_then(|h| h.percentile(99.0))),
        }));
    }
    let (agg, from) = match window {
        Window::All => (&stats.total, Value::Null),
        _ => (
            &summary,
            json!(rfc3339(
                OffsetDateTime::from_unix_timestamp(first * len).unwrap_or(now)
            )),
        ),
    };
    let nodes: Vec<Value> = agg
        .nodes
        .iter()
        .map(|(id, p)| {
            let mut v = part(p);
            v["node_id"] = json!(id);
            v["type"] = json!(p.kind);
            v
        })
        .collect();
    let tools: Vec<Value> = agg
        .tools
        .iter()
        .map(|(name, p)| {
            let mut v = part(p);
            v["tool"] = json!(name);
            v
        })
        .collect();
    let versions: Vec<Value> = agg
        .versions
        .iter()
        .map(|(n, p)| {
            let mut v = part(p);
            v["version"] = json!(n);
            v
        })
        .collect();
    json!({
        "window": window.name(),
        "from": from,
        "to": rfc3339(now),
        "runs": agg.runs,
        "success": agg.success,
        "error": agg.error,
        "cancelled": agg.cancelled,
        "success_rate": rate(agg.success, agg.runs),
        "error_codes": agg.error_codes,
        "latency_ms": latency(&agg.duration),
        "tokens": {
            "input": agg.input_tokens,
            "output": agg.output_tokens,
            "total": agg.input_tokens + agg.output_tokens,
        },
        "nodes": nodes,
        "tools": tools,
        "versions": versions,
        "bucket_seconds": len,
        "buckets": points,
    })
}
