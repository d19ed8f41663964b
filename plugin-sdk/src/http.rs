//! Outbound HTTP through the host, which allows only the hosts the workflow granted to this plugin.
//!
//! ```no_run
//! # fn main() -> Result<(), pipecat_plugin_sdk::ToolError> {
//! use pipecat_plugin_sdk::http;
//! let response = http::get("https://api.example.com/v1/items?limit=1")?.error_for_status()?;
//! let items: serde_json::Value = response.json()?;
//! # let _ = items; Ok(()) }
//! ```
//!
//! Compiled natively (in a plugin's unit tests) there is no host: requests go to the handler installed with
//! [`set_handler_for_tests`], or fail.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// An outbound request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// An absolute `http` or `https` URL.
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
    /// Deadline of this request in milliseconds; the host caps it.
    pub timeout_ms: Option<u32>,
}

impl Request {
    /// A request with `method` to `url`, without headers or body.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets the deadline in milliseconds.
    #[must_use]
    pub fn timeout_ms(mut self, timeout_ms: u32) -> Self {
        self.timeout_ms = Some(timeout_ms);
        self
    }
}

/// A whole response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names and values as received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Decode(e.to_string()))
    }

    /// `self` if the status is 2xx, otherwise [`Error::Status`].
    pub fn error_for_status(self) -> Result<Self, Error> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(Error::Status(self.status))
        }
    }
}

/// Why a request did not produce a usable response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The host, address or scheme is not granted to this plugin.
    #[error("request denied by the host: {0}")]
    Denied(String),
    /// The request is malformed (bad URL, method or header).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The request did not finish within its deadline.
    #[error("request timed out")]
    Timeout,
    /// The response body exceeded the host's size cap.
    #[error("response too large")]
    TooLarge,
    /// Connection, TLS or protocol failure.
    #[error("request failed: {0}")]
    Failed(String),
    /// The response had a non-2xx status (from [`Response::error_for_status`]).
    #[error("unexpected HTTP status {0}")]
    Status(u16),
    /// The body was not the expected JSON (from [`Response::json`]).
    #[error("could not decode the response: {0}")]
    Decode(String),
    /// The request body could not be encoded as JSON.
    #[error("could not encode the request: {0}")]
    Encode(String),
}

/// Sends `request` and waits for the whole response.
pub fn send(request: Request) -> Result<Response, Error> {
    imp::send(request)
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, Error> {
    send(Request::new("GET", url))
}

/// `POST url` with `body` as JSON (`Content-Type: application/json`).
pub fn post_json<T: Serialize + ?Sized>(url: &str, body: &T) -> Result<Response, Error> {
    let body = serde_json::to_vec(body).map_err(|e| Error::Encode(e.to_string()))?;
    send(
        Request::new("POST", url)
            .header("content-type", "application/json")
            .body(body),
    )
}

/// Percent-encodes `value` for use in a URL query or path segment (everything but `A-Z a-z 0-9 - . _ ~`).
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Native builds only (unit tests): answers this thread's requests with `handler` instead of the host.
#[cfg(not(target_arch = "wasm32"))]
pub fn set_handler_for_tests(handler: impl Fn(&Request) -> Result<Response, Error> + 'static) {
    imp::HANDLER.with(|h| *h.borrow_mut() = Some(Box::new(handler)));
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{Error, Request, Response};
    use crate::bindings::pipecat::plugin::http as wit;

    pub(super) fn send(request: Request) -> Result<Response, Error> {
        let request = wit::Request {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
            timeout_ms: request.timeout_ms,
        };
        match wit::send(&request) {
            Ok(r) => Ok(Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            }),
            Err(wit::Error::Denied(m)) => Err(Error::Denied(m)),
            Err(wit::Error::InvalidRequest(m)) => Err(Error::InvalidRequest(m)),
            Err(wit::Error::Timeout) => Err(Error::Timeout),
            Err(wit::Error::TooLarge) => Err(Error::TooLarge),
            Err(wit::Error::Failed(m)) => Err(Error::Failed(m)),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::{Error, Request, Response};
    use std::cell::RefCell;

    type Handler = Box<dyn Fn(&Request) -> Result<Response, Error>>;

    thread_local! {
        pub(super) static HANDLER: RefCell<Option<Handler>> = const { RefCell::new(None) };
    }

    pub(super) fn send(request: Request) -> Result<Response, Error> {
        HANDLER.with(|h| match h.borrow().as_ref() {
            Some(handler) => handler(&request),
            None => Err(Error::Failed(
                "no HTTP outside the Pipecat host (native build without a test handler)".into(),
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    #[test]
    fn response_helpers() {
        let ok = response(200, r#"{"a": 1}"#);
        assert!(ok.is_success());
        assert_eq!(ok.header("content-type"), Some("application/json"));
        assert_eq!(ok.text(), r#"{"a": 1}"#);
        assert_eq!(ok.json::<serde_json::Value>().unwrap()["a"], 1);
        assert!(matches!(
            response(200, "nope").json::<serde_json::Value>(),
            Err(Error::Decode(_))
        ));
        assert_eq!(
            response(404, "").error_for_status(),
            Err(Error::Status(404))
        );
    }

    #[test]
    fn encodes_url_components() {
        assert_eq!(
            encode_component("São Paulo & co/1~x"),
            "S%C3%A3o%20Paulo%20%26%20co%2F1~x"
        );
    }

    #[test]
    fn native_requests_go_to_the_test_handler() {
        assert!(matches!(get("http://x.test/"), Err(Error::Failed(_))));
        set_handler_for_tests(|req| {
            assert_eq!(req.method, "POST");
            assert_eq!(
                req.headers,
                vec![("content-type".to_owned(), "application/json".to_owned())]
            );
            Ok(Response {
                status: 201,
                headers: vec![],
                body: req.body.clone().unwrap_or_default(),
            })
        });
        let echoed = post_json("http://x.test/", &serde_json::json!({"k": "v"})).unwrap();
        assert_eq!(echoed.status, 201);
        assert_eq!(echoed.text(), r#"{"k":"v"}"#);
    }

    #[test]
    fn errors_convert_into_tool_failures() {
        let error: crate::ToolError = Error::Denied("evil.test".into()).into();
        assert_eq!(
            error,
            crate::ToolError::failed("request denied by the host: evil.test")
        );
    }
}
