//! Native LLM providers behind one [`Provider`] trait.
//!
//! Layout: `types` holds the provider-neutral request/response shapes; each provider is a module of its own.

mod types;

pub use types::*;
