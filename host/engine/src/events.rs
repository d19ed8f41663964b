//! Run events (CONTRACT.md §5), serialized flat: `{"type": "node_started", "seq": 3, "run_id": "…", "node_id": "…"}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc};
use uuid::Uuid;

use crate::outcome::{ErrorInfo, NodeStatus, RunBody};

/// One event of a run. `seq` starts at 1 and increases by 1 in the order events are delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the run's event stream, from 1.
    pub seq: u64,
    /// The run.
    pub run_id: Uuid,
    /// What happened (`type` and its fields).
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The run was accepted and starts.
    RunStarted {},
    /// A node starts.
    NodeStarted {
        /// The node.
        node_id: String,
    },
    /// A text delta of an LLM node as it arrives from the provider.
    Token {
        /// The node.
        node_id: String,
        /// The delta.
        text: String,
    },
    /// A tool call starts.
    ToolCall {
        /// The node making the call.
        node_id: String,
        /// The tool's own name.
        tool: String,
        /// The plugin name.
        plugin: String,
        /// The JSON arguments.
        input: Value,
        /// The call id.
        call_id: String,
    },
    /// A tool call ended.
    ToolResult {
        /// The node making the call.
        node_id: String,
        /// The tool's own name.
        tool: String,
        /// The plugin name.
        plugin: String,
        /// The call id.
        call_id: String,
        /// The result text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<String>,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ErrorInfo>,
        /// Time in the call.
        duration_ms: f64,
    },
    /// A node ended (or was skipped).
    NodeFinished {
        /// The node.
        node_id: String,
        /// How it ended.
        status: NodeStatus,
        /// Time it took.
        duration_ms: f64,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ErrorInfo>,
    },
    /// The run ended; carries the REST body (without `run_id`, which is on the event).
    RunFinished(RunBody),
}

/// Sends a run's events in order with consecutive `seq` numbers; a no-op without a listener.
pub(crate) struct Emitter {
    run_id: Uuid,
    inner: Option<Mutex<(u64, mpsc::Sender<Event>)>>,
}

impl Emitter {
    pub(crate) fn new(run_id: Uuid, events: Option<mpsc::Sender<Event>>) -> Emitter {
        Emitter {
            run_id,
            inner: events.map(|tx| Mutex::new((0, tx))),
        }
    }

    /// Whether someone listens (LLM calls stream only then).
    pub(crate) fn listening(&self) -> bool {
        self.inner.is_some()
    }

    /// Sends one event, waiting while the listener's buffer is full. A gone listener is ignored.
    pub(crate) async fn emit(&self, kind: EventKind) {
        let Some(inner) = &self.inner else { return };
        let mut guard = inner.lock().await;
        if guard.1.is_closed() {
            return;
        }
        guard.0 += 1;
        let event = Event {
            seq: guard.0,
            run_id: self.run_id,
            kind,
        };
        if guard.1.send(event).await.is_err() {
            guard.0 -= 1;
        }
    }
}
