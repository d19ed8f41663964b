//! The providers a server knows, by name, built from the environment and the config file.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::anthropic::{ANTHROPIC_DEFAULT_BASE_URL, AnthropicProvider};
use crate::http::HttpPolicy;
use crate::openai::{OPENAI_DEFAULT_BASE_URL, OpenAiProvider, env_nonempty};
use crate::types::Provider;

/// Which wire protocol a configured provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI Chat Completions (OpenAI and compatible servers).
    Openai,
    /// Anthropic Messages.
    Anthropic,
}

/// One `[[providers]]` entry of the server's TOML config.
///
/// ```toml
/// [[providers]]
/// name = "ollama"
/// kind = "openai"
/// base_url = "http://localhost:11434/v1"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The name workflows use (`provider` of an `llm` node). `openai` / `anthropic` replace the built-ins.
    pub name: String,
    /// The wire protocol.
    pub kind: ProviderKind,
    /// Base URL (OpenAI kind: up to `/v1`; Anthropic kind: without `/v1`). Defaults to the vendor's.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Environment variable holding the API key. Without one (or when it is unset) no key is sent.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Overrides [`HttpPolicy::connect_timeout`], in seconds.
    #[serde(default)]
    pub connect_timeout_secs: Option<u64>,
    /// Overrides [`HttpPolicy::first_byte_timeout`], in seconds.
    #[serde(default)]
    pub first_byte_timeout_secs: Option<u64>,
    /// Overrides [`HttpPolicy::idle_timeout`], in seconds.
    #[serde(default)]
    pub idle_timeout_secs: Option<u64>,
    /// Overrides [`HttpPolicy::total_timeout`], in seconds.
    #[serde(default)]
    pub total_timeout_secs: Option<u64>,
    /// Overrides [`HttpPolicy::max_attempts`].
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Overrides [`HttpPolicy::max_retry_wait`], in seconds.
    #[serde(default)]
    pub max_retry_wait_secs: Option<u64>,
}

impl ProviderConfig {
    /// The default policy with this entry's overrides.
    pub fn policy(&self) -> HttpPolicy {
        let mut p = HttpPolicy::default();
        let secs = Duration::from_secs;
        if let Some(s) = self.connect_timeout_secs {
            p.connect_timeout = secs(s);
        }
        if let Some(s) = self.first_byte_timeout_secs {
            p.first_byte_timeout = secs(s);
        }
        if let Some(s) = self.idle_timeout_secs {
            p.idle_timeout = secs(s);
        }
        if let Some(s) = self.total_timeout_secs {
            p.total_timeout = secs(s);
        }
        if let Some(n) = self.max_attempts {
            p.max_attempts = n.max(1);
        }
        if let Some(s) = self.max_retry_wait_secs {
            p.max_retry_wait = secs(s);
        }
        p
    }
}

/// The `providers` part of the server's config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ProvidersConfig {
    /// Extra (or replacing) providers.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
}

/// A config entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderConfigError {
    /// Names must be non-empty `[a-zA-Z0-9_-]`.
    #[error("invalid provider name {0:?}: use letters, digits, '-' and '_'")]
    InvalidName(String),
    /// Two entries with one name.
    #[error("provider {0:?} is configured twice")]
    Duplicate(String),
    /// The base URL does not parse or is not http(s).
    #[error("provider {name:?}: invalid base_url {url:?}")]
    InvalidBaseUrl {
        /// The provider.
        name: String,
        /// The URL as configured.
        url: String,
    },
}

/// The providers known to the server, by name.
#[derive(Clone, Default)]
pub struct Providers {
    by_name: BTreeMap<String, Arc<dyn Provider>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("names", &self.names())
            .finish()
    }
}

impl Providers {
    /// No providers.
    pub fn new() -> Self {
        Self::default()
    }

    /// `openai` and `anthropic` from their conventional variables, plus the configured providers
    /// (whose keys are read from their `api_key_env`).
    pub fn from_env(config: &ProvidersConfig) -> Result<Self, ProviderConfigError> {
        Self::from_lookup(config, env_nonempty)
    }

    /// Like [`Providers::from_env`] with variables read through `var` (tests pass a map).
    pub fn from_lookup(
        config: &ProvidersConfig,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ProviderConfigError> {
        let mut providers = Providers::new();
        let openai_url =
            var("OPENAI_BASE_URL").unwrap_or_else(|| OPENAI_DEFAULT_BASE_URL.to_owned());
        providers.insert(Arc::new(
            OpenAiProvider::new("openai", openai_url, var("OPENAI_API_KEY"))
                .require_key("OPENAI_API_KEY"),
        ));
        let anthropic_url =
            var("ANTHROPIC_BASE_URL").unwrap_or_else(|| ANTHROPIC_DEFAULT_BASE_URL.to_owned());
        providers.insert(Arc::new(AnthropicProvider::new(
            "anthropic",
            anthropic_url,
            var("ANTHROPIC_API_KEY"),
        )));

        let mut seen = std::collections::BTreeSet::new();
        for entry in &config.providers {
            let name = entry.name.as_str();
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                return Err(ProviderConfigError::InvalidName(entry.name.clone()));
            }
            if !seen.insert(name) {
                return Err(ProviderConfigError::Duplicate(entry.name.clone()));
            }
            if let Some(url) = &entry.base_url {
                let ok =
                    reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
                if !ok {
                    return Err(ProviderConfigError::InvalidBaseUrl {
                        name: entry.name.clone(),
                        url: url.clone(),
                    });
                }
            }
            let key = entry.api_key_env.as_deref().and_then(&var);
            let provider: Arc<dyn Provider> = match entry.kind {
                ProviderKind::Openai => {
                    let url = entry
                        .base_url
                        .clone()
                        .unwrap_or_else(|| OPENAI_DEFAULT_BASE_URL.to_owned());
                    let mut p = OpenAiProvider::new(name, url, key);
                    if let Some(env) = &entry.api_key_env {
                        p = p.require_key(env);
                    }
                    Arc::new(p.with_policy(entry.policy()))
                }
                ProviderKind::Anthropic => {
                    let url = entry
                        .base_url
                        .clone()
                        .unwrap_or_else(|| ANTHROPIC_DEFAULT_BASE_URL.to_owned());
                    let mut p = AnthropicProvider::new(name, url, key);
                    if let Some(env) = &entry.api_key_env {
                        p = p.with_key_env(env);
                    }
                    Arc::new(p.with_policy(entry.policy()))
                }
            };
            providers.insert(provider);
        }
        Ok(providers)
    }

    /// Adds a provider under its own name, replacing one of that name.
    pub fn insert(&mut self, provider: Arc<dyn Provider>) {
        self.by_name.insert(provider.name().to_owned(), provider);
    }

    /// The provider called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.by_name.get(name).cloned()
    }

    /// Whether a provider called `name` exists (workflow validation).
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// All names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }
}
