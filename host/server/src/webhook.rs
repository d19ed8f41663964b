//! Completion webhooks: `"webhook": {"url": …}` on an invoke gets a `POST` of the run's final body (the REST
//! body) once the run is recorded.
//!
//! # Signature
//! `Pipecat-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` (the scheme Stripe
//! uses): the receiver recomputes the HMAC over the timestamp, a dot and the raw body, compares in constant
//! time and rejects old timestamps. The secret is the `"secret"` of the request's `webhook` object when
//! given, else `[webhooks] secret` of the config file; an invoke naming a webhook without either is refused
//! (`400 webhook_not_configured`).
//!
//! # Delivery
//! Up to `max_attempts` attempts (default 3) with exponential backoff (`backoff_ms`, doubled each time); a
//! `2xx` ends it. Every attempt is appended to the run record's `webhook_attempts`
//! (`{"attempt", "at", "status" | "error", "duration_ms"}`). Outbound rules: `http`/`https` only, and every
//! address the host resolves to must be public unless `[webhooks] allow_private_networks = true`; the
//! checked address is the one connected to (no second resolution).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::ApiError;
use crate::limits::rfc3339;
use crate::state::AppState;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "pipecat-signature";

/// `[webhooks]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// The signing secret used when a request's webhook has none.
    pub secret: Option<String>,
    /// Let webhooks reach private and loopback addresses (tests, local development).
    pub allow_private_networks: bool,
    /// Attempts per delivery.
    pub max_attempts: u32,
    /// Wait before the second attempt, in milliseconds; doubled for each later one.
    pub backoff_ms: u64,
    /// Deadline of one attempt, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            secret: None,
            allow_private_networks: false,
            max_attempts: 3,
            backoff_ms: 1000,
            timeout_ms: 10_000,
        }
    }
}

/// Where to deliver one run's completion.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    /// The receiver.
    pub url: url::Url,
    /// The signing secret.
    pub secret: String,
}

/// Parses the `webhook` member of an invoke body.
pub fn parse_target(value: &Value, config: &WebhookConfig) -> Result<WebhookTarget, ApiError> {
    let bad = |m: &str| ApiError::bad_request("invalid_webhook", m.to_string());
    let obj = value
        .as_object()
        .ok_or_else(|| bad("`webhook` must be an object like {\"url\": \"https://…\"}"))?;
    let raw = obj
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("`webhook.url` must be a string"))?;
    let url = url::Url::parse(raw).map_err(|e| bad(&format!("`webhook.url` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(
            "`webhook.url` must be an http or https URL with a host",
        ));
    }
    if !config.allow_private_networks {
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        let local_name = url
            .host_str()
            .is_some_and(|h| h.eq_ignore_ascii_case("localhost") || h.ends_with(".localhost"));
        if local_name || literal.is_some_and(pipecat_sandbox::is_internal_address) {
            return Err(ApiError::bad_request(
                "webhook_not_allowed",
                "`webhook.url` points to a private or loopback address, which this server does not call",
            ));
        }
    }
    let secret = match obj.get("secret") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Null) | None => config.secret.clone().ok_or_else(|| {
            ApiError::bad_request(
                "webhook_not_configured",
                "no signing secret: give `webhook.secret` or set `[webhooks] secret` in the server config",
            )
        })?,
        Some(_) => return Err(bad("`webhook.secret` must be a non-empty string")),
    };
    Ok(WebhookTarget { url, secret })
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The `Pipecat-Signature` value of `body` sent at `timestamp` (unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &message))
    )
}

/// Resolves the URL's host and returns an address allowed by the outbound rules.
async fn checked_address(url: &url::Url, allow_private: bool) -> Result<SocketAddr, String> {
    let host = url.host_str().ok_or("the URL has no host")?;
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{host} has no address"));
    }
    if !allow_private
        && addrs
            .iter()
            .any(|a| pipecat_sandbox::is_internal_address(a.ip()))
    {
        return Err(format!(
            "{host} resolves to a private or loopback address; refused"
        ));
    }
    Ok(addrs[0])
}

