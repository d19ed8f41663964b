//! The shipped plugins run in the real sandbox: listed tools, results and errors as the host sees them.
//! The weather plugin talks to a fake Open-Meteo on a loopback port.

use pipecat_sandbox::{CallError, Grant, Sandbox, SandboxConfig};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

fn sandbox() -> Sandbox {
    Sandbox::new(SandboxConfig {
        allow_private_networks: true,
        ..SandboxConfig::default()
    })
    .expect("sandbox")
}

async fn call(bytes: &[u8], tool: &str, args: &str, grant: &Grant) -> Result<String, CallError> {
    let plugin = sandbox().load(bytes).await.expect("the plugin loads");
    plugin.call(tool, args, grant).await.result
}

#[tokio::test]
async fn calculator_calculates() {
    let plugin = sandbox()
        .load(pipecat_plugins::CALCULATOR)
        .await
        .expect("loads");
    let names: Vec<&str> = plugin.tools().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["calculate"]);
    assert_eq!(
        plugin.tools()[0].parameters["properties"]["expression"]["type"],
        "string"
    );
    let grant = Grant::default();
    let ok = plugin
        .call(
            "calculate",
            r#"{"expression": "2 * (3 + 4) ^ 2 / sqrt(16)"}"#,
            &grant,
        )
        .await;
    assert_eq!(ok.result.expect("a result"), r#"{"result":24.5}"#);
    let err = plugin
        .call("calculate", r#"{"expression": "1 / 0"}"#, &grant)
        .await;
    assert!(
        matches!(err.result, Err(CallError::Failed(m)) if m == "division by zero at position 3")
    );
}

#[tokio::test]
async fn text_and_json_tools_run() {
    let grant = Grant::default();
    let out = call(
        pipecat_plugins::TEXT,
        "slugify",
        r#"{"text": "Hello, Wörld!"}"#,
        &grant,
    )
    .await;
    assert_eq!(out.expect("slug"), "hello-world");
    let out = call(
        pipecat_plugins::TEXT,
        "regex_extract",
        r#"{"pattern": "\\d+", "text": "a1b22"}"#,
        &grant,
    )
    .await;
    let found: serde_json::Value = serde_json::from_str(&out.expect("matches")).expect("JSON");
    assert_eq!(found["matches"][1]["text"], "22");
    let out = call(
        pipecat_plugins::JSON,
        "query",
        r#"{"filter": "[.[] | . * 2]", "data": [1, 2]}"#,
        &grant,
    )
    .await;
    assert_eq!(out.expect("query"), "[2,4]");
    let bad = call(
        pipecat_plugins::JSON,
        "query",
        r#"{"filter": ".a | (", "data": {}}"#,
        &grant,
    )
    .await;
    assert!(matches!(bad, Err(CallError::InvalidArguments(m)) if m.starts_with("invalid filter")));
}

/// A fake Open-Meteo answering geocoding and forecast requests; returns its base URL.
fn fake_open_meteo() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let body = if request_line.starts_with("GET /v1/search?name=Tokyo&count=1 ") {
                r#"{"results":[{"name":"Tokyo","latitude":35.6895,"longitude":139.69171,"country":"Japan"}]}"#
            } else if request_line.starts_with("GET /v1/search?") {
                r#"{"generationtime_ms":0.2}"#
            } else if request_line
                .starts_with("GET /v1/forecast?latitude=35.6895&longitude=139.69171&current=")
            {
                r#"{"current_units":{"temperature_2m":"°C"},"current":{"temperature_2m":22.0,"weather_code":0,"wind_speed_10m":5.0}}"#
            } else {
                r#"{"error":true}"#
            };
            let status = if body.contains("error") {
                "400 Bad Request"
            } else {
                "200 OK"
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    base
}

#[tokio::test]
async fn weather_asks_the_configured_service() {
    let base = fake_open_meteo();
    let grant = Grant {
        config: [
            ("geocoding_base_url".to_owned(), base.clone()),
            ("forecast_base_url".to_owned(), base.clone()),
        ]
        .into_iter()
        .collect(),
        allowed_hosts: vec![base.clone()],
        limits: None,
    };
    let out = call(
        pipecat_plugins::WEATHER,
        "get_weather",
        r#"{"location": "Tokyo"}"#,
        &grant,
    )
    .await;
    assert_eq!(
        out.expect("weather"),
        r#"{"location":"Tokyo, Japan","temperature":22.0,"unit":"°C","condition":"Sunny","wind_speed_kmh":5.0}"#
    );
    let unknown = call(
        pipecat_plugins::WEATHER,
        "get_weather",
        r#"{"location": "Atlantis"}"#,
        &grant,
    )
    .await;
    assert!(matches!(unknown, Err(CallError::Failed(m)) if m == "no place named \"Atlantis\""));

    // Without the grant of the host, the request is denied and the tool fails.
    let denied = Grant {
        allowed_hosts: vec![],
        ..grant
    };
    let out = call(
        pipecat_plugins::WEATHER,
        "get_weather",
        r#"{"location": "Tokyo"}"#,
        &denied,
    )
    .await;
    assert!(matches!(out, Err(CallError::Failed(m)) if m.contains("denied")));
}
