//! `Reply::ToolRound` on both protocols, streamed and not; recording off; the standalone binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use pipecat_fake_llm::{FakeLlm, Reply};
use serde_json::{Value, json};

fn arguments() -> Value {
    json!({"expression": "2 + 3 * 4"})
}

const TEXT: &str = "The answer is 14.";

/// What one answer amounted to, whichever protocol and framing carried it.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    text: String,
    /// `(name, arguments)`.
    calls: Vec<(String, Value)>,
}

fn openai_tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "calculator", "description": "math",
            "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}}
    ])
}

fn anthropic_tools() -> Value {
    json!([
        {"name": "calculator", "description": "math",
         "input_schema": {"type": "object", "properties": {"expression": {"type": "string"}}}},
        {"name": "other", "input_schema": {"type": "object"}}
    ])
}

fn openai_first_turn() -> Vec<Value> {
    vec![
        json!({"role": "system", "content": "You can do math."}),
        json!({"role": "user", "content": "What is 2 + 3 * 4?"}),
    ]
}

fn openai_after_tool() -> Vec<Value> {
    let mut m = openai_first_turn();
    m.push(json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_0", "type": "function",
        "function": {"name": "calculator", "arguments": "{\"expression\":\"2 + 3 * 4\"}"}}]}));
    m.push(json!({"role": "tool", "tool_call_id": "call_0", "content": "14"}));
    m
}

fn anthropic_first_turn() -> Vec<Value> {
    vec![json!({"role": "user", "content": "What is 2 + 3 * 4?"})]
}

fn anthropic_after_tool() -> Vec<Value> {
    let mut m = anthropic_first_turn();
    m.push(
        json!({"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_call_0",
        "name": "calculator", "input": {"expression": "2 + 3 * 4"}}]}),
    );
    m.push(json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_call_0", "content": "14"}]}));
    m
}

