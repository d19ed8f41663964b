//! Native LLM providers behind one [`Provider`] trait.
//!
//! Layout, in the order a call flows through it:
//! - `types`: the provider-neutral request/response shapes, [`LlmError`] and the [`Provider`] trait;
//! - `registry`: [`Providers`], the providers by name, built from the environment and the config file;
//! - `openai` / `anthropic`: one module per wire protocol; each turns a [`ChatRequest`] into its JSON
//!   body, and the answer (whole or streamed) back into a [`ChatResponse`], sending text deltas to the
//!   caller's [`DeltaSink`] as they arrive;
//! - `http`: what every provider shares: [`HttpPolicy`] timeouts, retries with backoff and
//!   `Retry-After`, body limits, and error messages taken from the provider's error body;
//! - `sse`: the incremental Server-Sent Events parser used by both streaming protocols;
//! - `pricing`: [`cost_usd`] for a few known models.

mod anthropic;
mod http;
mod openai;
mod pricing;
mod registry;
pub mod sse;
mod types;

pub use anthropic::{
    ANTHROPIC_DEFAULT_BASE_URL, ANTHROPIC_DEFAULT_MAX_TOKENS, ANTHROPIC_VERSION, AnthropicProvider,
};
pub use http::HttpPolicy;
pub use openai::{OPENAI_DEFAULT_BASE_URL, OpenAiProvider};
pub use pricing::cost_usd;
pub use registry::{ProviderConfig, ProviderConfigError, ProviderKind, Providers, ProvidersConfig};
pub use types::*;

/// Whether a base URL points at this machine (no API key needed there).
pub fn is_local_url(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unspecified(),
        None => false,
    }
}
