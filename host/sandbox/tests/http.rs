//! `http.send`: only granted origins, never internal addresses unless allowed, redirects re-checked, size
//! and time capped. Servers are real, on `127.0.0.1:0`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{assert_still_healthy, misbehave, sandbox};
use pipecat_sandbox::{Grant, Limits, Plugin};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A loopback server that counts connections and answers each with `response` (or never, if `None`).
async fn serve(response: Option<String>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    tokio::spawn(async move {
        let mut silent = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            match &response {
                None => silent.push(socket),
                Some(response) => {
                    let response = response.clone();
                    tokio::spawn(async move {
                        let mut request = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                            match socket.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => request.extend_from_slice(&buf[..n]),
                            }
                        }
                        let _ = socket.write_all(response.as_bytes()).await;
                        let _ = socket.shutdown().await;
                    });
                }
            }
        }
    });
    (addr, count)
}

fn ok_response(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

async fn get(
    plugin: &Plugin,
    url: &str,
    allowed_hosts: &[String],
    limits: Option<Limits>,
) -> Value {
    let grant = Grant {
        allowed_hosts: allowed_hosts.to_vec(),
        limits,
        ..Grant::default()
    };
    let outcome = plugin
        .call(
            "http",
            &serde_json::json!({ "url": url }).to_string(),
            &grant,
        )
        .await;
    serde_json::from_str(&outcome.result.expect("the http tool always answers")).expect("JSON")
}

#[tokio::test]
async fn a_host_that_is_not_granted_is_denied_without_a_connection() {
    let sandbox = sandbox(true);
    let plugin = misbehave(&sandbox).await;
    let (granted, _) = serve(Some(ok_response("granted"))).await;
    let (other, other_count) = serve(Some(ok_response("other"))).await;
    let result = get(
        &plugin,
        &format!("http://{other}/"),
        &[format!("http://{granted}")],
        None,
    )
    .await;
    assert_eq!(result["error"], "denied", "{result}");
    assert_eq!(other_count.load(Ordering::SeqCst), 0);
    let result = get(&plugin, "https://example.com/", &[], None).await;
    assert_eq!(result["error"], "denied", "{result}");
    assert_still_healthy(&sandbox).await;
}

#[tokio::test]
async fn a_granted_loopback_server_answers_when_private_networks_are_allowed() {
    let sandbox = sandbox(true);
    let plugin = misbehave(&sandbox).await;
    let (addr, count) = serve(Some(ok_response("hello from the host"))).await;
    let result = get(
        &plugin,
        &format!("http://{addr}/path"),
        &[format!("http://{addr}")],
        None,
    )
    .await;
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["body"], "hello from the host");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn loopback_is_denied_even_when_granted() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    let (addr, count) = serve(Some(ok_response("secret"))).await;
    let result = get(
        &plugin,
        &format!("http://{addr}/"),
        &[format!("http://{addr}")],
        None,
    )
    .await;
    assert_eq!(result["error"], "denied", "{result}");
    // A name that resolves to loopback is refused after resolution.
    let port = addr.port();
    let result = get(
        &plugin,
        &format!("http://localhost:{port}/"),
        &[format!("http://localhost:{port}")],
        None,
    )
    .await;
    assert_eq!(result["error"], "denied", "{result}");
    assert_eq!(
        count.load(Ordering::SeqCst),
        0,
        "no request may reach the server"
    );
    assert_still_healthy(&sandbox).await;
}

#[tokio::test]
async fn cloud_metadata_and_private_addresses_are_denied_before_connecting() {
    let sandbox = sandbox(false);
    let plugin = misbehave(&sandbox).await;
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::ffff:169.254.169.254]/",
    ] {
        let origin = url
            .trim_end_matches('/')
            .split('/')
            .take(3)
            .collect::<Vec<_>>()
            .join("/");
        let origin = origin.strip_suffix("/latest").unwrap_or(&origin).to_owned();
        let result = get(&plugin, url, &[origin], None).await;
        assert_eq!(result["error"], "denied", "{url}: {result}");
        assert!(
            result["message"]
                .as_str()
                .is_some_and(|m| m.contains("internal address")),
            "{url}: {result}"
        );
    }
    assert_still_healthy(&sandbox).await;
}

#[tokio::test]
async fn a_redirect_to_a_host_that_is_not_granted_is_denied() {
    let sandbox = sandbox(true);
    let plugin = misbehave(&sandbox).await;
    let (target, target_count) = serve(Some(ok_response("should not be reached"))).await;
    let redirect = format!(
        "HTTP/1.1 302 Found\r\nlocation: http://{target}/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    let (start, start_count) = serve(Some(redirect)).await;
    let result = get(
        &plugin,
        &format!("http://{start}/"),
        &[format!("http://{start}")],
        None,
    )
    .await;
    assert_eq!(result["error"], "denied", "{result}");
    assert_eq!(start_count.load(Ordering::SeqCst), 1);
    assert_eq!(target_count.load(Ordering::SeqCst), 0);
    // With both granted, the redirect is followed.
    let result = get(
        &plugin,
        &format!("http://{start}/"),
        &[format!("http://{start}"), format!("http://{target}")],
        None,
    )
    .await;
    assert_eq!(result["body"], "should not be reached", "{result}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let sandbox = sandbox(true);
    let plugin = misbehave(&sandbox).await;
    let (addr, count) = serve(None).await;
    let limits = Limits {
        http_timeout: Duration::from_millis(300),
        timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let result = get(
        &plugin,
        &format!("http://{addr}/"),
        &[format!("http://{addr}")],
        Some(limits),
    )
    .await;
    assert_eq!(result["error"], "timeout", "{result}");
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_still_healthy(&sandbox).await;
}

#[tokio::test]
async fn a_response_over_the_size_cap_is_too_large() {
    let sandbox = sandbox(true);
    let plugin = misbehave(&sandbox).await;
    let (addr, _) = serve(Some(ok_response(&"y".repeat(5000)))).await;
    let limits = Limits {
        max_http_response_bytes: 1000,
        ..Limits::default()
    };
    let result = get(
        &plugin,
        &format!("http://{addr}/"),
        &[format!("http://{addr}")],
        Some(limits),
    )
    .await;
    assert_eq!(result["error"], "too_large", "{result}");
}
