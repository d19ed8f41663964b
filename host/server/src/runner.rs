//! Executing one accepted run: the engine in a task of its own, registered in the [`crate::live`] registry
//! (cancel token, event log), its events pumped to the attached client, its record (and events) stored,
//! then the idempotency key completed and the completion webhook delivered.
//!
//! Every transport uses this one path: REST (no events), SSE and WebSocket (events to an attached client),
//! and async runs (events kept for followers, the record put as `running` first).

use std::sync::Arc;

use pipecat_engine::{EventKind, RunOutcome};
use pipecat_store::{RunRecord, RunStatus};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::idempotency::Claim;
use crate::limits::rfc3339;
use crate::live::{EVENT_BUFFER, LiveRun, error_event, stamp};
use crate::routes::invoke::{Accepted, run_record};
use crate::state::AppState;
use crate::webhook::WebhookTarget;

/// What happens to a streamed run when its client goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnDisconnect {
    /// Cancel the run (recorded as `cancelled`). The default.
    #[default]
    Cancel,
    /// Keep running; the events stay available at `GET /v1/runs/{id}/events`.
    Continue,
}

impl OnDisconnect {
    /// Parses `"cancel"` / `"continue"`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cancel" => Some(Self::Cancel),
            "continue" => Some(Self::Continue),
            _ => None,
        }
    }
}

/// One run to start.
pub struct RunRequest {
    /// The owning account.
    pub account_id: Uuid,
    /// The request-level checks' result (version, workflow, permit, reservation).
    pub accepted: Accepted,
    /// The run's input.
    pub input: Value,
    /// Emit and keep events (SSE, WebSocket, async).
    pub keep_events: bool,
    /// The client receiving the events as they happen.
    pub attached: Option<mpsc::Sender<Arc<Value>>>,
    /// What a disconnect of `attached` does.
    pub on_disconnect: OnDisconnect,
    /// Where to deliver the final body.
    pub webhook: Option<WebhookTarget>,
    /// An idempotency key to complete with the final body.
    pub idempotency: Option<Claim>,
    /// Put the record as `running` before the run starts (async runs).
    pub record_running: bool,
}

/// A started run.
pub struct StartedRun {
    /// The run id.
    pub run_id: Uuid,
    /// Its entry in the live registry.
    pub live: Arc<LiveRun>,
    /// The run's task: its outcome once the record is stored.
    pub task: JoinHandle<Result<RunOutcome, anyhow::Error>>,
}

/// The record of a run that has started but not finished.
pub fn running_record(
    account_id: Uuid,
    run_id: Uuid,
    accepted: &Accepted,
    input: &Value,
) -> RunRecord {
    let version = &accepted.version;
    RunRecord {
        run_id,
        account_id,
        workflow_id: version.workflow_id,
        version: version.version,
        status: RunStatus::Running,
        started_at: accepted.started_at,
        record: json!({
            "run_id": run_id,
            "workflow_id": version.workflow_id,
            "version": version.version,
            "status": "running",
            "input": input,
            "output": null,
            "error": null,
            "tool_calls": [],
            "nodes": [],
            "usage": null,
            "started_at": rfc3339(accepted.started_at),
            "duration_ms": null,
        }),
    }
}

/// Moves events from the engine to the log and the attached client. Returns the `run_finished` event (held
/// back until the record is stored) and the client if it is still there.
async fn pump(
    rx: Option<mpsc::Receiver<pipecat_engine::Event>>,
    live: &LiveRun,
    mut attached: Option<mpsc::Sender<Arc<Value>>>,
    on_disconnect: OnDisconnect,
) -> (Option<Arc<Value>>, Option<mpsc::Sender<Arc<Value>>>) {
    let Some(mut rx) = rx else {
        return (None, attached);
    };
    let gone = |live: &LiveRun| {
        if on_disconnect == OnDisconnect::Cancel {
            tracing::info!(run_id = %live.run_id, "the client went away: cancelling the run");
            live.cancel.cancel();
        } else {
            tracing::info!(run_id = %live.run_id, "the client went away: the run continues");
        }
    };
    let mut finished = None;
    loop {
        let next = match &attached {
            Some(client) => tokio::select! {
                event = rx.recv() => Some(event),
                () = client.closed() => None,
            },
            None => Some(rx.recv().await),
        };
        let Some(next) = next else {
            attached = None;
            gone(live);
            continue;
        };
        let Some(event) = next else { break };
        let value = Arc::new(stamp(&event));
        if matches!(event.kind, EventKind::RunFinished(_)) {
            finished = Some(value);
            continue;
        }
        live.push(value.clone());
        let failed = match &attached {
            Some(client) => client.send(value).await.is_err(),
            None => false,
        };
        if failed {
            attached = None;
            gone(live);
        }
    }
    (finished, attached)
}

