//! A plugin that misbehaves on request: the tool name selects the behaviour, so one component covers every
//! sandbox test (infinite loop, memory hog, recursion, huge output, panic, file/env/socket access, HTTP).
//!
//! Tools that probe a capability (`read_file`, `read_env`, `socket`, `http`) never fail: they return a JSON
//! object describing what happened, so the host test can assert the exact outcome.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "plugin",
});

use exports::pipecat::plugin::tools::{Guest, ToolError, ToolInfo};
use pipecat::plugin::{config, http, log};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

struct Misbehave;

const TOOLS: &[(&str, &str)] = &[
    ("spin", "Loops forever."),
    ("hog", "Allocates memory until it fails."),
    ("recurse", "Recurses without bound."),
    ("big_output", "Returns `bytes` bytes of text."),
    ("panic", "Panics with a message."),
    ("bad_json", "Promises JSON, returns text that is not JSON."),
    ("read_file", "Reads the file at `path`."),
    ("read_env", "Reads the environment variable `name`."),
    ("socket", "Opens a TCP connection to `addr`."),
    ("http", "Sends a GET to `url` through the host."),
    (
        "log",
        "Writes `lines` lines through log.write, stdout and stderr.",
    ),
    (
        "config",
        "Returns every granted config value and `get(key)`.",
    ),
    (
        "scratch",
        "Counts its calls, reports bytes a previous call left in a static area and in `bytes` of fresh heap, then dirties both.",
    ),
];

impl Guest for Misbehave {
    fn list_tools() -> Vec<ToolInfo> {
        TOOLS
            .iter()
            .map(|(name, description)| ToolInfo {
                name: (*name).into(),
                description: (*description).into(),
                parameters: r#"{"type":"object"}"#.into(),
            })
            .collect()
    }

    fn call_tool(name: String, arguments: String) -> Result<String, ToolError> {
        let args: Value = serde_json::from_str(&arguments)
            .map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
        let text = |key: &str| {
            args.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let number = |key: &str| args.get(key).and_then(Value::as_u64).unwrap_or_default();
        match name.as_str() {
            "spin" => spin(),
            "hog" => hog(),
            "recurse" => Ok(recurse(std::hint::black_box(u64::MAX)).to_string()),
            "big_output" => Ok("x".repeat(number("bytes") as usize)),
            "panic" => panic!("guest panicked on purpose"),
            "bad_json" => Ok("this is {not json".into()),
            "read_file" => Ok(outcome(
                std::fs::read_to_string(text("path")).map(|s| s.len().to_string()),
            )),
            "read_env" => Ok(match std::env::var(text("name")) {
                Ok(v) => json!({"ok": v, "count": std::env::vars().count()}).to_string(),
                Err(e) => {
                    json!({"error": e.to_string(), "count": std::env::vars().count()}).to_string()
                }
            }),
            "socket" => Ok(outcome(
                std::net::TcpStream::connect(text("addr")).map(|_| "connected".to_string()),
            )),
            "http" => Ok(send(&text("url"), number("timeout_ms"))),
            "log" => {
                for i in 0..number("lines") {
                    log::write(log::Level::Info, &format!("log line {i}"));
                    println!("stdout line {i}");
                    eprintln!("stderr line {i}");
                }
                Ok("logged".into())
            }
            "config" => {
                let all: serde_json::Map<String, Value> = config::get_all()
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                Ok(json!({"all": all, "get": config::get(&text("key"))}).to_string())
            }
            "scratch" => Ok(scratch(number("bytes") as usize)),
            other => Err(ToolError::Failed(format!("no tool named {other}"))),
        }
    }
}

/// Calls made in this instance (in the data segment: a reused memory that was not reset would count on).
static CALLS: AtomicU32 = AtomicU32::new(0);
/// Zero in a fresh instance (in `.bss`).
static SCRATCH: [AtomicU8; 64 << 10] = [const { AtomicU8::new(0) }; 64 << 10];

/// What an earlier call left behind: calls counted, non-zero bytes in `SCRATCH` and in a zeroed heap block of
/// `bytes` (the allocator trusts fresh `memory.grow` pages to be zero and does not clear them). Then dirties
/// both, for the next call to find if the host reused the memory without resetting it.
fn scratch(bytes: usize) -> String {
    let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    let dirty_static = SCRATCH
        .iter()
        .filter(|b| b.swap(0xAB, Ordering::Relaxed) != 0)
        .count();
    let mut heap = vec![0u8; bytes];
    let dirty_heap = heap.iter().filter(|b| **b != 0).count();
    heap.fill(0xCD);
    std::hint::black_box(&heap);
    json!({"calls": calls, "dirty_static": dirty_static, "dirty_heap": dirty_heap}).to_string()
}

fn spin() -> Result<String, ToolError> {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn hog() -> Result<String, ToolError> {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        blocks.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&blocks);
    }
}

fn recurse(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        std::hint::black_box(recurse(std::hint::black_box(n - 1))).wrapping_add(1)
    }
}

fn outcome(result: std::io::Result<String>) -> String {
    match result {
        Ok(v) => json!({"ok": v}).to_string(),
        Err(e) => json!({"error": e.to_string()}).to_string(),
    }
}

fn send(url: &str, timeout_ms: u64) -> String {
    let request = http::Request {
        method: "GET".into(),
        url: url.into(),
        headers: vec![],
        body: None,
        timeout_ms: (timeout_ms > 0).then_some(timeout_ms as u32),
    };
    match http::send(&request) {
        Ok(r) => json!({"status": r.status, "body": String::from_utf8_lossy(&r.body)}).to_string(),
        Err(e) => {
            let (kind, message) = match e {
                http::Error::Denied(m) => ("denied", m),
                http::Error::InvalidRequest(m) => ("invalid_request", m),
                http::Error::Timeout => ("timeout", String::new()),
                http::Error::TooLarge => ("too_large", String::new()),
                http::Error::Failed(m) => ("failed", m),
            };
            json!({"error": kind, "message": message}).to_string()
        }
    }
}

export!(Misbehave);
