//! Host side of `pipecat:plugin/http.send`: only granted origins, no internal addresses (checked after DNS
//! resolution), redirects followed by hand and re-checked at each hop, response size and time capped.

pub(crate) mod address;
pub(crate) mod grant;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::bindings::pipecat::plugin::http::{Error, Request, Response};
use address::{ForbiddenAddress, GuardedResolver, is_internal_address};
use grant::HostPattern;

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// Builds the one HTTP client of a sandbox: no proxies, no automatic redirects, the guarded resolver.
pub(crate) fn client(allow_private: bool) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .user_agent("pipecat-plugin")
        .build()
}

/// What one call may do over HTTP.
#[derive(Clone)]
pub(crate) struct HttpAccess {
    pub(crate) client: reqwest::Client,
    pub(crate) allowed: Arc<Vec<HostPattern>>,
    pub(crate) allow_private: bool,
    pub(crate) timeout: Duration,
    pub(crate) max_bytes: usize,
}

impl HttpAccess {
    /// Sends `request` within the call's grant.
    pub(crate) async fn send(&self, request: Request) -> Result<Response, Error> {
        let mut timeout = self.timeout;
        if let Some(ms) = request.timeout_ms {
            timeout = timeout.min(Duration::from_millis(u64::from(ms)));
        }
        match tokio::time::timeout(timeout, self.send_following_redirects(request)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout),
        }
    }

    async fn send_following_redirects(&self, request: Request) -> Result<Response, Error> {
        let mut method = Method::from_bytes(request.method.as_bytes())
            .map_err(|_| Error::InvalidRequest(format!("bad method {:?}", request.method)))?;
        let mut url =
            Url::parse(&request.url).map_err(|e| Error::InvalidRequest(format!("bad url: {e}")))?;
        let mut headers = headers(&request.headers)?;
        let mut body = request.body;
        for _ in 0..=MAX_REDIRECTS {
            self.check(&url)?;
            let mut builder = self
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(body) = &body {
                builder = builder.body(body.clone());
            }
            let response = builder.send().await.map_err(request_error)?;
            let status = response.status();
            let location = response.headers().get(reqwest::header::LOCATION).cloned();
            match (status.is_redirection(), location) {
                (true, Some(location)) => {
                    let location = location
                        .to_str()
                        .map_err(|_| Error::Failed("redirect with a non-text Location".into()))?;
                    let next = url
                        .join(location)
                        .map_err(|e| Error::Failed(format!("bad redirect: {e}")))?;
                    if next.origin() != url.origin() {
                        for sensitive in ["authorization", "cookie", "proxy-authorization"] {
                            headers.remove(sensitive);
                        }
                    }
                    if status == StatusCode::SEE_OTHER
                        || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                            && method == Method::POST)
                    {
                        method = Method::GET;
                        body = None;
                    }
                    url = next;
                }
                _ => return self.read(response).await,
            }
        }
        Err(Error::Failed(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }

    /// Refuses URLs outside the grant and literal internal addresses (names are checked by the resolver).
    fn check(&self, url: &Url) -> Result<(), Error> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Denied(format!(
                "scheme {:?} is not allowed",
                url.scheme()
            )));
        }
        if !self.allowed.iter().any(|pattern| pattern.matches(url)) {
            return Err(Error::Denied(format!(
                "{} is not granted to this plugin",
                url.origin().ascii_serialization()
            )));
        }
        let literal: Option<IpAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(ip.into()),
            Some(url::Host::Ipv6(ip)) => Some(ip.into()),
            _ => None,
        };
        if let Some(ip) = literal.filter(|ip| !self.allow_private && is_internal_address(*ip)) {
            return Err(Error::Denied(format!("{ip} is an internal address")));
        }
        Ok(())
    }

    async fn read(&self, response: reqwest::Response) -> Result<Response, Error> {
        let status = response.status().as_u16();
        if response
            .content_length()
            .is_some_and(|len| len > self.max_bytes as u64)
        {
            return Err(Error::TooLarge);
        }
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(request_error)?;
            if body.len() + chunk.len() > self.max_bytes {
                return Err(Error::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

fn headers(pairs: &[(String, String)]) -> Result<HeaderMap, Error> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::InvalidRequest(format!("bad header name {name:?}")))?;
        if name == reqwest::header::HOST {
            continue;
        }
        let value = HeaderValue::from_str(value)
            .map_err(|_| Error::InvalidRequest(format!("bad value for header {name}")))?;
        map.append(name, value);
    }
    Ok(map)
}

/// Maps a reqwest failure, recognising a refusal of the guarded resolver anywhere in the source chain.
fn request_error(error: reqwest::Error) -> Error {
    if error.is_timeout() {
        return Error::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(err) = source {
        if let Some(forbidden) = err.downcast_ref::<ForbiddenAddress>() {
            return Error::Denied(forbidden.to_string());
        }
        source = err.source();
    }
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(err) = source {
        message.push_str(": ");
        message.push_str(&err.to_string());
        source = err.source();
    }
    Error::Failed(message)
}
