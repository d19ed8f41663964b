//! Typed errors: why a component cannot be loaded, why a call produced no result, why the sandbox failed.

use thiserror::Error;

/// Why [`Sandbox::new`](crate::Sandbox::new) failed.
#[derive(Debug, Error)]
pub enum SandboxError {
    /// The wasmtime engine could not be created.
    #[error("cannot create the wasm engine: {0}")]
    Engine(String),
    /// The host functions could not be linked.
    #[error("cannot link host functions: {0}")]
    Linker(String),
    /// The outbound HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    /// The cache folder could not be created.
    #[error("cannot create the cache folder: {0}")]
    Cache(#[from] std::io::Error),
}

/// Why bytes could not be loaded as a plugin. Each variant has a stable [`code`](LoadError::code).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum LoadError {
    /// The bytes exceed [`SandboxConfig::max_component_bytes`](crate::SandboxConfig::max_component_bytes).
    #[error("the component is {size} bytes, more than the limit of {max}")]
    TooLarge {
        /// Size of the bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly component: {0}")]
    NotWasm(String),
    /// The bytes are a core WebAssembly module, not a component.
    #[error(
        "a core WebAssembly module, not a component (build for wasm32-wasip2 or run `wasm-tools component new`)"
    )]
    CoreModule,
    /// The component failed validation or compilation.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// Compilation took longer than the configured limit.
    #[error("compiling the component took longer than {0:?}")]
    CompileTimeout(std::time::Duration),
    /// The component imports something the host does not provide.
    #[error("the component imports something the host does not provide: {0}")]
    UnknownImport(String),
    /// The component does not export the `pipecat:plugin/tools` interface of world `plugin`.
    #[error("the component does not target world pipecat:plugin/plugin@0.1.0: {0}")]
    WrongWorld(String),
    /// `list-tools` did not return.
    #[error("listing the plugin's tools failed: {0}")]
    ListTools(crate::CallError),
    /// `list-tools` returned an unusable list.
    #[error("the plugin's tool list is invalid: {0}")]
    InvalidTools(String),
    /// A host-side failure (e.g. the compile task panicked).
    #[error("internal error while loading: {0}")]
    Internal(String),
}

impl LoadError {
    /// Stable machine-readable code, e.g. `core_module`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::NotWasm(_) => "not_wasm",
            Self::CoreModule => "core_module",
            Self::Invalid(_) => "invalid_component",
            Self::CompileTimeout(_) => "compile_timeout",
            Self::UnknownImport(_) => "unknown_import",
            Self::WrongWorld(_) => "wrong_world",
            Self::ListTools(_) => "list_tools_failed",
            Self::InvalidTools(_) => "invalid_tools",
            Self::Internal(_) => "internal",
        }
    }
}

/// Why a tool call produced no result. Each variant has a stable [`code`](CallError::code).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum CallError {
    /// The fuel budget ran out.
    #[error("the plugin ran out of fuel")]
    OutOfFuel,
    /// The wall-clock deadline passed (in guest code or in a host call).
    #[error("the call took longer than its deadline")]
    Timeout,
    /// The guest tried to grow its memory past the limit.
    #[error("the plugin exceeded its memory limit")]
    MemoryLimit,
    /// The guest overflowed its stack.
    #[error("the plugin overflowed its stack")]
    StackOverflow,
    /// The guest trapped (panic, `unreachable`, out-of-bounds access, exit…).
    #[error("the plugin trapped: {message}")]
    Trap {
        /// The trap and, when there is one, the guest's stderr (e.g. the panic message).
        message: String,
    },
    /// The result text exceeds the output cap.
    #[error("the result is {size} bytes, more than the limit of {max}")]
    OutputTooLarge {
        /// Size of the result.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The arguments are not a JSON object, or the tool refused them.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The tool ran and reported a failure.
    #[error("the tool failed: {0}")]
    Failed(String),
    /// The plugin has no tool of that name.
    #[error("the plugin has no tool named {0:?}")]
    UnknownTool(String),
    /// Every instance slot is in use; try again later.
    #[error("the sandbox is at its instance limit")]
    Busy,
    /// A host-side failure unrelated to the guest.
    #[error("internal sandbox error: {0}")]
    Internal(String),
}

impl CallError {
    /// Stable machine-readable code, e.g. `out_of_fuel`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::OutOfFuel => "out_of_fuel",
            Self::Timeout => "timeout",
            Self::MemoryLimit => "memory_limit",
            Self::StackOverflow => "stack_overflow",
            Self::Trap { .. } => "trap",
            Self::OutputTooLarge { .. } => "output_too_large",
            Self::InvalidArguments(_) => "invalid_arguments",
            Self::Failed(_) => "failed",
            Self::UnknownTool(_) => "unknown_tool",
            Self::Busy => "busy",
            Self::Internal(_) => "internal",
        }
    }
}
