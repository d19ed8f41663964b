//! Run statistics maintained incrementally, off the request's critical path (CONTRACT §7).
//!
//! A finished run's record is summarised ([`agg::RunSummary`]) and sent over a bounded channel to one
//! background task, which adds it to its workflow's aggregates ([`agg::WorkflowStats`]: all time and
//! per-minute, per-hour and per-day buckets, each with sparse latency histograms per run, node, tool and
//! version) and to the Prometheus [`Metrics`]. `GET /v1/workflows/{id}/stats` reads the aggregates: it
//! never scans runs. The task writes changed workflows to the store every second and at shutdown, and
//! loads them at start, so a restart keeps the statistics.
//!
//! Counting is exactly once per run id in memory (a run put again, e.g. an async run put as `running` and
//! then finished, counts once, when finished). A crash — not a clean shutdown — can lose the runs of the
//! last second from the statistics, never count one twice: a workflow's snapshot is written whole.
//!
//! The retention task ([`retention`]) prunes run records by age and count; statistics stay.

pub mod agg;
pub mod hist;
pub mod query;
pub mod retention;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pipecat_store::{DynStore, RunRecord, StatsBlob};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use self::agg::{RunSummary, WorkflowStats};
use self::query::Window;
use crate::config::MonitoringConfig;
use crate::metrics::Metrics;

/// Finished runs waiting for the stats task; past this, senders wait in a task of their own.
const QUEUE: usize = 16_384;
/// Run ids remembered to refuse counting a run twice.
const RECENT: usize = 100_000;

enum Msg {
    Run(Box<RunSummary>),
    Barrier(oneshot::Sender<()>),
    Close(oneshot::Sender<()>),
}

#[derive(Default)]
struct Book {
    workflows: HashMap<(Uuid, Uuid), WorkflowStats>,
    dirty: HashSet<(Uuid, Uuid)>,
    recent: HashSet<Uuid>,
    recent_order: VecDeque<Uuid>,
}

impl Book {
    fn apply(&mut self, run: &RunSummary, now: OffsetDateTime) -> bool {
        if !self.recent.insert(run.run_id) {
            return false;
        }
        self.recent_order.push_back(run.run_id);
        if self.recent_order.len() > RECENT
            && let Some(old) = self.recent_order.pop_front()
        {
            self.recent.remove(&old);
        }
        let key = (run.account_id, run.workflow_id);
        self.workflows.entry(key).or_default().add(run, now);
        self.dirty.insert(key);
        true
    }
}

/// The statistics and metrics of the server. Cheap to clone.
#[derive(Clone)]
pub struct Monitor {
    tx: mpsc::Sender<Msg>,
    book: Arc<Mutex<Book>>,
    /// The Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Monitoring configuration.
    pub config: MonitoringConfig,
}

