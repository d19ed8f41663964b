//! Server-Sent Events: the stream of an invoke with `Accept: text/event-stream`, and
//! `GET /v1/runs/{run_id}/events?after=<seq>` (or `Last-Event-ID`), which replays the kept events of a run
//! after `seq` and then follows it live while it is still running.
//!
//! Each SSE message has `event: <type>`, `id: <seq>` (absent on `ping` and `error`) and `data: <the event
//! JSON>` (schema in [`crate::live`]). The stream ends after `run_finished`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use pipecat_store::IdempotencyEntry;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::auth::AccountAuth;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::idempotency::REPLAYED_HEADER;
use crate::live::{event_type, ping_event, replay};
use crate::routes::{PathParam, parse_id};
use crate::state::AppState;

fn to_sse(event: &Value) -> SseEvent {
    let mut sse = SseEvent::default()
        .event(event_type(event))
        .data(event.to_string());
    if let Some(seq) = event["seq"].as_u64() {
        sse = sse.id(seq.to_string());
    }
    sse
}

/// The SSE response of one run's events from `rx`, with a `ping` every `[streaming] ping_secs` while quiet.
pub fn sse(state: &AppState, run_id: Uuid, rx: mpsc::Receiver<Arc<Value>>) -> Response {
    let every = Duration::from_secs(state.streaming.ping_secs.max(1));
    let mut response = Sse::new(events(run_id, rx, every)).into_response();
    let h = response.headers_mut();
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if let Ok(v) = HeaderValue::from_str(&run_id.to_string()) {
        h.insert("x-run-id", v);
    }
    response
}

fn events(
    run_id: Uuid,
    rx: mpsc::Receiver<Arc<Value>>,
    every: Duration,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    futures::stream::unfold(Some((rx, tick)), move |state| async move {
        let (mut rx, mut tick) = state?;
        tokio::select! {
            event = rx.recv() => {
                let event = event?;
                let last = event_type(&event) == "run_finished";
                Some((Ok(to_sse(&event)), (!last).then_some((rx, tick))))
            }
            _ = tick.tick() => Some((Ok(to_sse(&ping_event(run_id))), Some((rx, tick)))),
        }
    })
}

/// The answer to a retried request whose `Idempotency-Key` already has a response: the same status and
/// body, or (for a streaming retry of a streamed run) its kept events.
pub async fn replay_response(
    state: &AppState,
    account_id: Uuid,
    entry: &IdempotencyEntry,
    stream: bool,
) -> ApiResult<Response> {
    let status = entry
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = None;
    if stream
        && status == StatusCode::OK
        && let Some(run_id) = entry.run_id
        && let Some(events) = state
            .store
            .get_run_events(account_id, run_id)
            .await
            .map_err(ApiError::internal)?
    {
        response = Some(sse(state, run_id, replay(events, 0)));
    }
    let mut response = response.unwrap_or_else(|| {
        (status, ApiJson(entry.body.clone().unwrap_or(Value::Null))).into_response()
    });
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    Ok(response)
}

/// Query of `GET /v1/runs/{run_id}/events`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct EventsQuery {
    /// Replay events with a `seq` greater than this (default 0: all). Overrides `Last-Event-ID`.
    pub after: Option<String>,
}

fn after_seq(query: &EventsQuery, headers: &HeaderMap) -> ApiResult<u64> {
    let raw = match &query.after {
        Some(a) => Some(a.as_str()),
        None => headers.get("last-event-id").and_then(|v| v.to_str().ok()),
    };
    match raw.map(str::trim) {
        None | Some("") => Ok(0),
        Some(s) => s.parse().map_err(|_| {
            ApiError::bad_request("invalid_request", "`after` must be a non-negative integer")
        }),
    }
}

/// A run's events as SSE: the kept ones after `after`, then live ones until the run finishes.
#[utoipa::path(get, path = "/v1/runs/{run_id}/events", tag = "runs", params(EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this seq (when `after` is absent)")),
    responses(
        (status = 200, description = "`text/event-stream` of the run's events (schema of CONTRACT §5)"),
        (status = 400, description = "invalid_request (bad `after`)"),
        (status = 404, description = "run_not_found, or events_not_found for a run invoked without streaming")))]
pub async fn run_events(
    auth: AccountAuth,
    State(state): State<AppState>,
    PathParam(run_id): PathParam,
    ApiQuery(query): ApiQuery<EventsQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let run_id = parse_id(&run_id, "run_not_found")?;
    let after = after_seq(&query, &headers)?;
    let account_id = auth.account_id();
    let no_events = || {
        ApiError::not_found(
            "events_not_found",
            "this run was invoked without streaming, so its events were not kept; GET /v1/runs/{run_id} has its record",
        )
    };
    if let Some(live) = state.live.get(account_id, run_id) {
        if !live.keeps_events {
            return Err(no_events());
        }
        return Ok(sse(&state, run_id, live.follow(after)));
    }
    // Not live: a finished run's events are stored before it leaves the registry.
    if let Some(events) = state
        .store
        .get_run_events(account_id, run_id)
        .await
        .map_err(ApiError::internal)?
    {
        return Ok(sse(&state, run_id, replay(events, after)));
    }
    match state
        .store
        .get_run(account_id, run_id)
        .await
        .map_err(ApiError::internal)?
    {
        Some(_) => Err(no_events()),
        None => Err(ApiError::not_found("run_not_found", "run not found")),
    }
}