/// One attempt: `Ok(status)` when the receiver answered, `Err(reason)` otherwise.
async fn attempt(
    config: &WebhookConfig,
    target: &WebhookTarget,
    body: &[u8],
) -> Result<u16, String> {
    let addr = checked_address(&target.url, config.allow_private_networks).await?;
    let host = target.url.host_str().unwrap_or_default().to_string();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(config.timeout_ms.max(1)))
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would connect on our behalf to whatever the name resolves to there.
        .no_proxy()
        .resolve(&host, addr)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let timestamp = OffsetDateTime::now_utc().unix_timestamp();
    let response = client
        .post(target.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, "pipecat-webhook/1")
        .header(SIGNATURE_HEADER, signature(&target.secret, timestamp, body))
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    Ok(response.status().as_u16())
}

/// Appends one attempt to the run record's `webhook_attempts`.
async fn record_attempt(state: &AppState, account_id: Uuid, run_id: Uuid, entry: Value) {
    let result = async {
        let Some(mut run) = state.store.get_run(account_id, run_id).await? else {
            return Ok(());
        };
        if !run.record.is_object() {
            run.record = json!({});
        }
        match run.record.get_mut("webhook_attempts") {
            Some(Value::Array(attempts)) => attempts.push(entry),
            _ => run.record["webhook_attempts"] = json!([entry]),
        }
        state.store.put_run(&run).await
    }
    .await;
    if let Err(e) = result {
        tracing::error!(%run_id, error = %e, "recording a webhook attempt");
    }
}

/// Delivers `body` to the target with retries, recording every attempt on the run.
pub async fn deliver(
    state: AppState,
    account_id: Uuid,
    run_id: Uuid,
    target: WebhookTarget,
    body: Value,
) {
    let config = state.webhooks.clone();
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut wait = Duration::from_millis(config.backoff_ms);
    for n in 1..=config.max_attempts.max(1) {
        let started = Instant::now();
        let at = rfc3339(OffsetDateTime::now_utc());
        let result = attempt(&config, &target, &bytes).await;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let delivered = matches!(result, Ok(status) if (200..300).contains(&status));
        let entry = match &result {
            Ok(status) => {
                json!({"attempt": n, "at": at, "status": status, "duration_ms": duration_ms})
            }
            Err(e) => json!({"attempt": n, "at": at, "error": e, "duration_ms": duration_ms}),
        };
        tracing::info!(%run_id, attempt = n, ?result, "webhook attempt");
        record_attempt(&state, account_id, run_id, entry).await;
        if delivered || n == config.max_attempts.max(1) {
            return;
        }
        tokio::time::sleep(wait).await;
        wait = wait.saturating_mul(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 of RFC 4231.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn targets_are_checked() {
        let open = WebhookConfig {
            secret: Some("s".into()),
            ..WebhookConfig::default()
        };
        let code = |v: Value, c: &WebhookConfig| match parse_target(&v, c) {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code().to_string(),
        };
        assert_eq!(
            code(json!({"url": "https://example.com/hook"}), &open),
            "ok"
        );
        assert_eq!(
            code(json!({"url": "ftp://example.com"}), &open),
            "invalid_webhook"
        );
        assert_eq!(code(json!("https://example.com"), &open), "invalid_webhook");
        assert_eq!(
            code(json!({"url": "http://127.0.0.1:9/x"}), &open),
            "webhook_not_allowed"
        );
        assert_eq!(
            code(json!({"url": "http://localhost:9/x"}), &open),
            "webhook_not_allowed"
        );
        assert_eq!(
            code(
                json!({"url": "https://example.com"}),
                &WebhookConfig::default()
            ),
            "webhook_not_configured"
        );
        assert_eq!(
            code(
                json!({"url": "https://example.com", "secret": "mine"}),
                &WebhookConfig::default()
            ),
            "ok"
        );
    }
}