/// Starts the run in a task of its own and registers it as live.
pub async fn start(state: &AppState, req: RunRequest) -> ApiResult<StartedRun> {
    let run_id = Uuid::now_v7();
    tracing::Span::current().record("run_id", tracing::field::display(run_id));
    let live = LiveRun::new(
        run_id,
        req.account_id,
        req.keep_events,
        state.streaming.max_kept_events,
    );
    if req.record_running {
        state
            .store
            .put_run(&running_record(
                req.account_id,
                run_id,
                &req.accepted,
                &req.input,
            ))
            .await
            .map_err(ApiError::internal)?;
    }
    state.live.insert(live.clone());
    let task = state
        .runs_in_flight
        .spawn(execute(state.clone(), live.clone(), req));
    Ok(StartedRun { run_id, live, task })
}

async fn execute(
    state: AppState,
    live: Arc<LiveRun>,
    req: RunRequest,
) -> Result<RunOutcome, anyhow::Error> {
    let RunRequest {
        account_id,
        accepted,
        input,
        keep_events,
        attached,
        on_disconnect,
        webhook,
        idempotency,
        record_running: _,
    } = req;
    let permit = accepted.permit;
    let run_id = live.run_id;
    let tools = state
        .runtime
        .tools_for(&state.store, &accepted.workflow, &accepted.version)
        .await;
    let (tx, rx) = if keep_events {
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let ctx = pipecat_engine::RunContext {
        run_id,
        events: tx,
        cancel: Some(live.cancel.clone()),
    };
    let engine = state.runtime.engine.clone();
    let run = engine.run(
        accepted.workflow.clone(),
        input.clone(),
        Arc::new(tools),
        ctx,
    );
    let (outcome, (finished, attached)) =
        tokio::join!(run, pump(rx, &live, attached, on_disconnect));

    let record = run_record(
        account_id,
        &accepted.version,
        &input,
        &outcome,
        accepted.started_at,
    );
    let mut events = if keep_events {
        live.events()
    } else {
        Vec::new()
    };
    if let Some(f) = &finished {
        events.push(Value::clone(f));
    }
    let (stored, events_stored) = tokio::join!(state.store.put_run(&record), async {
        if keep_events {
            state
                .store
                .put_run_events(account_id, run_id, &events)
                .await
        } else {
            Ok(())
        }
    });
    if stored.is_ok() {
        state.monitor.run_finished(&record);
    }
    let failure = stored.err().or(events_stored.err());
    // The REST client gets its body from the outcome; only a stored replay or a webhook needs it here.
    let body = (idempotency.is_some() || webhook.is_some()).then(|| outcome.response_body());
    if let (Some(claim), Some(body)) = (idempotency, &body) {
        if failure.is_none() {
            claim
                .complete(&state, account_id, 200, Some(run_id), body)
                .await;
        } else {
            claim.release(&state, account_id).await;
        }
    }
    if let Some(e) = &failure {
        tracing::error!(%run_id, error = %e, "recording the run");
        // The code a REST client gets for the same failure (`storage_full`, `storage_unavailable`, …).
        let storage = ApiError::storage_failure(e);
        let code = storage.as_ref().map_or("internal_error", ApiError::code);
        let event = Arc::new(error_event(
            run_id,
            code,
            "the run's record could not be stored",
        ));
        live.push(event.clone());
        if let Some(client) = &attached {
            let _ = client.send(event).await;
        }
    }
    if let Some(f) = finished {
        live.push(f.clone());
        if let Some(client) = &attached {
            let _ = client.send(f).await;
        }
    }
    drop(permit);
    state.live.remove(run_id);
    live.finish();
    tracing::info!(%run_id, status = ?outcome.status, duration_ms = outcome.duration_ms, "run finished");
    if let (Some(target), Some(body)) = (webhook, body) {
        state.runs_in_flight.spawn(crate::webhook::deliver(
            state.clone(),
            account_id,
            run_id,
            target,
            body,
        ));
    }
    match failure {
        Some(e) => Err(anyhow::Error::new(e).context(format!("recording run {run_id}"))),
        None => Ok(outcome),
    }
}