async fn openai(
    client: &reqwest::Client,
    fake: &FakeLlm,
    messages: Vec<Value>,
    tools: Option<Value>,
    stream: bool,
) -> Seen {
    let mut body = json!({"model": "fake", "messages": messages, "stream": stream});
    if let Some(t) = tools {
        body["tools"] = t;
    }
    let res = client
        .post(format!("{}/chat/completions", fake.openai_base_url()))
        .bearer_auth("x")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    if !stream {
        let v: Value = serde_json::from_str(&text).unwrap();
        let message = &v["choices"][0]["message"];
        let calls: Vec<(String, Value)> = message["tool_calls"]
            .as_array()
            .map(|calls| {
                calls
                    .iter()
                    .map(|c| {
                        let args = c["function"]["arguments"].as_str().unwrap();
                        (
                            c["function"]["name"].as_str().unwrap().to_owned(),
                            serde_json::from_str(args).unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let finish = v["choices"][0]["finish_reason"].as_str().unwrap();
        assert_eq!(
            finish,
            if calls.is_empty() {
                "stop"
            } else {
                "tool_calls"
            }
        );
        return Seen {
            text: message["content"].as_str().unwrap_or_default().to_owned(),
            calls,
        };
    }
    let mut seen = Seen::default();
    let mut calls: Vec<(String, String)> = Vec::new();
    let mut done = false;
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        let delta = &v["choices"][0]["delta"];
        if let Some(t) = delta["content"].as_str() {
            seen.text.push_str(t);
        }
        for c in delta["tool_calls"].as_array().into_iter().flatten() {
            let i = c["index"].as_u64().unwrap() as usize;
            if calls.len() <= i {
                calls.push((String::new(), String::new()));
            }
            if let Some(n) = c["function"]["name"].as_str() {
                calls[i].0.push_str(n);
            }
            if let Some(a) = c["function"]["arguments"].as_str() {
                calls[i].1.push_str(a);
            }
        }
    }
    assert!(done, "stream ends with [DONE]");
    seen.calls = calls
        .into_iter()
        .map(|(n, a)| (n, serde_json::from_str(&a).unwrap()))
        .collect();
    seen
}

async fn anthropic(
    client: &reqwest::Client,
    fake: &FakeLlm,
    messages: Vec<Value>,
    tools: Option<Value>,
    stream: bool,
) -> Seen {
    let mut body =
        json!({"model": "fake", "max_tokens": 100, "messages": messages, "stream": stream});
    if let Some(t) = tools {
        body["tools"] = t;
    }
    let res = client
        .post(format!("{}/v1/messages", fake.anthropic_base_url()))
        .header("x-api-key", "x")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let mut seen = Seen::default();
    if !stream {
        let v: Value = serde_json::from_str(&text).unwrap();
        for block in v["content"].as_array().unwrap() {
            match block["type"].as_str().unwrap() {
                "text" => seen.text.push_str(block["text"].as_str().unwrap()),
                "tool_use" => seen.calls.push((
                    block["name"].as_str().unwrap().to_owned(),
                    block["input"].clone(),
                )),
                other => panic!("unexpected block {other}"),
            }
        }
        let stop = v["stop_reason"].as_str().unwrap();
        assert_eq!(
            stop,
            if seen.calls.is_empty() {
                "end_turn"
            } else {
                "tool_use"
            }
        );
        return seen;
    }
    let mut calls: Vec<(String, String)> = Vec::new();
    let mut stopped = false;
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let v: Value = serde_json::from_str(data).unwrap();
        match v["type"].as_str().unwrap() {
            "content_block_start" if v["content_block"]["type"] == "tool_use" => {
                calls.push((
                    v["content_block"]["name"].as_str().unwrap().to_owned(),
                    String::new(),
                ));
            }
            "content_block_delta" => match v["delta"]["type"].as_str().unwrap() {
                "text_delta" => seen.text.push_str(v["delta"]["text"].as_str().unwrap()),
                "input_json_delta" => calls
                    .last_mut()
                    .unwrap()
                    .1
                    .push_str(v["delta"]["partial_json"].as_str().unwrap()),
                other => panic!("unexpected delta {other}"),
            },
            "message_stop" => stopped = true,
            _ => {}
        }
    }
    assert!(stopped, "stream ends with message_stop");
    seen.calls = calls
        .into_iter()
        .map(|(n, a)| (n, serde_json::from_str(&a).unwrap()))
        .collect();
    seen
}

fn call() -> Seen {
    Seen {
        text: String::new(),
        calls: vec![("calculator".to_owned(), arguments())],
    }
}

fn answer() -> Seen {
    Seen {
        text: TEXT.to_owned(),
        calls: vec![],
    }
}

#[tokio::test]
async fn openai_tool_round_plain_and_streamed() {
    let fake = FakeLlm::start().await;
    fake.set_default(Reply::tool_round(arguments(), TEXT));
    let client = reqwest::Client::new();
    for stream in [false, true] {
        let first = openai(
            &client,
            &fake,
            openai_first_turn(),
            Some(openai_tools()),
            stream,
        )
        .await;
        assert_eq!(first, call(), "stream={stream}");
        let second = openai(
            &client,
            &fake,
            openai_after_tool(),
            Some(openai_tools()),
            stream,
        )
        .await;
        assert_eq!(second, answer(), "stream={stream}");
        let no_tools = openai(&client, &fake, openai_first_turn(), None, stream).await;
        assert_eq!(no_tools, answer(), "stream={stream}");
    }
    assert_eq!(fake.request_count(), 6);
}

#[tokio::test]
async fn anthropic_tool_round_plain_and_streamed() {
    let fake = FakeLlm::start().await;
    fake.set_default(Reply::tool_round(arguments(), TEXT));
    let client = reqwest::Client::new();
    for stream in [false, true] {
        let first = anthropic(
            &client,
            &fake,
            anthropic_first_turn(),
            Some(anthropic_tools()),
            stream,
        )
        .await;
        assert_eq!(first, call(), "stream={stream}");
        let second = anthropic(
            &client,
            &fake,
            anthropic_after_tool(),
            Some(anthropic_tools()),
            stream,
        )
        .await;
        assert_eq!(second, answer(), "stream={stream}");
        let no_tools = anthropic(&client, &fake, anthropic_first_turn(), None, stream).await;
        assert_eq!(no_tools, answer(), "stream={stream}");
    }
}

#[tokio::test]
async fn tool_round_is_stateless_under_concurrency() {
    let fake = FakeLlm::start().await;
    fake.set_default(Reply::tool_round(arguments(), TEXT));
    fake.set_recording(false);
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let client = client.clone();
        let fake_url = fake.openai_base_url();
        let anthropic_url = fake.anthropic_base_url();
        tasks.push(tokio::spawn(async move {
            let after_tool = i % 2 == 1;
            let (url, body, headers) = if i % 4 < 2 {
                let messages = if after_tool {
                    openai_after_tool()
                } else {
                    openai_first_turn()
                };
                (
                    format!("{fake_url}/chat/completions"),
                    json!({"model": "m", "messages": messages, "tools": openai_tools()}),
                    "openai",
                )
            } else {
                let messages = if after_tool {
                    anthropic_after_tool()
                } else {
                    anthropic_first_turn()
                };
                (
                    format!("{anthropic_url}/v1/messages"),
                    json!({"model": "m", "max_tokens": 10, "messages": messages, "tools": anthropic_tools()}),
                    "anthropic",
                )
            };
            let v: Value = client
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let called = if headers == "openai" {
                v["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "calculator"
            } else {
                v["content"][0]["type"] == "tool_use" && v["content"][0]["name"] == "calculator"
            };
            assert_eq!(called, !after_tool, "request {i}: {v}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(fake.request_count(), 0, "recording is off");
    assert_eq!(fake.served_count(), 64);
    let stats: Value = client
        .get(format!("{}/fake/stats", fake.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats, json!({"requests": 64}));
}

#[tokio::test]
async fn recording_can_be_switched_back_on() {
    let fake = FakeLlm::start().await;
    let client = reqwest::Client::new();
    fake.set_recording(false);
    openai(&client, &fake, openai_first_turn(), None, false).await;
    assert_eq!(fake.request_count(), 0);
    fake.set_recording(true);
    let echoed = openai(&client, &fake, openai_first_turn(), None, false).await;
    assert_eq!(echoed.text, "What is 2 + 3 * 4?");
    assert_eq!(fake.request_count(), 1);
    assert_eq!(fake.served_count(), 2);
}

/// Kills the child when the test ends, pass or fail.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_serves_a_tool_round() {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_pipecat-fake-llm"))
            .args([
                "--tool-round-arguments",
                r#"{"input": "2 + 3 * 4"}"#,
                "--text",
                TEXT,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let client = reqwest::Client::new();
    let first: Value = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({"model": "m", "messages": openai_first_turn(), "tools": openai_tools()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let call = &first["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "calculator");
    assert_eq!(
        serde_json::from_str::<Value>(call["arguments"].as_str().unwrap()).unwrap(),
        json!({"input": "2 + 3 * 4"})
    );
    let second: Value = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({"model": "m", "messages": openai_after_tool(), "tools": openai_tools()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["choices"][0]["message"]["content"], TEXT);
    let stats: Value = client
        .get(format!("{base}/fake/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats, json!({"requests": 2}));
}
