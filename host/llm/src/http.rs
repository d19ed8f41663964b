//! HTTP behaviour shared by every provider: timeouts, retries with backoff, body limits, and
//! turning error responses into [`LlmError`]s that name the provider, the status and the
//! provider's own message.

use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use rand::Rng;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde_json::Value;

use crate::sse::{SseEvent, SseParser};
use crate::types::LlmError;

/// Timeouts, retry policy and limits of provider calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpPolicy {
    /// Time to open the TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Time from sending the request to receiving the response headers.
    pub first_byte_timeout: Duration,
    /// Longest silence while reading a body or stream.
    pub idle_timeout: Duration,
    /// Bound on the whole call, retries included.
    pub total_timeout: Duration,
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    /// First backoff ceiling; doubles each retry (full jitter picks a wait in `0..=ceiling`).
    pub base_backoff: Duration,
    /// Largest backoff ceiling.
    pub max_backoff: Duration,
    /// Cap on the sum of waits between attempts. A `Retry-After` beyond it gives up at once.
    pub max_retry_wait: Duration,
    /// Largest response body (or whole stream) accepted.
    pub max_body_bytes: usize,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        HttpPolicy {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(60),
            total_timeout: Duration::from_secs(600),
            max_attempts: 3,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_wait: Duration::from_secs(30),
            max_body_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Statuses worth another attempt.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504 | 529)
}

/// Largest error body read to extract a message.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Longest error message kept from a provider.
const MAX_MESSAGE_CHARS: usize = 300;

/// A provider's HTTP client with its policy.
#[derive(Debug, Clone)]
pub(crate) struct HttpClient {
    provider: String,
    client: reqwest::Client,
    policy: HttpPolicy,
}

