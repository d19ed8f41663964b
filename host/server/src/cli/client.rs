//! A small HTTP client for the Pipecat API, used by the client subcommands.
//!
//! Every answer is JSON. Error answers of the form `{"error": {"code", "message", "details"?}}` become a
//! [`ClientError::Api`] whose `Display` reads `workflow_not_found: no workflow with id …`, so the binary can
//! print `error: <that>` and, for invalid workflows, each problem on its own line.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde_json::Value;

/// Which key a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// An account's API key (`--api-key` / `PIPECAT_API_KEY`).
    Api,
    /// The operator's admin key (`--admin-key` / `PIPECAT_ADMIN_KEY`).
    Admin,
}

/// Why a request did not produce a successful JSON answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{code}: {message}")]
    Api {
        /// HTTP status of the answer.
        status: StatusCode,
        /// The stable machine-readable code, e.g. `workflow_not_found`.
        code: String,
        /// The human-readable message.
        message: String,
        /// Extra items, e.g. every problem of an invalid workflow.
        details: Vec<Value>,
    },
    /// The server answered something that is not the API's JSON.
    #[error("unexpected answer from {url} (HTTP {status}): {body}")]
    Unexpected {
        /// The URL that was requested.
        url: Url,
        /// HTTP status of the answer.
        status: StatusCode,
        /// The start of the body.
        body: String,
    },
    /// The request could not be sent or its answer not read.
    #[error("request to {url} failed")]
    Transport {
        /// The URL that was requested.
        url: Url,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The command needs a key that was not given.
    #[error("this command needs {0}")]
    MissingKey(&'static str),
    /// The `--server` value is not a usable URL.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidServer {
        /// The value given.
        url: String,
        /// Why it is unusable.
        reason: String,
    },
}

impl ClientError {
    /// Each problem listed in the error's `details`, one readable line each (`path: message`).
    pub fn detail_lines(&self) -> Vec<String> {
        match self {
            Self::Api { details, .. } => details.iter().map(format_detail).collect(),
            _ => Vec::new(),
        }
    }
}

/// Renders one item of an error's `details` as `path: message` when it has those fields.
pub fn format_detail(detail: &Value) -> String {
    match detail {
        Value::String(text) => text.clone(),
        Value::Object(fields) => {
            let text = |key: &str| fields.get(key).and_then(Value::as_str);
            let location = text("path")
                .or_else(|| text("node_id"))
                .or_else(|| text("field"));
            let message = text("message").or_else(|| text("error"));
            match (location, message) {
                (Some(location), Some(message)) => format!("{location}: {message}"),
                (None, Some(message)) => message.to_owned(),
                _ => detail.to_string(),
            }
        }
        other => other.to_string(),
    }
}

/// A connection to one Pipecat server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    api_key: Option<String>,
    admin_key: Option<String>,
}

impl Client {
    /// A client for the server at `server` (e.g. `http://127.0.0.1:8080`).
    pub fn new(
        server: &str,
        api_key: Option<String>,
        admin_key: Option<String>,
    ) -> Result<Self, ClientError> {
        let invalid = |reason: String| ClientError::InvalidServer {
            url: server.to_owned(),
            reason,
        };
        let base = Url::parse(server).map_err(|e| invalid(e.to_string()))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("expected an http or https URL".to_owned()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("pipecat-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            http,
            base,
            api_key: api_key.filter(|k| !k.is_empty()),
            admin_key: admin_key.filter(|k| !k.is_empty()),
        })
    }

    /// The URL of the API path made of `segments` (each one percent-encoded as needed).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Starts a request to `segments`, carrying the key `auth` asks for.
    pub fn request(
        &self,
        method: Method,
        auth: Auth,
        segments: &[&str],
    ) -> Result<(RequestBuilder, Url), ClientError> {
        let key = match auth {
            Auth::Api => self.api_key.as_deref().ok_or(ClientError::MissingKey(
                "an API key: pass --api-key or set PIPECAT_API_KEY",
            ))?,
            Auth::Admin => self.admin_key.as_deref().ok_or(ClientError::MissingKey(
                "the admin key: pass --admin-key or set PIPECAT_ADMIN_KEY",
            ))?,
        };
        let url = self.url(segments);
        let builder = self
            .http
            .request(method, url.clone())
            .header("X-API-Key", key)
            .header(reqwest::header::ACCEPT, "application/json");
        Ok((builder, url))
    }

