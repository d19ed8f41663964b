//! The provider registry built from config and environment.

mod common;

use std::collections::HashMap;

use pipecat_fake_llm::{FakeLlm, Reply};
use pipecat_llm::{ProviderConfigError, ProviderKind, Providers, ProvidersConfig};

fn parse(toml_text: &str) -> ProvidersConfig {
    toml::from_str(toml_text).expect("config parses")
}

#[test]
fn builtins_are_always_registered() {
    let providers =
        Providers::from_lookup(&ProvidersConfig::default(), |_| None).expect("registry");
    assert_eq!(
        providers.names(),
        vec!["anthropic".to_owned(), "openai".to_owned()]
    );
    assert!(providers.get("openai").is_some());
    assert!(providers.get("nope").is_none());
}

#[tokio::test]
async fn configured_openai_compatible_provider_works_without_a_key() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::text("from ollama"));
    let config = parse(&format!(
        "[[providers]]\nname = \"ollama\"\nkind = \"openai\"\nbase_url = \"{}\"\nmax_attempts = 1\n",
        fake.openai_base_url()
    ));
    assert_eq!(config.providers[0].kind, ProviderKind::Openai);
    assert_eq!(config.providers[0].policy().max_attempts, 1);
    let providers = Providers::from_lookup(&config, |_| None).expect("registry");
    assert_eq!(providers.names(), vec!["anthropic", "ollama", "openai"]);
    let ollama = providers.get("ollama").expect("ollama");
    assert_eq!(ollama.name(), "ollama");
    let res = ollama
        .chat(&common::ask("llama3.2", "hi"), None)
        .await
        .expect("chat");
    assert_eq!(res.content.as_deref(), Some("from ollama"));
}

#[tokio::test]
async fn keys_and_base_urls_come_from_the_variables() {
    let fake = FakeLlm::start().await;
    let vars: HashMap<&str, String> = HashMap::from([
        ("OPENAI_BASE_URL", fake.openai_base_url()),
        ("OPENAI_API_KEY", "sk-openai".to_owned()),
        ("ANTHROPIC_BASE_URL", fake.anthropic_base_url()),
        ("ANTHROPIC_API_KEY", "sk-anthropic".to_owned()),
        ("GROQ_KEY", "gsk".to_owned()),
    ]);
    let config = parse(&format!(
        "[[providers]]\nname = \"groq\"\nkind = \"openai\"\nbase_url = \"{}\"\napi_key_env = \"GROQ_KEY\"\n",
        fake.openai_base_url()
    ));
    let providers = Providers::from_lookup(&config, |k| vars.get(k).cloned()).expect("registry");
    for name in ["openai", "anthropic", "groq"] {
        providers
            .get(name)
            .expect(name)
            .chat(&common::ask("m", name), None)
            .await
            .expect("chat");
    }
    let sent = fake.recorded();
    assert_eq!(sent[0].header("authorization"), Some("Bearer sk-openai"));
    assert_eq!(sent[1].header("x-api-key"), Some("sk-anthropic"));
    assert_eq!(sent[2].header("authorization"), Some("Bearer gsk"));
}

#[test]
fn bad_entries_are_rejected() {
    let dup = parse(
        "[[providers]]\nname = \"a\"\nkind = \"openai\"\n[[providers]]\nname = \"a\"\nkind = \"anthropic\"\n",
    );
    assert_eq!(
        Providers::from_lookup(&dup, |_| None).err(),
        Some(ProviderConfigError::Duplicate("a".into()))
    );
    let bad_url = parse("[[providers]]\nname = \"a\"\nkind = \"openai\"\nbase_url = \"ftp://x\"\n");
    assert!(matches!(
        Providers::from_lookup(&bad_url, |_| None),
        Err(ProviderConfigError::InvalidBaseUrl { .. })
    ));
    let bad_name = parse("[[providers]]\nname = \"a b\"\nkind = \"openai\"\n");
    assert!(matches!(
        Providers::from_lookup(&bad_name, |_| None),
        Err(ProviderConfigError::InvalidName(_))
    ));
    assert!(
        toml::from_str::<ProvidersConfig>("[[providers]]\nname = \"a\"\nkind = \"gemini\"\n")
            .is_err()
    );
    assert!(
        toml::from_str::<ProvidersConfig>(
            "[[providers]]\nname = \"a\"\nkind = \"openai\"\ntypo = 1\n"
        )
        .is_err()
    );
}

#[test]
fn local_urls() {
    assert!(pipecat_llm::is_local_url("http://localhost:11434/v1"));
    assert!(pipecat_llm::is_local_url("http://127.0.0.1:8000/v1"));
    assert!(pipecat_llm::is_local_url("http://[::1]:8000"));
    assert!(!pipecat_llm::is_local_url("https://api.openai.com/v1"));
    assert!(!pipecat_llm::is_local_url("not a url"));
}
