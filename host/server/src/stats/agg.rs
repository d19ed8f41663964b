//! What is counted per run ([`RunSummary`]), the aggregate of a set of runs ([`Agg`]) and a workflow's
//! aggregates over time ([`WorkflowStats`]: all time, plus per-minute, per-hour and per-day buckets).

use std::collections::BTreeMap;

use pipecat_store::{RunRecord, RunStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::hist::Hist;

/// One node of a finished run, as counted.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSummary {
    /// Node id.
    pub id: String,
    /// Node type.
    pub kind: String,
    /// `success`, `error` or `skipped`.
    pub status: String,
    /// Duration in microseconds.
    pub us: u64,
    /// The error code when it failed.
    pub error: Option<String>,
    /// Provider and model of LLM and router nodes.
    pub llm: Option<(String, String)>,
    /// Input and output tokens.
    pub tokens: (u64, u64),
    /// Time spent in this node's tool calls, in microseconds.
    pub tool_us: u64,
}

/// One tool call of a finished run, as counted.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSummary {
    /// `plugin.tool`.
    pub tool: String,
    /// Duration in microseconds.
    pub us: u64,
    /// The failure code (`fuel_exhausted`, `timeout`, …) when it failed.
    pub error: Option<String>,
}

/// The numbers of one finished run that statistics and metrics count.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The run.
    pub run_id: Uuid,
    /// Its account.
    pub account_id: Uuid,
    /// Its workflow.
    pub workflow_id: Uuid,
    /// The version that ran.
    pub version: u32,
    /// How it ended.
    pub status: RunStatus,
    /// When it started.
    pub started_at: OffsetDateTime,
    /// Whole-run duration in microseconds.
    pub us: u64,
    /// The run's error code.
    pub error: Option<String>,
    /// Input and output tokens.
    pub tokens: (u64, u64),
    /// The nodes.
    pub nodes: Vec<NodeSummary>,
    /// The tool calls.
    pub tools: Vec<ToolSummary>,
}

fn ms_to_us(v: &Value) -> u64 {
    let ms = v.as_f64().unwrap_or(0.0);
    if ms.is_finite() && ms > 0.0 {
        (ms * 1000.0).round() as u64
    } else {
        0
    }
}

fn code(v: &Value) -> Option<String> {
    v.get("code").and_then(Value::as_str).map(str::to_string)
}

fn tokens(usage: &Value) -> (u64, u64) {
    (
        usage["input_tokens"].as_u64().unwrap_or(0),
        usage["output_tokens"].as_u64().unwrap_or(0),
    )
}

impl RunSummary {
    /// Reads a stored run record; `None` while the run is still running.
    pub fn of(run: &RunRecord) -> Option<RunSummary> {
        if run.status == RunStatus::Running {
            return None;
        }
        let r = &run.record;
        let calls = r["tool_calls"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let tools = calls
            .iter()
            .map(|c| ToolSummary {
                tool: format!(
                    "{}.{}",
                    c["plugin"].as_str().unwrap_or(""),
                    c["tool"].as_str().unwrap_or("")
                ),
                us: ms_to_us(&c["duration_ms"]),
                error: code(&c["error"]),
            })
            .collect();
        let nodes = r["nodes"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|n| {
                let id = n["node_id"].as_str().unwrap_or("").to_string();
                let tool_us = calls
                    .iter()
                    .filter(|c| c["node_id"].as_str() == Some(id.as_str()))
                    .map(|c| ms_to_us(&c["duration_ms"]))
                    .sum();
                NodeSummary {
                    kind: n["type"].as_str().unwrap_or("").to_string(),
                    status: n["status"].as_str().unwrap_or("").to_string(),
                    us: ms_to_us(&n["duration_ms"]),
                    error: code(&n["error"]),
                    llm: n["provider"]
                        .as_str()
                        .map(|p| (p.to_string(), n["model"].as_str().unwrap_or("").to_string())),
                    tokens: tokens(&n["usage"]),
                    tool_us,
                    id,
                }
            })
            .collect();
        Some(RunSummary {
            run_id: run.run_id,
            account_id: run.account_id,
            workflow_id: run.workflow_id,
            version: run.version,
            status: run.status,
            started_at: run.started_at,
            us: ms_to_us(&r["duration_ms"]),
            error: code(&r["error"]),
            tokens: tokens(&r["usage"]),
            nodes,
            tools,
        })
    }
}

/// Count, failures and durations of one thing (a node, a tool, a version).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// Executions.
    pub count: u64,
    /// Failed executions.
    pub errors: u64,
    /// Failure codes and their counts.
    #[serde(default)]
    pub error_codes: BTreeMap<String, u64>,
    /// Durations (µs).
    pub duration: Hist,
    /// The node type (nodes only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
}

impl Part {
    fn add(&mut self, us: u64, error: Option<&str>) {
        self.count += 1;
        self.duration.record(us);
        if let Some(code) = error {
            self.errors += 1;
            *self.error_codes.entry(code.to_string()).or_default() += 1;
        }
    }

