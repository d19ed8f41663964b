//! The DAG scheduler: one task, node futures in a `FuturesUnordered`.
//!
//! A node becomes ready when every in-edge is settled: it runs when at least one in-edge was taken, and is
//! `skipped` when every in-edge came from a skipped node or an untaken branch (a `condition` or `router`
//! takes exactly one out-edge). The first node error ends the run; nodes still in flight are dropped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use pipecat_llm::Usage;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::document::{NodeKind, OutputDoc};
use crate::events::{Emitter, EventKind};
use crate::nodes::{self, NodeFailure, NodeMeta, NodeSuccess};
use crate::outcome::{
    ErrorInfo, NodeRecord, NodeStatus, RunError, RunOutcome, RunStatus, ToolCallRecord,
};
use crate::{Engine, RunContext, RunLimits, ToolRunner, Workflow, template};

/// Everything node futures share during one run.
pub(crate) struct Shared<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) workflow: &'a Workflow,
    pub(crate) tools: &'a dyn ToolRunner,
    pub(crate) limits: RunLimits,
    pub(crate) emitter: Emitter,
    pub(crate) started: Instant,
    pub(crate) tool_calls: Mutex<Vec<(u64, ToolCallRecord)>>,
    pub(crate) call_seq: AtomicU64,
    pub(crate) tokens: AtomicU64,
    pub(crate) tool_slots: Semaphore,
}

impl Shared<'_> {
    /// Milliseconds since the run started.
    pub(crate) fn offset_ms(&self) -> f64 {
        ms(self.started.elapsed())
    }
}