    /// `GET` a JSON document.
    pub async fn get(
        &self,
        auth: Auth,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value, ClientError> {
        let (builder, url) = self.request(Method::GET, auth, segments)?;
        send(builder.query(query), url).await
    }

    /// `POST` a JSON body and read the JSON answer.
    pub async fn post_json(
        &self,
        auth: Auth,
        segments: &[&str],
        body: &Value,
    ) -> Result<Value, ClientError> {
        let (builder, url) = self.request(Method::POST, auth, segments)?;
        send(builder.json(body), url).await
    }

    /// `PUT` a JSON body and read the JSON answer.
    pub async fn put_json(
        &self,
        auth: Auth,
        segments: &[&str],
        body: &Value,
    ) -> Result<Value, ClientError> {
        let (builder, url) = self.request(Method::PUT, auth, segments)?;
        send(builder.json(body), url).await
    }

    /// `POST` raw bytes with the given content type and read the JSON answer.
    pub async fn post_bytes(
        &self,
        auth: Auth,
        segments: &[&str],
        query: &[(&str, String)],
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Value, ClientError> {
        let (builder, url) = self.request(Method::POST, auth, segments)?;
        let builder = builder
            .query(query)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        send(builder, url).await
    }
}

/// Sends a request and turns the answer into JSON or a [`ClientError`].
async fn send(builder: RequestBuilder, url: Url) -> Result<Value, ClientError> {
    let transport = |source| ClientError::Transport {
        url: url.clone(),
        source,
    };
    let response = builder.send().await.map_err(transport)?;
    let status = response.status();
    let body = response.bytes().await.map_err(transport)?;
    let parsed = if body.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_slice::<Value>(&body)
    };
    match parsed {
        Ok(value) if status.is_success() => Ok(value),
        Ok(value) => match api_error(status, &value) {
            Some(error) => Err(error),
            None => Err(unexpected(url, status, &body)),
        },
        Err(_) => Err(unexpected(url, status, &body)),
    }
}

/// Reads `{"error": {"code", "message", "details"?}}`.
fn api_error(status: StatusCode, value: &Value) -> Option<ClientError> {
    let error = value.get("error")?;
    let code = error.get("code")?.as_str()?.to_owned();
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let details = match error.get("details") {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other.clone()],
    };
    Some(ClientError::Api {
        status,
        code,
        message,
        details,
    })
}

fn unexpected(url: Url, status: StatusCode, body: &[u8]) -> ClientError {
    const SHOWN: usize = 300;
    let text = String::from_utf8_lossy(body);
    let body = match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    };
    ClientError::Unexpected { url, status, body }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn api_error_bodies_become_code_and_message() {
        let body = json!({"error": {"code": "workflow_not_found", "message": "no such workflow"}});
        let error = api_error(StatusCode::NOT_FOUND, &body).expect("an API error");
        assert_eq!(error.to_string(), "workflow_not_found: no such workflow");
    }

    #[test]
    fn details_are_rendered_as_path_and_message() {
        let body = json!({"error": {"code": "invalid_workflow", "message": "2 problems", "details": [
            {"path": "nodes[1].tool", "message": "unknown tool"},
            "edges[0]: unknown node",
            {"message": "cycle"}
        ]}});
        let error = api_error(StatusCode::UNPROCESSABLE_ENTITY, &body).expect("an API error");
        assert_eq!(
            error.detail_lines(),
            [
                "nodes[1].tool: unknown tool",
                "edges[0]: unknown node",
                "cycle"
            ]
        );
    }

    #[test]
    fn urls_encode_each_segment() {
        let client = Client::new("http://127.0.0.1:8080/base/", None, None).expect("client");
        assert_eq!(
            client.url(&["v1", "runs", "a b/c"]).as_str(),
            "http://127.0.0.1:8080/base/v1/runs/a%20b%2Fc"
        );
    }

    #[test]
    fn missing_keys_are_reported_before_sending() {
        let client = Client::new("http://127.0.0.1:1", None, None).expect("client");
        let error = client
            .request(Method::GET, Auth::Admin, &["v1", "accounts"])
            .expect_err("no admin key");
        assert!(error.to_string().contains("PIPECAT_ADMIN_KEY"));
    }
}