impl HttpClient {
    pub(crate) fn new(provider: &str, policy: HttpPolicy) -> Self {
        // No redirects: a provider API never needs one, and reqwest keeps headers such as Anthropic's
        // `x-api-key` on a redirect to another host.
        let client = reqwest::Client::builder()
            .connect_timeout(policy.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        HttpClient {
            provider: provider.to_owned(),
            client,
            policy,
        }
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub(crate) fn protocol_error(&self, message: impl Into<String>) -> LlmError {
        LlmError::Protocol {
            provider: self.provider.clone(),
            message: message.into(),
        }
    }

    fn timeout_error(&self, message: impl Into<String>) -> LlmError {
        LlmError::Timeout {
            provider: self.provider.clone(),
            message: message.into(),
        }
    }

    /// Runs a whole call under the total timeout.
    pub(crate) async fn within_total<T>(
        &self,
        call: impl Future<Output = Result<T, LlmError>>,
    ) -> Result<T, LlmError> {
        let total = self.policy.total_timeout;
        tokio::time::timeout(total, call).await.unwrap_or_else(|_| {
            Err(self.timeout_error(format!(
                "no complete answer within {}s",
                total.as_secs_f32()
            )))
        })
    }

    /// Sends a request built by `make` until it gets a 2xx response, retrying transient failures.
    pub(crate) async fn send(
        &self,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, LlmError> {
        let policy = &self.policy;
        let mut waited = Duration::ZERO;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let (error, retry_after, retryable) = match self.attempt(&make).await {
                Ok(Ok(response)) => return Ok(response),
                Ok(Err((error, retry_after))) => {
                    let retryable = match &error {
                        LlmError::RateLimited { .. } => true,
                        LlmError::Status { status, .. } => is_retryable_status(*status),
                        _ => false,
                    };
                    (error, retry_after, retryable)
                }
                Err(error) => {
                    let retryable = matches!(error, LlmError::Connection { .. });
                    (error, None, retryable)
                }
            };
            if !retryable || attempt >= policy.max_attempts.max(1) {
                return Err(error);
            }
            let wait = match retry_after {
                Some(wait) if wait > policy.max_retry_wait => return Err(error),
                Some(wait) => wait,
                None => self.backoff(attempt),
            };
            if waited + wait > policy.max_retry_wait {
                return Err(error);
            }
            tracing::warn!(provider = %self.provider, attempt, wait_ms = wait.as_millis() as u64, %error, "retrying LLM call");
            tokio::time::sleep(wait).await;
            waited += wait;
        }
    }

    /// One attempt: `Err` for transport failures, `Ok(Err)` for error statuses.
    async fn attempt(
        &self,
        make: &impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Result<reqwest::Response, (LlmError, Option<Duration>)>, LlmError> {
        let first_byte = self.policy.first_byte_timeout;
        let response = match tokio::time::timeout(first_byte, make().send()).await {
            Err(_) => {
                return Err(
                    self.timeout_error(format!("no response within {}s", first_byte.as_secs_f32()))
                );
            }
            Ok(Err(e)) => return Err(self.transport_error(&e)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(Ok(response));
        }
        let retry_after = parse_retry_after(response.headers());
        let content_type = header_str(response.headers(), CONTENT_TYPE.as_str()).map(str::to_owned);
        let mut response = response;
        let mut body = Vec::new();
        // Best effort: an error body that cannot be read still gives the status.
        while body.len() < MAX_ERROR_BODY {
            match self.next_chunk(&mut response).await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let message = error_message(&body, content_type.as_deref());
        let provider = self.provider.clone();
        let error = if status.as_u16() == 429 {
            LlmError::RateLimited {
                provider,
                retry_after,
                message,
            }
        } else {
            LlmError::Status {
                provider,
                status: status.as_u16(),
                message,
            }
        };
        Ok(Err((error, retry_after)))
    }

    fn transport_error(&self, e: &reqwest::Error) -> LlmError {
        let provider = self.provider.clone();
        let message = error_chain(e);
        if e.is_timeout() {
            LlmError::Timeout { provider, message }
        } else {
            LlmError::Connection { provider, message }
        }
    }

    /// Full-jitter exponential backoff before attempt `attempt + 1`.
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let ceiling = self
            .policy
            .base_backoff
            .saturating_mul(factor)
            .min(self.policy.max_backoff);
        let ms = ceiling.as_millis() as u64;
        Duration::from_millis(rand::thread_rng().gen_range(0..=ms))
    }

    /// The next body chunk, under the idle timeout.
    pub(crate) async fn next_chunk(
        &self,
        response: &mut reqwest::Response,
    ) -> Result<Option<Bytes>, LlmError> {
        let idle = self.policy.idle_timeout;
        match tokio::time::timeout(idle, response.chunk()).await {
            Err(_) => Err(self.timeout_error(format!(
                "no data for {}s while reading the response",
                idle.as_secs_f32()
            ))),
            Ok(Err(e)) => Err(self.transport_error(&e)),
            Ok(Ok(chunk)) => Ok(chunk),
        }
    }

    /// Reads a whole body under the idle timeout and the size cap.
    pub(crate) async fn read_body(
        &self,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, LlmError> {
        let mut body = Vec::new();
        while let Some(chunk) = self.next_chunk(&mut response).await? {
            body.extend_from_slice(&chunk);
            if body.len() > self.policy.max_body_bytes {
                return Err(self.protocol_error(format!(
                    "response body exceeds {} bytes",
                    self.policy.max_body_bytes
                )));
            }
        }
        Ok(body)
    }

    /// Wraps a streaming response into an SSE event reader.
    pub(crate) fn events(&self, response: reqwest::Response) -> EventReader<'_> {
        EventReader {
            http: self,
            response,
            parser: SseParser::new(),
            queue: VecDeque::new(),
            read: 0,
            ended: false,
        }
    }
}

/// Reads SSE events from a streaming response.
pub(crate) struct EventReader<'a> {
    http: &'a HttpClient,
    response: reqwest::Response,
    parser: SseParser,
    queue: VecDeque<SseEvent>,
    read: usize,
    ended: bool,
}

impl EventReader<'_> {
    /// The next event, or `None` at the end of the body.
    pub(crate) async fn next(&mut self) -> Result<Option<SseEvent>, LlmError> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            match self.http.next_chunk(&mut self.response).await? {
                Some(chunk) => {
                    self.read += chunk.len();
                    let cap = self.http.policy.max_body_bytes;
                    if self.read > cap {
                        return Err(self
                            .http
                            .protocol_error(format!("stream exceeds {cap} bytes")));
                    }
                    self.queue.extend(self.parser.feed(&chunk));
                }
                None => {
                    self.ended = true;
                    self.queue.extend(self.parser.finish());
                }
            }
        }
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = header_str(headers, RETRY_AFTER.as_str())?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs.min(1e9)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The provider's message from an error body: OpenAI's / Anthropic's `{"error": {"message"}}`,
/// a summary of an HTML page, or the start of the text.
pub(crate) fn error_message(body: &[u8], content_type: Option<&str>) -> String {
    if let Ok(json) = serde_json::from_slice::<Value>(body) {
        let error = json.get("error").unwrap_or(&json);
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .or_else(|| error.as_str());
        let kind = error.get("type").and_then(Value::as_str);
        match (kind, message) {
            (Some(kind), Some(message)) => return truncate(&format!("{kind}: {message}")),
            (None, Some(message)) => return truncate(message),
            _ => return truncate(&json.to_string()),
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let is_html = content_type.is_some_and(|c| c.contains("html")) || text.starts_with('<');
    if is_html {
        let lower = text.to_ascii_lowercase();
        let title = lower
            .find("<title>")
            .and_then(|start| {
                lower[start..]
                    .find("</title>")
                    .map(|end| (start + 7, start + end))
            })
            .and_then(|(from, to)| text.get(from..to))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        return match title {
            Some(title) => truncate(&format!("HTML page \"{title}\" ({} bytes)", body.len())),
            None => format!("HTML page ({} bytes)", body.len()),
        };
    }
    if text.is_empty() {
        "empty body".to_owned()
    } else {
        truncate(text)
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_MESSAGE_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_MESSAGE_CHARS).collect();
    out.push('…');
    out
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_from_bodies() {
        let openai =
            br#"{"error":{"message":"Invalid model","type":"invalid_request_error","code":null}}"#;
        assert_eq!(
            error_message(openai, Some("application/json")),
            "invalid_request_error: Invalid model"
        );
        let anthropic =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            error_message(anthropic, None),
            "overloaded_error: Overloaded"
        );
        let html = b"<html><head><title>502 Bad Gateway</title></head><body>long</body></html>";
        assert!(
            error_message(html, Some("text/html")).starts_with("HTML page \"502 Bad Gateway\"")
        );
        assert_eq!(error_message(b"", None), "empty body");
        assert!(
            error_message("x".repeat(1000).as_bytes(), None)
                .chars()
                .count()
                <= MAX_MESSAGE_CHARS + 1
        );
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().expect("header"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(7)));
        let future = SystemTime::now() + Duration::from_secs(120);
        h.insert(
            RETRY_AFTER,
            httpdate::fmt_http_date(future).parse().expect("header"),
        );
        let d = parse_retry_after(&h).expect("date");
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("header"),
        );
        assert_eq!(parse_retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, "soon".parse().expect("header"));
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn backoff_stays_under_ceiling() {
        let policy = HttpPolicy {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            ..HttpPolicy::default()
        };
        let http = HttpClient::new("p", policy);
        for attempt in 1..40 {
            assert!(http.backoff(attempt) <= Duration::from_millis(300));
        }
        assert!(http.backoff(1) <= Duration::from_millis(100));
    }
}