/// Milliseconds with microsecond precision.
pub(crate) fn ms(d: std::time::Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

enum End {
    Done,
    Timeout,
    Cancelled,
}

/// What the scheduler has learned so far; kept outside the scheduling future so a timeout keeps it.
struct Progress {
    records: Vec<NodeRecord>,
    in_flight: HashMap<usize, f64>,
    outputs: Vec<Option<Value>>,
    usage: Usage,
    error: Option<RunError>,
}

pub(crate) async fn run(
    engine: &Engine,
    workflow: &Workflow,
    input: Value,
    tools: &dyn ToolRunner,
    ctx: RunContext,
) -> RunOutcome {
    let limits = engine.limits.restricted_by(workflow.doc.limits.as_ref());
    let shared = Shared {
        engine,
        workflow,
        tools,
        tool_slots: Semaphore::new(limits.max_concurrent_tool_calls.max(1) as usize),
        limits,
        emitter: Emitter::new(ctx.run_id, ctx.events),
        started: Instant::now(),
        tool_calls: Mutex::new(Vec::new()),
        call_seq: AtomicU64::new(0),
        tokens: AtomicU64::new(0),
    };
    let n = workflow.doc.nodes.len();
    let mut progress = Progress {
        records: Vec::new(),
        in_flight: HashMap::new(),
        outputs: vec![None; n],
        usage: Usage::default(),
        error: None,
    };
    shared.emitter.emit(EventKind::RunStarted {}).await;

    let cancel = ctx.cancel.unwrap_or_default();
    let mut status = RunStatus::Success;
    let end = tokio::select! {
        () = schedule(&shared, &input, &mut progress) => End::Done,
        () = tokio::time::sleep(shared.limits.run_timeout) => End::Timeout,
        () = cancel.cancelled() => End::Cancelled,
    };
    match end {
        End::Done => {}
        End::Timeout => {
            progress.error = Some(RunError {
                code: "run_timeout".into(),
                message: format!(
                    "the run took longer than {} ms",
                    shared.limits.run_timeout.as_millis()
                ),
                node_id: progress
                    .in_flight
                    .keys()
                    .min()
                    .map(|&i| workflow.doc.nodes[i].id.clone()),
            });
        }
        End::Cancelled => status = RunStatus::Cancelled,
    }
    let stopped = match (&progress.error, status) {
        (_, RunStatus::Cancelled) => Some(("cancelled", "the run was cancelled".to_string())),
        (Some(e), _) => Some((
            "stopped",
            format!("stopped because the run failed ({})", e.code),
        )),
        _ => None,
    };
    if let Some((code, message)) = stopped {
        let mut in_flight: Vec<(usize, f64)> = progress.in_flight.drain().collect();
        in_flight.sort_by_key(|(i, _)| *i);
        for (i, offset) in in_flight {
            let node = &workflow.doc.nodes[i];
            let error = ErrorInfo {
                code: code.into(),
                message: message.clone(),
            };
            progress.records.push(NodeRecord {
                node_id: node.id.clone(),
                node_type: node.kind.type_name().into(),
                status: NodeStatus::Error,
                offset_ms: offset,
                duration_ms: shared.offset_ms() - offset,
                error: Some(error),
                usage: None,
                provider: None,
                model: None,
                provider_ms: None,
                choice: None,
            });
        }
    }
    if progress.error.is_some() && status == RunStatus::Success {
        status = RunStatus::Error;
    }
    let output = if status == RunStatus::Success {
        Some(output_value(workflow, &progress.outputs))
    } else {
        None
    };
    let mut calls = match shared.tool_calls.lock() {
        Ok(mut calls) => std::mem::take(&mut *calls),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    calls.sort_by_key(|(seq, _)| *seq);
    let outcome = RunOutcome {
        run_id: ctx.run_id,
        status,
        output,
        error: progress.error,
        tool_calls: calls.into_iter().map(|(_, c)| c).collect(),
        nodes: progress.records,
        usage: progress.usage,
        duration_ms: shared.offset_ms(),
    };
    shared
        .emitter
        .emit(EventKind::RunFinished(outcome.body()))
        .await;
    outcome
}

fn output_value(workflow: &Workflow, outputs: &[Option<Value>]) -> Value {
    let of = |id: &str| {
        workflow
            .node_index(id)
            .and_then(|i| outputs[i].clone())
            .unwrap_or(Value::Null)
    };
    match &workflow.doc.output {
        OutputDoc::Node(id) => of(id),
        OutputDoc::Map(map) => Value::Object(
            map.iter()
                .map(|(name, id)| (name.clone(), of(id)))
                .collect(),
        ),
    }
}

async fn schedule(shared: &Shared<'_>, input: &Value, progress: &mut Progress) {
    let workflow = shared.workflow;
    let graph = &workflow.graph;
    let n = workflow.doc.nodes.len();
    let input_ctx = minijinja::Value::from_serialize(input);
    let mut remaining: Vec<usize> = graph.in_edges.iter().map(Vec::len).collect();
    let mut taken = vec![0usize; n];
    let mut ctx_outputs: BTreeMap<String, minijinja::Value> = BTreeMap::new();
    let mut ready: VecDeque<usize> = (0..n).filter(|&i| remaining[i] == 0).collect();
    let mut running = FuturesUnordered::new();
    let mut steps = 0u32;

    loop {
        while let Some(i) = ready.pop_front() {
            let node_id = &workflow.doc.nodes[i].id;
            steps += 1;
            if steps > shared.limits.max_steps {
                progress.error = Some(RunError {
                    code: "max_steps_exceeded".into(),
                    message: format!(
                        "the run would execute more than {} nodes",
                        shared.limits.max_steps
                    ),
                    node_id: Some(node_id.clone()),
                });
                return;
            }
            shared
                .emitter
                .emit(EventKind::NodeStarted {
                    node_id: node_id.clone(),
                })
                .await;
            let offset = shared.offset_ms();
            progress.in_flight.insert(i, offset);
            let ctx = template::context(&input_ctx, &ctx_outputs);
            running.push(async move {
                let mut meta = NodeMeta::default();
                let result = nodes::run_node(shared, i, &ctx, &mut meta).await;
                (i, offset, result, meta)
            });
        }
        let Some((i, offset, result, meta)) = running.next().await else {
            return;
        };
        progress.in_flight.remove(&i);
        let node = &workflow.doc.nodes[i];
        let duration_ms = shared.offset_ms() - offset;
        progress.usage.add(meta.usage);
        let is_model = matches!(node.kind, NodeKind::Llm(_) | NodeKind::Router(_));
        let mut record = NodeRecord {
            node_id: node.id.clone(),
            node_type: node.kind.type_name().into(),
            status: NodeStatus::Success,
            offset_ms: offset,
            duration_ms,
            error: None,
            usage: is_model.then_some(meta.usage),
            provider: meta.provider,
            model: meta.model,
            provider_ms: is_model.then_some(meta.provider_ms),
            choice: None,
        };
        match result {
            Err(NodeFailure { code, message }) => {
                record.status = NodeStatus::Error;
                record.error = Some(ErrorInfo {
                    code: code.clone(),
                    message: message.clone(),
                });
                finished(shared, &record).await;
                progress.records.push(record);
                progress.error = Some(RunError {
                    code,
                    message,
                    node_id: Some(node.id.clone()),
                });
                return;
            }
            Ok(NodeSuccess { value, choice }) => {
                record.choice = choice.map(|e| workflow.doc.edges[e].to.clone());
                finished(shared, &record).await;
                progress.records.push(record);
                ctx_outputs.insert(node.id.clone(), minijinja::Value::from_serialize(&value));
                progress.outputs[i] = Some(value);
                // Settle the out-edges; skipped nodes settle theirs in turn.
                let mut settle: Vec<(usize, bool)> = graph.out_edges[i]
                    .iter()
                    .map(|&e| (e, choice.is_none_or(|c| c == e)))
                    .collect();
                while let Some((e, was_taken)) = settle.pop() {
                    let to = graph.ends[e].1;
                    remaining[to] -= 1;
                    if was_taken {
                        taken[to] += 1;
                    }
                    if remaining[to] > 0 {
                        continue;
                    }
                    if taken[to] > 0 {
                        ready.push_back(to);
                    } else {
                        let skipped = &workflow.doc.nodes[to];
                        let record = NodeRecord {
                            node_id: skipped.id.clone(),
                            node_type: skipped.kind.type_name().into(),
                            status: NodeStatus::Skipped,
                            offset_ms: shared.offset_ms(),
                            duration_ms: 0.0,
                            error: None,
                            usage: None,
                            provider: None,
                            model: None,
                            provider_ms: None,
                            choice: None,
                        };
                        finished(shared, &record).await;
                        progress.records.push(record);
                        settle.extend(graph.out_edges[to].iter().map(|&e| (e, false)));
                    }
                }
            }
        }
    }
}

async fn finished(shared: &Shared<'_>, record: &NodeRecord) {
    shared
        .emitter
        .emit(EventKind::NodeFinished {
            node_id: record.node_id.clone(),
            status: record.status,
            duration_ms: record.duration_ms,
            error: record.error.clone(),
        })
        .await;
}

/// Adds `usage` to the run's token count; fails when the run is over its token limit.
pub(crate) fn charge_tokens(shared: &Shared<'_>, usage: Usage) -> Result<(), NodeFailure> {
    let total = shared.tokens.fetch_add(usage.total(), Ordering::Relaxed) + usage.total();
    if total > shared.limits.max_tokens_per_run {
        return Err(NodeFailure::new(
            "token_limit_exceeded",
            format!(
                "the run used {total} tokens, over its limit of {}",
                shared.limits.max_tokens_per_run
            ),
        ));
    }
    Ok(())
}