impl Monitor {
    /// Starts the stats task (loading stored statistics first). Needs a Tokio runtime.
    pub fn start(store: DynStore, config: MonitoringConfig) -> Monitor {
        let (tx, rx) = mpsc::channel(QUEUE);
        let book = Arc::new(Mutex::new(Book::default()));
        let metrics = Arc::new(Metrics::default());
        let flush_every = Duration::from_millis(config.stats_flush_ms.max(10));
        tokio::spawn(stats_task(
            store,
            book.clone(),
            metrics.clone(),
            rx,
            flush_every,
        ));
        Monitor {
            tx,
            book,
            metrics,
            config,
        }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a recorded run once it has finished (a `running` record is ignored). Never waits.
    pub fn run_finished(&self, run: &RunRecord) {
        let Some(summary) = RunSummary::of(run) else {
            return;
        };
        match self.tx.try_send(Msg::Run(Box::new(summary))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(msg)) => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(msg).await;
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::warn!(run_id = %run.run_id, "stats task stopped; run not counted");
            }
        }
    }

    /// Waits until every run sent so far is counted (and the stored statistics are loaded).
    pub async fn settle(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Barrier(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Counts what is queued, writes the statistics to the store and stops the task (at shutdown).
    pub async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Close(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// The statistics of one workflow over a window.
    pub fn stats(&self, account_id: Uuid, workflow_id: Uuid, window: Window) -> Value {
        let book = self.book();
        query::answer(
            book.workflows.get(&(account_id, workflow_id)),
            window,
            OffsetDateTime::now_utc(),
        )
    }
}

async fn stats_task(
    store: DynStore,
    book: Arc<Mutex<Book>>,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<Msg>,
    flush_every: Duration,
) {
    match store.load_stats().await {
        Ok(blobs) => {
            let mut b = book.lock().unwrap_or_else(|p| p.into_inner());
            for blob in blobs {
                match serde_json::from_slice::<WorkflowStats>(&blob.data) {
                    Ok(stats) => {
                        b.workflows
                            .insert((blob.account_id, blob.workflow_id), stats);
                    }
                    Err(e) => {
                        tracing::warn!(workflow_id = %blob.workflow_id, error = %e, "unreadable statistics; starting them over")
                    }
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "loading statistics failed"),
    }
    let mut tick = tokio::time::interval(flush_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Run(run)) => {
                    if apply(&book, &run) {
                        metrics.run(&run);
                    }
                }
                Some(Msg::Barrier(ack)) => {
                    let _ = ack.send(());
                }
                Some(Msg::Close(ack)) => {
                    while let Ok(msg) = rx.try_recv() {
                        if let Msg::Run(run) = msg
                            && apply(&book, &run)
                        {
                            metrics.run(&run);
                        }
                    }
                    flush(&store, &book).await;
                    let _ = ack.send(());
                    return;
                }
                None => {
                    flush(&store, &book).await;
                    return;
                }
            },
            _ = tick.tick() => flush(&store, &book).await,
        }
    }
}

/// Counts a run in the book; `false` when it was counted before.
fn apply(book: &Mutex<Book>, run: &RunSummary) -> bool {
    book.lock()
        .unwrap_or_else(|p| p.into_inner())
        .apply(run, OffsetDateTime::now_utc())
}

/// Writes the changed workflows' statistics; on failure they stay marked for the next round.
async fn flush(store: &DynStore, book: &Mutex<Book>) {
    let blobs: Vec<StatsBlob> = {
        let mut b = book.lock().unwrap_or_else(|p| p.into_inner());
        if b.dirty.is_empty() {
            return;
        }
        let dirty: Vec<_> = b.dirty.drain().collect();
        dirty
            .into_iter()
            .filter_map(|key| {
                let data = serde_json::to_vec(b.workflows.get(&key)?).ok()?;
                Some(StatsBlob {
                    account_id: key.0,
                    workflow_id: key.1,
                    data,
                })
            })
            .collect()
    };
    if let Err(e) = store.put_stats(&blobs).await {
        tracing::error!(error = %e, "writing statistics failed; retrying");
        let mut b = book.lock().unwrap_or_else(|p| p.into_inner());
        b.dirty
            .extend(blobs.iter().map(|x| (x.account_id, x.workflow_id)));
    }
}

#[cfg(test)]
mod tests {
    use pipecat_store::{RunStatus, SledStore};
    use serde_json::json;

    use super::*;

    fn run(workflow: Uuid, account: Uuid, status: RunStatus, ms: f64) -> RunRecord {
        let error = (status == RunStatus::Error).then(|| json!({"code": "tool_failed"}));
        RunRecord {
            run_id: Uuid::now_v7(),
            account_id: account,
            workflow_id: workflow,
            version: 1,
            status,
            started_at: OffsetDateTime::now_utc(),
            record: json!({
                "duration_ms": ms,
                "error": error,
                "usage": {"input_tokens": 3, "output_tokens": 2},
                "nodes": [{"node_id": "a", "type": "template", "status": "success", "offset_ms": 0.0,
                           "duration_ms": ms / 2.0, "error": null}],
                "tool_calls": [],
            }),
        }
    }

    #[tokio::test]
    async fn counts_each_finished_run_once_and_keeps_them_across_a_restart() {
        let dir = tempfile::tempdir().expect("dir");
        let store: DynStore = Arc::new(SledStore::open(dir.path()).expect("store"));
        let (account, workflow) = (Uuid::now_v7(), Uuid::now_v7());
        let monitor = Monitor::start(store.clone(), MonitoringConfig::default());
        // Durations 1..=100 ms: p50 = 50, p95 = 95, p99 = 99 exactly, within the histogram's precision.
        for i in 1..=100 {
            let status = if i % 10 == 0 {
                RunStatus::Error
            } else {
                RunStatus::Success
            };
            let r = run(workflow, account, status, f64::from(i));
            monitor.run_finished(&r);
            // Put again (e.g. with a webhook attempt added): not counted again.
            monitor.run_finished(&r);
        }
        let mut running = run(workflow, account, RunStatus::Running, 1.0);
        monitor.run_finished(&running);
        running.status = RunStatus::Success;
        monitor.run_finished(&running);
        monitor.settle().await;
        let check = |stats: &Value| {
            assert_eq!(stats["runs"], 101, "{stats:#}");
            assert_eq!(stats["error"], 10);
            assert_eq!(stats["error_codes"], json!({"tool_failed": 10}));
            assert_eq!(stats["tokens"]["input"], 303);
            for (q, want) in [("p50", 50.0), ("p95", 95.0), ("p99", 99.0)] {
                let got = stats["latency_ms"][q].as_f64().expect("percentile");
                assert!((got - want).abs() <= want * 0.005, "{q}: {got} vs {want}");
            }
            let node = &stats["nodes"][0];
            assert_eq!(node["count"], 101);
            let p50 = node["latency_ms"]["p50"].as_f64().expect("node p50");
            assert!((p50 - 25.0).abs() <= 0.2, "node p50 {p50}");
        };
        let first = monitor.stats(account, workflow, Window::All);
        check(&first);
        check(&monitor.stats(account, workflow, Window::Hour));
        assert_eq!(
            monitor.stats(Uuid::now_v7(), workflow, Window::All)["runs"],
            0,
            "another account's workflow id shares nothing"
        );
        monitor.close().await;

        let again = Monitor::start(store, MonitoringConfig::default());
        again.settle().await;
        let mut reloaded = again.stats(account, workflow, Window::All);
        reloaded["to"] = first["to"].clone();
        assert_eq!(reloaded, first);
    }
}