    fn merge(&mut self, other: &Part) {
        self.count += other.count;
        self.errors += other.errors;
        for (code, n) in &other.error_codes {
            *self.error_codes.entry(code.clone()).or_default() += n;
        }
        self.duration.merge(&other.duration);
        if self.kind.is_empty() {
            self.kind.clone_from(&other.kind);
        }
    }
}

/// The aggregate of a set of runs of one workflow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Agg {
    /// Runs counted.
    pub runs: u64,
    /// Successful runs.
    pub success: u64,
    /// Failed runs.
    pub error: u64,
    /// Cancelled runs.
    pub cancelled: u64,
    /// Run error codes and their counts.
    pub error_codes: BTreeMap<String, u64>,
    /// Whole-run durations (µs).
    pub duration: Hist,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Per node id (skipped nodes are not counted).
    pub nodes: BTreeMap<String, Part>,
    /// Per tool (`plugin.tool`).
    pub tools: BTreeMap<String, Part>,
    /// Per version.
    pub versions: BTreeMap<u32, Part>,
}

impl Agg {
    /// Counts one run.
    pub fn add(&mut self, run: &RunSummary) {
        self.runs += 1;
        match run.status {
            RunStatus::Success => self.success += 1,
            RunStatus::Cancelled => self.cancelled += 1,
            RunStatus::Error | RunStatus::Running => self.error += 1,
        }
        if let Some(code) = &run.error {
            *self.error_codes.entry(code.clone()).or_default() += 1;
        }
        self.duration.record(run.us);
        self.input_tokens += run.tokens.0;
        self.output_tokens += run.tokens.1;
        for node in run.nodes.iter().filter(|n| n.status != "skipped") {
            let part = self.nodes.entry(node.id.clone()).or_default();
            if part.kind.is_empty() {
                part.kind.clone_from(&node.kind);
            }
            let failed = (node.status == "error").then(|| node.error.as_deref().unwrap_or("error"));
            part.add(node.us, failed);
        }
        for tool in &run.tools {
            self.tools
                .entry(tool.tool.clone())
                .or_default()
                .add(tool.us, tool.error.as_deref());
        }
        let failed = (run.status != RunStatus::Success)
            .then(|| run.error.as_deref().unwrap_or(run.status.as_str()));
        self.versions
            .entry(run.version)
            .or_default()
            .add(run.us, failed);
    }

    /// Adds another aggregate.
    pub fn merge(&mut self, other: &Agg) {
        self.runs += other.runs;
        self.success += other.success;
        self.error += other.error;
        self.cancelled += other.cancelled;
        for (code, n) in &other.error_codes {
            *self.error_codes.entry(code.clone()).or_default() += n;
        }
        self.duration.merge(&other.duration);
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        for (k, p) in &other.nodes {
            self.nodes.entry(k.clone()).or_default().merge(p);
        }
        for (k, p) in &other.tools {
            self.tools.entry(k.clone()).or_default().merge(p);
        }
        for (k, p) in &other.versions {
            self.versions.entry(*k).or_default().merge(p);
        }
    }
}

/// A time resolution of the buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// One bucket a minute, kept 2 hours.
    Minute,
    /// One bucket an hour, kept 3 days.
    Hour,
    /// One bucket a day, kept 400 days.
    Day,
}

impl Tier {
    /// Seconds per bucket.
    pub fn seconds(self) -> i64 {
        match self {
            Tier::Minute => 60,
            Tier::Hour => 3600,
            Tier::Day => 86_400,
        }
    }

    fn keep(self) -> i64 {
        match self {
            Tier::Minute => 120,
            Tier::Hour => 72,
            Tier::Day => 400,
        }
    }
}

/// A workflow's statistics: all time and time buckets (keyed by bucket start / bucket length).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkflowStats {
    /// Every run ever counted.
    pub total: Agg,
    /// Per minute.
    pub minutes: BTreeMap<i64, Agg>,
    /// Per hour.
    pub hours: BTreeMap<i64, Agg>,
    /// Per day (UTC).
    pub days: BTreeMap<i64, Agg>,
}

impl WorkflowStats {
    /// The buckets of a tier.
    pub fn tier(&self, tier: Tier) -> &BTreeMap<i64, Agg> {
        match tier {
            Tier::Minute => &self.minutes,
            Tier::Hour => &self.hours,
            Tier::Day => &self.days,
        }
    }

    /// Counts one run, in the buckets of its start time; drops buckets too old to be asked for.
    pub fn add(&mut self, run: &RunSummary, now: OffsetDateTime) {
        self.total.add(run);
        let at = run.started_at.unix_timestamp();
        let now = now.unix_timestamp();
        for (tier, buckets) in [
            (Tier::Minute, &mut self.minutes),
            (Tier::Hour, &mut self.hours),
            (Tier::Day, &mut self.days),
        ] {
            let slot = at.div_euclid(tier.seconds());
            let oldest = now.div_euclid(tier.seconds()) - tier.keep();
            if slot > oldest {
                buckets.entry(slot).or_default().add(run);
            }
            while buckets.first_key_value().is_some_and(|(k, _)| *k <= oldest) {
                buckets.pop_first();
            }
        }
    }
}
