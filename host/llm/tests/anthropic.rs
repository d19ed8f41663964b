//! The Anthropic provider against the fake server: streaming, tool_use round trip, structured output.

mod common;

use pipecat_fake_llm::{FakeLlm, Fault, Reply};
use pipecat_llm::{
    AnthropicProvider, FinishReason, LlmError, Message, Provider, ResponseFormat, ToolCallRequest,
    ToolDef, Usage,
};
use serde_json::{Value, json};

fn provider(fake: &FakeLlm) -> AnthropicProvider {
    AnthropicProvider::new(
        "anthropic",
        fake.anthropic_base_url(),
        Some("sk-ant-test".into()),
    )
    .with_policy(common::policy())
}

#[tokio::test]
async fn streamed_text_with_usage_headers_and_defaults() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::text("Bonjour tout le monde").with_usage(21, 4));
    let p = provider(&fake);
    let (res, deltas) = common::stream(&p, &common::ask("claude-sonnet-4-5", "Say hi")).await;
    let res = res.expect("chat");
    assert_eq!(res.content.as_deref(), Some("Bonjour tout le monde"));
    assert_eq!(deltas.concat(), "Bonjour tout le monde");
    assert!(deltas.len() >= 4, "{deltas:?}");
    assert_eq!(
        res.usage,
        Usage {
            input_tokens: 21,
            output_tokens: 4
        }
    );
    assert_eq!(res.finish_reason, FinishReason::Stop);
    assert_eq!(res.model, "claude-sonnet-4-5");

    let sent = &fake.recorded()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.body["system"], "You are terse.");
    assert_eq!(sent.body["max_tokens"], 4096);
    assert_eq!(sent.body["stream"], true);
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "user", "content": "Say hi"}])
    );
}

#[tokio::test]
async fn tool_use_round_trip() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::ToolCalls(vec![
        ("get_weather".into(), json!({"location": "Tokyo"})),
        ("get_weather".into(), json!({"location": "Paris"})),
    ]));
    fake.push(Reply::text("Tokyo 22C, Paris unknown."));
    let p = provider(&fake);
    let mut request = common::ask("claude-haiku-4-5", "Weather in Tokyo and Paris?");
    request.tools = vec![ToolDef {
        name: "get_weather".into(),
        description: "Weather".into(),
        parameters: json!({"type": "object", "properties": {"location": {"type": "string"}}}),
    }];

    let (first, _) = common::stream(&p, &request).await;
    let first = first.expect("first call");
    assert_eq!(first.finish_reason, FinishReason::ToolCalls);
    assert_eq!(first.tool_calls.len(), 2);
    let args: Value = serde_json::from_str(&first.tool_calls[1].arguments).expect("JSON args");
    assert_eq!(args, json!({"location": "Paris"}));

    request.messages.push(Message::Assistant {
        content: first.content.clone(),
        tool_calls: first.tool_calls.clone(),
    });
    request.messages.push(Message::Tool {
        call_id: first.tool_calls[0].id.clone(),
        content: "22C".into(),
        is_error: false,
    });
    request.messages.push(Message::Tool {
        call_id: first.tool_calls[1].id.clone(),
        content: "no data".into(),
        is_error: true,
    });
    let second = p.chat(&request, None).await.expect("second call");
    assert_eq!(second.content.as_deref(), Some("Tokyo 22C, Paris unknown."));

    let body = &fake.requests()[1];
    assert_eq!(
        body["tools"],
        json!([{"name": "get_weather", "description": "Weather",
        "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}])
    );
    assert_eq!(body["tool_choice"], json!({"type": "auto"}));
    let messages = body["messages"].as_array().expect("messages");
    assert_eq!(
        messages.len(),
        3,
        "tool results share one user turn: {messages:?}"
    );
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(
        messages[1]["content"][0],
        json!({"type": "tool_use", "id": first.tool_calls[0].id,
        "name": "get_weather", "input": {"location": "Tokyo"}})
    );
    assert_eq!(
        messages[2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": first.tool_calls[0].id, "content": "22C"},
            {"type": "tool_result", "tool_use_id": first.tool_calls[1].id, "content": "no data", "is_error": true},
        ]})
    );
}

