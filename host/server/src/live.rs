//! The live-run registry: every run executing in this process, by id, with its cancellation token and
//! (for streamed and async runs) its event log, which resuming clients follow.
//!
//! # The event schema (CONTRACT §5)
//! One JSON object per event, the same on SSE and WebSocket: `type`, `seq` (from 1, no gaps, in order),
//! `run_id`, `ts` (RFC 3339, when the server saw the event), then the fields of the type (see
//! [`pipecat_engine::EventKind`]). `run_finished` carries the REST body's fields (`status`, `output`,
//! `tool_calls`, `error`, `usage`, `duration_ms`). Two types stand outside a run's sequence and carry **no**
//! `seq`: `ping` (sent every `[streaming] ping_secs` on a quiet stream; never stored, never replayed) and
//! `error` (a problem of the stream itself, e.g. the record could not be stored; stored when it concerns
//! the run).
//!
//! # Backpressure
//! The engine sends into a bounded channel ([`EVENT_BUFFER`]); the run's pump moves each event into the log
//! and on to the attached client through another bounded channel. A slow client therefore slows the run
//! instead of making the server buffer without bound; resuming clients read the log at their own pace.
//! The log itself keeps at most `max_kept_events` events (`run_finished` always).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use pipecat_engine::Event;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::limits::rfc3339;

/// Capacity of the channels between the engine, the pump and a client.
pub const EVENT_BUFFER: usize = 64;

/// `[streaming]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamingConfig {
    /// Seconds between `ping` events on SSE streams and ping frames on WebSockets.
    pub ping_secs: u64,
    /// WebSocket: close (code 4408) after this many seconds without a client message while no run is active.
    pub ws_idle_timeout_secs: u64,
    /// WebSocket: largest client message, in bytes (close code 1009 past it).
    pub ws_max_message_bytes: usize,
    /// WebSocket: seconds a connection without an `X-API-Key` header has to send its `auth` message.
    pub ws_auth_timeout_secs: u64,
    /// Events kept per run for `GET /v1/runs/{id}/events` (`run_finished` is always kept).
    pub max_kept_events: usize,
}

