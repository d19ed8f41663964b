//! The error a tool returns, and conversions into it.

/// Why a tool call did not produce a result; the host tells the workflow (and the model) which kind it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The arguments did not fit the tool; the message says how. The SDK returns this by itself when the
    /// arguments do not deserialize into the tool's argument type.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The tool ran and failed; the message says why.
    #[error("{0}")]
    Failed(String),
}

impl ToolError {
    /// A failure of the tool, with a message for the caller (and the model) to read.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// The arguments were well-formed JSON of the right shape but not acceptable (e.g. out of range).
    pub fn invalid_arguments(message: impl Into<String>) -> Self {
        Self::InvalidArguments(message.into())
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidArguments(m) | Self::Failed(m) => m,
        }
    }
}

impl From<crate::http::Error> for ToolError {
    fn from(error: crate::http::Error) -> Self {
        Self::Failed(error.to_string())
    }
}

impl From<serde_json::Error> for ToolError {
    fn from(error: serde_json::Error) -> Self {
        Self::Failed(format!("JSON error: {error}"))
    }
}

impl From<ToolError> for crate::bindings::pipecat::plugin::types::ToolError {
    fn from(error: ToolError) -> Self {
        match error {
            ToolError::InvalidArguments(m) => Self::InvalidArguments(m),
            ToolError::Failed(m) => Self::Failed(m),
        }
    }
}
