//! Test helpers: providers against the fake LLM server, and a tool runner made of plain closures.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use pipecat_engine::{
    Engine, ProviderSource, RunLimits, ToolFailure, ToolRunner, ToolSpec, ValidationEnv,
};
use pipecat_fake_llm::{FakeLlm, Fault, Reply};
use pipecat_llm::{AnthropicProvider, HttpPolicy, OpenAiProvider, Provider, Providers};
use serde_json::{Value, json};
use tokio::sync::Barrier;

type ToolFn = Box<dyn Fn(Value) -> BoxFuture<'static, Result<String, ToolFailure>> + Send + Sync>;

/// Tools implemented by closures.
#[derive(Default)]
pub struct ClosureTools {
    tools: HashMap<String, (ToolSpec, ToolFn)>,
}

impl ClosureTools {
    /// Adds a tool `reference` (`plugin.tool`).
    pub fn add<F>(&mut self, reference: &str, f: F)
    where
        F: Fn(Value) -> BoxFuture<'static, Result<String, ToolFailure>> + Send + Sync + 'static,
    {
        let (plugin, name) = reference.split_once('.').expect("plugin.tool");
        let spec = ToolSpec {
            plugin: plugin.into(),
            name: name.into(),
            description: format!("test tool {reference}"),
            parameters: json!({"type": "object"}),
        };
        self.tools.insert(reference.into(), (spec, Box::new(f)));
    }

    /// The standard test tools: `text.uppercase`, `weather.get_weather`, `math.add`, `fail.always`,
    /// `sync.meet` (returns only once two calls are in flight at the same time).
    pub fn standard() -> ClosureTools {
        let mut tools = ClosureTools::default();
        tools.add("text.uppercase", |args| {
            Box::pin(async move { Ok(args["text"].as_str().unwrap_or_default().to_uppercase()) })
        });
        tools.add("weather.get_weather", |args| {
            Box::pin(async move {
                let location = args["location"].as_str().unwrap_or("?").to_string();
                let temperature = if location == "Tokyo" { 22 } else { 15 };
                Ok(
                    json!({"location": location, "temperature": temperature, "condition": "Sunny"})
                        .to_string(),
                )
            })
        });
        tools.add("math.add", |args| {
            Box::pin(async move {
                match (args["a"].as_f64(), args["b"].as_f64()) {
                    (Some(a), Some(b)) => Ok((a + b).to_string()),
                    _ => Err(ToolFailure {
                        code: "invalid_arguments".into(),
                        message: "a and b must be numbers".into(),
                    }),
                }
            })
        });
        tools.add("fail.always", |_| {
            Box::pin(async move {
                Err(ToolFailure {
                    code: "failed".into(),
                    message: "the service is down".into(),
                })
            })
        });
        let barrier = Arc::new(Barrier::new(2));
        tools.add("sync.meet", move |args| {
            let barrier = barrier.clone();
            Box::pin(async move {
                barrier.wait().await;
                Ok(format!("met {}", args["name"].as_str().unwrap_or("?")))
            })
        });
        tools
    }
}

impl ToolRunner for ClosureTools {
    fn call<'a>(
        &'a self,
        reference: &'a str,
        arguments: &'a Value,
    ) -> BoxFuture<'a, Result<String, ToolFailure>> {
        match self.tools.get(reference) {
            Some((_, f)) => f(arguments.clone()),
            None => Box::pin(async move {
                Err(ToolFailure {
                    code: "not_found".into(),
                    message: reference.to_string(),
                })
            }),
        }
    }

    fn spec(&self, reference: &str) -> Option<ToolSpec> {
        self.tools.get(reference).map(|(spec, _)| spec.clone())
    }
}

/// Validation environment: the standard tools and the providers `openai`, `anthropic`, `backup`.
pub struct TestEnv(pub ClosureTools);

impl ValidationEnv for TestEnv {
    fn tool(&self, reference: &str) -> Option<ToolSpec> {
        self.0.spec(reference)
    }
    fn has_provider(&self, name: &str) -> bool {
        ["openai", "anthropic", "backup"].contains(&name)
    }
}

/// No retries: the scripted faults reach the engine at once.
pub fn policy() -> HttpPolicy {
    HttpPolicy {
        max_attempts: 1,
        ..HttpPolicy::default()
    }
}

/// `openai`, `backup` (OpenAI wire protocol) and `anthropic`, all served by `fake`.
pub fn providers(fake: &FakeLlm) -> Providers {
    let mut providers = Providers::new();
    let openai: Arc<dyn Provider> = Arc::new(
        OpenAiProvider::new("openai", fake.openai_base_url(), Some("test-key".into()))
            .with_policy(policy()),
    );
    let backup: Arc<dyn Provider> = Arc::new(
        OpenAiProvider::new("backup", fake.openai_base_url(), Some("test-key".into()))
            .with_policy(policy()),
    );
    let anthropic: Arc<dyn Provider> = Arc::new(
        AnthropicProvider::new(
            "anthropic",
            fake.anthropic_base_url(),
            Some("test-key".into()),
        )
        .with_policy(policy()),
    );
    providers.insert(openai);
    providers.insert(backup);
    providers.insert(anthropic);
    providers
}

/// An engine over the fake's providers.
pub fn engine(fake: &FakeLlm, limits: RunLimits) -> Engine {
    let providers: Arc<dyn ProviderSource> = Arc::new(providers(fake));
    Engine::new(providers, limits)
}

/// Turns a scripted reply (JSON) into a fake reply:
/// `{"text"}`, `{"tool_calls": [[name, args], …]}`, `{"json"}`, `{"status", "message"}`,
/// `{"rate_limited": secs}`, each optionally with `"usage": [input, output]`.
pub fn reply(step: &Value) -> Reply {
    let base = if let Some(text) = step.get("text").and_then(Value::as_str) {
        Reply::Text(text.into())
    } else if let Some(calls) = step.get("tool_calls").and_then(Value::as_array) {
        Reply::ToolCalls(
            calls
                .iter()
                .map(|c| (c[0].as_str().expect("tool name").to_string(), c[1].clone()))
                .collect(),
        )
    } else if let Some(json) = step.get("json") {
        Reply::Json(json.clone())
    } else if let Some(status) = step.get("status").and_then(Value::as_u64) {
        Reply::Fault(Fault::Status(
            status as u16,
            step["message"].as_str().unwrap_or("error").into(),
        ))
    } else if let Some(secs) = step.get("rate_limited").and_then(Value::as_u64) {
        Reply::Fault(Fault::RateLimited {
            retry_after_secs: secs,
        })
    } else {
        panic!("unknown script step {step}")
    };
    match step.get("usage").and_then(Value::as_array) {
        Some(u) => base.with_usage(u[0].as_u64().unwrap_or(0), u[1].as_u64().unwrap_or(0)),
        None => base,
    }
}