impl Default for StreamingConfig {
    fn default() -> Self {
        Self {
            ping_secs: 15,
            ws_idle_timeout_secs: 300,
            ws_max_message_bytes: 1024 * 1024,
            ws_auth_timeout_secs: 10,
            max_kept_events: 20_000,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

/// An engine event in the wire schema: `type`, `seq`, `run_id`, `ts`, then its fields.
pub fn stamp(event: &Event) -> Value {
    let Ok(Value::Object(mut fields)) = serde_json::to_value(event) else {
        return json!({"type": "error", "run_id": event.run_id, "ts": now()});
    };
    let mut out = Map::with_capacity(fields.len() + 1);
    for key in ["type", "seq", "run_id"] {
        if let Some(v) = fields.remove(key) {
            out.insert(key.into(), v);
        }
    }
    out.insert("ts".into(), Value::String(now()));
    out.extend(fields);
    Value::Object(out)
}

/// A `ping` event (no `seq`).
pub fn ping_event(run_id: Uuid) -> Value {
    json!({"type": "ping", "run_id": run_id, "ts": now()})
}

/// An `error` event of a run (no `seq`).
pub fn error_event(run_id: Uuid, code: &str, message: &str) -> Value {
    json!({"type": "error", "run_id": run_id, "ts": now(), "error": {"code": code, "message": message}})
}

/// The `type` of an event.
pub fn event_type(event: &Value) -> &str {
    event["type"].as_str().unwrap_or("")
}

/// The runs executing in this process.
#[derive(Default)]
pub struct LiveRuns {
    runs: Mutex<HashMap<Uuid, Arc<LiveRun>>>,
}

impl LiveRuns {
    /// Registers a run.
    pub fn insert(&self, run: Arc<LiveRun>) {
        lock(&self.runs).insert(run.run_id, run);
    }

    /// The live run `run_id` of `account_id` (another account's run is `None`).
    pub fn get(&self, account_id: Uuid, run_id: Uuid) -> Option<Arc<LiveRun>> {
        lock(&self.runs)
            .get(&run_id)
            .filter(|r| r.account_id == account_id)
            .cloned()
    }

    /// Forgets a finished run.
    pub fn remove(&self, run_id: Uuid) {
        lock(&self.runs).remove(&run_id);
    }

    /// How many runs are live.
    pub fn len(&self) -> usize {
        lock(&self.runs).len()
    }

    /// Whether no run is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Default)]
struct Log {
    events: Vec<Arc<Value>>,
    finished: bool,
    dropped: u64,
}

/// One executing run.
pub struct LiveRun {
    /// The run.
    pub run_id: Uuid,
    /// Its account.
    pub account_id: Uuid,
    /// Fires to stop the run (it then ends as `cancelled`).
    pub cancel: CancellationToken,
    /// Whether the run streams events (and keeps them).
    pub keeps_events: bool,
    max_kept: usize,
    log: Mutex<Log>,
    changed: watch::Sender<u64>,
}

impl LiveRun {
    /// A new live run.
    pub fn new(run_id: Uuid, account_id: Uuid, keeps_events: bool, max_kept: usize) -> Arc<Self> {
        Arc::new(Self {
            run_id,
            account_id,
            cancel: CancellationToken::new(),
            keeps_events,
            max_kept: max_kept.max(1),
            log: Mutex::new(Log::default()),
            changed: watch::channel(0).0,
        })
    }

    /// Appends an event to the log (unless the log is full; `run_finished` always fits) and wakes followers.
    pub fn push(&self, event: Arc<Value>) {
        {
            let mut log = lock(&self.log);
            if log.events.len() < self.max_kept || event_type(&event) == "run_finished" {
                log.events.push(event);
            } else {
                log.dropped += 1;
            }
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// Marks the run finished (its events are stored) and wakes followers.
    pub fn finish(&self) {
        lock(&self.log).finished = true;
        self.changed.send_modify(|n| *n += 1);
    }

    /// The events kept so far.
    pub fn events(&self) -> Vec<Value> {
        lock(&self.log)
            .events
            .iter()
            .map(|e| Value::clone(e))
            .collect()
    }

    /// Events not kept because the log was full.
    pub fn dropped(&self) -> u64 {
        lock(&self.log).dropped
    }

    /// Waits until the run has finished and its record is stored.
    pub async fn finished(&self) {
        let mut rx = self.changed.subscribe();
        loop {
            if lock(&self.log).finished {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Follows the log from the first event with `seq > after`: a bounded channel of every kept event
    /// (events without `seq` included) until the run finishes or the receiver is dropped.
    pub fn follow(self: &Arc<Self>, after: u64) -> mpsc::Receiver<Arc<Value>> {
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let run = self.clone();
        tokio::spawn(async move {
            let mut changes = run.changed.subscribe();
            let mut next = 0usize;
            loop {
                changes.borrow_and_update();
                let (batch, finished) = {
                    let log = lock(&run.log);
                    let batch: Vec<Arc<Value>> = log.events[next.min(log.events.len())..].to_vec();
                    (batch, log.finished)
                };
                next += batch.len();
                for event in batch {
                    let seq = event["seq"].as_u64();
                    if seq.is_some_and(|s| s <= after) {
                        continue;
                    }
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
                if finished {
                    return;
                }
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    () = tx.closed() => return,
                }
            }
        });
        rx
    }
}

/// Replays stored events after `after` (events without `seq` included) into a bounded channel.
pub fn replay(events: Vec<Value>, after: u64) -> mpsc::Receiver<Arc<Value>> {
    let (tx, rx) = mpsc::channel(EVENT_BUFFER);
    tokio::spawn(async move {
        for event in events {
            if event["seq"].as_u64().is_some_and(|s| s <= after) {
                continue;
            }
            if tx.send(Arc::new(event)).await.is_err() {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipecat_engine::EventKind;

    fn event(seq: u64, run_id: Uuid) -> Arc<Value> {
        Arc::new(stamp(&Event {
            seq,
            run_id,
            kind: EventKind::NodeStarted {
                node_id: format!("n{seq}"),
            },
        }))
    }

    #[test]
    fn stamped_events_lead_with_type_seq_run_id_and_ts() {
        let run_id = Uuid::now_v7();
        let v = event(3, run_id);
        let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["type", "seq", "run_id", "ts", "node_id"]);
        assert_eq!(v["type"], "node_started");
        assert_eq!(v["seq"], 3);
        assert!(
            OffsetDateTime::parse(
                v["ts"].as_str().expect("ts"),
                &time::format_description::well_known::Rfc3339
            )
            .is_ok()
        );
    }

    #[tokio::test]
    async fn followers_get_events_after_their_seq_then_live_ones_then_the_end() {
        let run = LiveRun::new(Uuid::now_v7(), Uuid::now_v7(), true, 100);
        for seq in 1..=3 {
            run.push(event(seq, run.run_id));
        }
        let mut rx = run.follow(1);
        assert_eq!(rx.recv().await.expect("2")["seq"], 2);
        assert_eq!(rx.recv().await.expect("3")["seq"], 3);
        run.push(event(4, run.run_id));
        assert_eq!(rx.recv().await.expect("4")["seq"], 4);
        run.finish();
        assert!(rx.recv().await.is_none());
    }

    #[test]
    fn the_log_is_capped_but_keeps_run_finished() {
        let run = LiveRun::new(Uuid::now_v7(), Uuid::now_v7(), true, 2);
        for seq in 1..=5 {
            run.push(event(seq, run.run_id));
        }
        run.push(Arc::new(
            json!({"type": "run_finished", "seq": 6, "run_id": run.run_id}),
        ));
        let kept: Vec<u64> = run
            .events()
            .iter()
            .filter_map(|e| e["seq"].as_u64())
            .collect();
        assert_eq!(kept, [1, 2, 6]);
        assert_eq!(run.dropped(), 3);
    }
}
