//! The weather assistant example end to end: an LLM node (the real OpenAI client against the fake LLM
//! server) calling the real weather plugin, which reaches a local fake of Open-Meteo through its config grant.

mod common;

use axum::Json;
use axum::routing::get;
use common::TestServer;
use pipecat_fake_llm::{FakeLlm, Reply};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A fake Open-Meteo (geocoding and forecast) on a loopback port.
async fn fake_open_meteo() -> String {
    let app = axum::Router::new()
        .route(
            "/v1/search",
            get(|| async {
                Json(json!({"results": [{"name": "Tokyo", "latitude": 35.69, "longitude": 139.69, "country": "Japan"}]}))
            }),
        )
        .route(
            "/v1/forecast",
            get(|| async {
                Json(json!({
                    "current": {"temperature_2m": 22.0, "weather_code": 0, "wind_speed_10m": 7.5},
                    "current_units": {"temperature_2m": "°C"}
                }))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn weather_assistant(weather_base: &str) -> Value {
    let mut doc: Value = serde_json::from_str(include_str!(
        "../../../examples/workflows/weather-assistant.json"
    ))
    .expect("example parses");
    doc["plugins"]["weather"] = json!({
        "config": {"geocoding_base_url": weather_base, "forecast_base_url": weather_base},
        "allowed_hosts": [weather_base],
    });
    doc
}

#[tokio::test]
async fn weather_assistant_calls_the_tool_through_the_llm() {
    let llm = FakeLlm::start().await;
    let weather = fake_open_meteo().await;
    let config = format!(
        "[[providers]]\nname = \"openai\"\nkind = \"openai\"\nbase_url = \"{}\"\n\n[limits]\nallow_private_networks = true\n",
        llm.openai_base_url()
    );
    let s = TestServer::start(&config).await;
    let (_, key) = s.account(None).await;
    assert_eq!(
        s.upload_shipped(&key, "weather").await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        s.upload_shipped(&key, "text").await.status,
        StatusCode::CREATED
    );
    let id = s.publish(&key, &weather_assistant(&weather)).await;

    llm.push(Reply::tool_call(
        "weather__get_weather",
        json!({"location": "Tokyo"}),
    ));
    llm.push(Reply::text(
        "The current weather in Tokyo is 22°C and sunny.",
    ));
    let run = s
        .invoke(&key, &id, json!("What is the weather in Tokyo?"))
        .await;
    assert_eq!(run.status, StatusCode::OK);
    assert_eq!(run.body["status"], "success", "{:#}", run.body);
    assert_eq!(
        run.body["output"],
        "Answer: THE CURRENT WEATHER IN TOKYO IS 22°C AND SUNNY."
    );

    let calls = run.body["tool_calls"].as_array().expect("tool calls");
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert_eq!(calls[0]["node_id"], "llm_node_1");
    assert_eq!(calls[0]["tool"], "get_weather");
    assert_eq!(calls[0]["input"], json!({"location": "Tokyo"}));
    let result: Value = serde_json::from_str(calls[0]["result"].as_str().expect("result text"))
        .expect("JSON result");
    assert_eq!(result["temperature"], 22.0);
    assert_eq!(result["location"], "Tokyo, Japan");
    assert_eq!(calls[1]["node_id"], "shout");
    assert_eq!(calls[1]["tool"], "uppercase");

    // The model saw the tool's result in its second request.
    let requests = llm.requests();
    assert_eq!(requests.len(), 2);
    assert!(
        requests[0]["tools"]
            .to_string()
            .contains("weather__get_weather")
    );
    assert!(requests[1]["messages"].to_string().contains("Tokyo, Japan"));

    // The run is recorded with its nodes.
    let rec = s
        .get(
            &format!(
                "/v1/runs/{}",
                run.body["run_id"].as_str().unwrap_or_default()
            ),
            &key,
        )
        .await;
    let nodes: Vec<&str> = rec.body["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["node_id"].as_str())
        .collect();
    assert_eq!(nodes, ["llm_node_1", "shout", "reply"]);
}

#[tokio::test]
async fn a_denied_host_fails_the_run_not_the_request() {
    let llm = FakeLlm::start().await;
    let weather = fake_open_meteo().await;
    let config = format!(
        "[[providers]]\nname = \"openai\"\nkind = \"openai\"\nbase_url = \"{}\"\n",
        llm.openai_base_url()
    );
    // Private networks are not allowed here: the tool's request to 127.0.0.1 is refused by the sandbox.
    let s = TestServer::start(&config).await;
    let (_, key) = s.account(None).await;
    s.upload_shipped(&key, "weather").await;
    s.upload_shipped(&key, "text").await;
    let mut doc = weather_assistant(&weather);
    doc["nodes"] = json!([{"id": "w", "type": "tool", "tool": "weather.get_weather", "arguments": {"location": "{{ input }}"}}]);
    doc["edges"] = json!([]);
    doc["output"] = json!("w");
    let id = s.publish(&key, &doc).await;
    let run = s.invoke(&key, &id, json!("Tokyo")).await;
    assert_eq!(run.status, StatusCode::OK);
    assert_eq!(run.body["status"], "error", "{:#}", run.body);
    assert_eq!(run.body["error"]["node_id"], "w");
}
