//! The OpenAI provider against the fake server: text, streaming, tools, structured output, usage.

mod common;

use pipecat_fake_llm::{FakeLlm, Reply};
use pipecat_llm::{
    FinishReason, LlmError, Message, OpenAiProvider, Provider, ResponseFormat, ToolCallRequest,
    ToolChoice, ToolDef, Usage,
};
use serde_json::{Value, json};

fn provider(fake: &FakeLlm) -> OpenAiProvider {
    OpenAiProvider::new("openai", fake.openai_base_url(), Some("test-key".into()))
        .with_policy(common::policy())
}

#[tokio::test]
async fn text_answer_without_streaming() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::text("Hello there").with_usage(12, 2));
    let res = provider(&fake)
        .chat(&common::ask("gpt-4o-mini", "Hi?"), None)
        .await
        .expect("chat");
    assert_eq!(res.content.as_deref(), Some("Hello there"));
    assert_eq!(res.finish_reason, FinishReason::Stop);
    assert_eq!(
        res.usage,
        Usage {
            input_tokens: 12,
            output_tokens: 2
        }
    );
    assert_eq!(res.model, "gpt-4o-mini");
    assert!(res.tool_calls.is_empty());

    let sent = fake.recorded();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/v1/chat/completions");
    assert_eq!(sent[0].header("authorization"), Some("Bearer test-key"));
    let body = &sent[0].body;
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi?"},
        ])
    );
    assert!(body.get("stream").is_none());
    assert!(body.get("tools").is_none());
}

#[tokio::test]
async fn streamed_deltas_add_up_to_the_content_and_usage_is_read() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::text("The quick brown fox jumps").with_usage(30, 5));
    let p = provider(&fake);
    let (res, deltas) = common::stream(&p, &common::ask("gpt-4o-mini", "go")).await;
    let res = res.expect("chat");
    assert_eq!(res.content.as_deref(), Some("The quick brown fox jumps"));
    assert!(deltas.len() >= 5, "several deltas: {deltas:?}");
    assert_eq!(deltas.concat(), "The quick brown fox jumps");
    assert_eq!(
        res.usage,
        Usage {
            input_tokens: 30,
            output_tokens: 5
        }
    );
    let body = &fake.requests()[0];
    assert_eq!(body["stream"], json!(true));
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn tool_calls_with_fragmented_arguments_are_merged_by_index() {
    let fake = FakeLlm::start().await;
    let calls = vec![
        (
            "get_weather".to_owned(),
            json!({"location": "Tokyo", "unit": "celsius"}),
        ),
        ("calc".to_owned(), json!({"expression": "2 + 2 * 10"})),
    ];
    fake.push(Reply::ToolCalls(calls.clone()));
    fake.push(Reply::ToolCalls(calls.clone()));
    let p = provider(&fake);
    let mut request = common::ask("gpt-4o-mini", "weather?");
    request.tools = vec![ToolDef {
        name: "get_weather".into(),
        description: "Weather".into(),
        parameters: json!({"type": "object", "properties": {"location": {"type": "string"}}}),
    }];

    let (streamed, deltas) = common::stream(&p, &request).await;
    let whole = p.chat(&request, None).await.expect("non-streamed");
    let streamed = streamed.expect("streamed");
    assert!(
        deltas.is_empty(),
        "tool calls are not text deltas: {deltas:?}"
    );
    for res in [&streamed, &whole] {
        assert_eq!(res.finish_reason, FinishReason::ToolCalls);
        assert_eq!(res.tool_calls.len(), 2);
        for (got, (name, args)) in res.tool_calls.iter().zip(&calls) {
            assert_eq!(&got.name, name);
            let parsed: Value = serde_json::from_str(&got.arguments).expect("arguments are JSON");
            assert_eq!(&parsed, args);
        }
        assert_eq!(res.tool_calls[0].id, "call_0");
        assert_eq!(res.tool_calls[1].id, "call_1");
    }
    assert_eq!(streamed.tool_calls, whole.tool_calls);
}

#[tokio::test]
async fn request_shape_of_tools_tool_results_and_structured_output() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::Json(json!({"city": "Tokyo", "temp": 22})));
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": "number"}},
                        "required": ["city", "temp"], "additionalProperties": false});
    let mut request = common::ask("gpt-4o-mini", "weather?");
    request.messages.push(Message::Assistant {
        content: None,
        tool_calls: vec![ToolCallRequest {
            id: "call_9".into(),
            name: "get_weather".into(),
            arguments: "{\"location\":\"Tokyo\"}".into(),
        }],
    });
    request.messages.push(Message::Tool {
        call_id: "call_9".into(),
        content: "22C sunny".into(),
        is_error: false,
    });
    request.tools = vec![ToolDef {
        name: "get_weather".into(),
        description: "Weather".into(),
        parameters: json!({"type": "object"}),
    }];
    request.tool_choice = ToolChoice::Tool("get_weather".into());
    request.temperature = Some(0.5);
    request.max_tokens = Some(100);
    request.response_format = Some(ResponseFormat {
        name: "weather".into(),
        schema: schema.clone(),
    });

    let res = provider(&fake).chat(&request, None).await.expect("chat");
    let content: Value =
        serde_json::from_str(res.content.as_deref().expect("content")).expect("JSON content");
    assert_eq!(content, json!({"city": "Tokyo", "temp": 22}));

    let body = &fake.requests()[0];
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {
        "name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}}])
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(
        body["response_format"],
        json!({"type": "json_schema", "json_schema": {
        "name": "weather", "schema": schema, "strict": true}})
    );
    assert_eq!(body["temperature"], json!(0.5));
    // A local (non-OpenAI) server gets the classic field name.
    assert_eq!(body["max_tokens"], json!(100));
    assert_eq!(
        body["messages"][2],
        json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Tokyo\"}"}}]})
    );
    assert_eq!(
        body["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_9", "content": "22C sunny"})
    );
}

#[tokio::test]
async fn missing_key_fails_only_for_remote_urls() {
    let remote = OpenAiProvider::new("openai", "https://api.openai.com/v1", None)
        .require_key("OPENAI_API_KEY");
    let err = remote
        .chat(&common::ask("gpt-4o-mini", "hi"), None)
        .await
        .expect_err("no key");
    assert!(
        matches!(&err, LlmError::NotConfigured { provider, message } if provider == "openai" && message.contains("OPENAI_API_KEY")),
        "{err:?}"
    );

    let fake = FakeLlm::start().await;
    let local =
        OpenAiProvider::new("openai", fake.openai_base_url(), None).require_key("OPENAI_API_KEY");
    let res = local
        .chat(&common::ask("m", "echo me"), None)
        .await
        .expect("local needs no key");
    assert_eq!(res.content.as_deref(), Some("echo me"));
    assert_eq!(fake.recorded()[0].header("authorization"), None);
}

#[tokio::test]
async fn length_finish_reason_is_mapped_in_both_protocols() {
    let fake = FakeLlm::start().await;
    let cut = || Reply::WithFinishReason("length".into(), Box::new(Reply::text("partial")));
    fake.push(cut());
    fake.push(cut());
    let openai = provider(&fake);
    let (res, _) = common::stream(&openai, &common::ask("m", "long")).await;
    assert_eq!(res.expect("openai").finish_reason, FinishReason::Length);
    let anthropic =
        pipecat_llm::AnthropicProvider::new("anthropic", fake.anthropic_base_url(), None);
    let res = anthropic
        .chat(&common::ask("m", "long"), None)
        .await
        .expect("anthropic");
    assert_eq!(res.finish_reason, FinishReason::Length);
    assert_eq!(res.content.as_deref(), Some("partial"));
}