#[tokio::test]
async fn structured_output_through_a_forced_tool() {
    let fake = FakeLlm::start().await;
    let answer = json!({"sentiment": "positive", "score": 0.9});
    fake.push(Reply::Json(answer.clone()));
    fake.push(Reply::Json(answer.clone()));
    let p = provider(&fake);
    let schema = json!({"type": "object", "properties": {"sentiment": {"type": "string"}, "score": {"type": "number"}}});
    let mut request = common::ask("claude-sonnet-4-5", "I love it");
    request.response_format = Some(ResponseFormat {
        name: "sentiment".into(),
        schema: schema.clone(),
    });

    let whole = p.chat(&request, None).await.expect("non-streamed");
    let (streamed, deltas) = common::stream(&p, &request).await;
    let streamed = streamed.expect("streamed");
    for res in [&whole, &streamed] {
        let content: Value =
            serde_json::from_str(res.content.as_deref().expect("content")).expect("JSON");
        assert_eq!(content, answer);
        assert!(
            res.tool_calls.is_empty(),
            "the answer tool is not a tool call"
        );
        assert_eq!(res.finish_reason, FinishReason::Stop);
    }
    assert_eq!(Some(deltas.concat()), streamed.content);

    let body = &fake.requests()[0];
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "sentiment"})
    );
    assert_eq!(body["tools"][0]["name"], "sentiment");
    assert_eq!(body["tools"][0]["input_schema"], schema);
}

#[tokio::test]
async fn previous_assistant_text_and_tool_use_keep_their_order() {
    let fake = FakeLlm::start().await;
    let p = provider(&fake);
    let mut request = common::ask("claude", "first");
    request.messages.push(Message::Assistant {
        content: Some("Let me check.".into()),
        tool_calls: vec![ToolCallRequest {
            id: "toolu_1".into(),
            name: "t".into(),
            arguments: "not json".into(),
        }],
    });
    request.messages.push(Message::Tool {
        call_id: "toolu_1".into(),
        content: "ok".into(),
        is_error: false,
    });
    request.messages.push(Message::User {
        content: "and now?".into(),
    });
    let res = p.chat(&request, None).await.expect("echo");
    assert_eq!(res.content.as_deref(), Some("and now?"));
    let body = &fake.requests()[0];
    assert_eq!(
        body["messages"][1]["content"],
        json!([
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}},
        ])
    );
    assert_eq!(
        body["messages"][2]["content"],
        json!([
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"},
            {"type": "text", "text": "and now?"},
        ])
    );
}

#[tokio::test]
async fn overloaded_is_retried_then_succeeds() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::Fault(Fault::Overloaded));
    fake.push(Reply::text("fine now"));
    let res = provider(&fake)
        .chat(&common::ask("claude", "hi"), None)
        .await
        .expect("after retry");
    assert_eq!(res.content.as_deref(), Some("fine now"));
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn overloaded_every_time_is_a_529_status_naming_the_provider() {
    let fake = FakeLlm::start().await;
    fake.set_default(Reply::Fault(Fault::Overloaded));
    let err = provider(&fake)
        .chat(&common::ask("claude", "hi"), None)
        .await
        .expect_err("overloaded");
    match &err {
        LlmError::Status {
            provider,
            status,
            message,
        } => {
            assert_eq!((provider.as_str(), *status), ("anthropic", 529));
            assert!(message.contains("Overloaded"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(fake.request_count(), 3);
    assert!(err.should_fall_back());
}

#[tokio::test]
async fn missing_key_for_the_real_api_is_not_configured() {
    let p = AnthropicProvider::new("anthropic", "https://api.anthropic.com", None);
    let err = p
        .chat(&common::ask("claude", "hi"), None)
        .await
        .expect_err("no key");
    assert_eq!(err.code(), "llm_not_configured");
}
