//! Running one guest function in a fresh store: fuel, memory limiter, epoch deadline with yields, a tokio
//! timeout that also covers host calls, and mapping of traps to [`CallError`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{PoolConcurrencyLimitError, Store, Trap, UpdateDeadline};

use crate::bindings::PluginPre;
use crate::bindings::exports::pipecat::plugin::tools::{ToolError, ToolInfo as RawToolInfo};
use crate::host::logs::LogLine;
use crate::host::{HostState, MemoryLimitExceeded};
use crate::http::HttpAccess;
use crate::http::grant::HostPattern;
use crate::sandbox::Shared;
use crate::{CallError, Limits};

/// What to run inside the guest.
pub(crate) enum Action<'a> {
    ListTools,
    Call { tool: &'a str, arguments: &'a str },
}

/// What the guest returned.
pub(crate) enum Output {
    Tools(Vec<RawToolInfo>),
    Result(Result<String, ToolError>),
}

/// The result of one run with its log and costs.
pub(crate) struct Run {
    pub(crate) result: Result<Output, CallError>,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) fuel_consumed: u64,
    pub(crate) duration: Duration,
}

/// The grant as the host functions need it.
pub(crate) struct Access {
    pub(crate) config: Arc<BTreeMap<String, String>>,
    pub(crate) allowed_hosts: Arc<Vec<HostPattern>>,
}

/// Instantiates `pre` in a fresh store with `limits` and runs `action`.
pub(crate) async fn run(
    shared: &Shared,
    pre: &PluginPre<HostState>,
    limits: &Limits,
    access: Access,
    action: Action<'_>,
) -> Run {
    let started = Instant::now();
    let _ticking = shared.ticker.busy();
    let http = HttpAccess {
        client: shared.http.clone(),
        allowed: access.allowed_hosts,
        allow_private: shared.config.allow_private_networks,
        timeout: limits.http_timeout,
        max_bytes: limits.max_http_response_bytes,
    };
    let state = HostState::new(
        limits.memory_bytes,
        limits.max_log_bytes,
        access.config,
        http,
    );
    let log = state.log.clone();
    let mut store = state.into_store(&shared.engine);
    if let Err(error) = store.set_fuel(limits.fuel) {
        return Run {
            result: Err(CallError::Internal(format!("cannot set fuel: {error:#}"))),
            logs: Vec::new(),
            fuel_consumed: 0,
            duration: started.elapsed(),
        };
    }
    // Every epoch tick (1 ms) the guest yields to tokio (so a spinning guest never holds a worker thread,
    // and the executor can move it off the caller's runtime) and the deadline is checked.
    let deadline = started + limits.timeout;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        Ok(if Instant::now() >= deadline {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });

    let outcome = tokio::time::timeout(limits.timeout, execute(&mut store, pre, action)).await;

    let fuel_consumed = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
    let memory_hit = store.data().limiter.hit;
    drop(store);
    let mut sink = log.lock();
    let result = match outcome {
        Err(_elapsed) => Err(CallError::Timeout),
        Ok(Ok(output)) => Ok(output),
        Ok(Err(error)) => Err(classify(&error, memory_hit, &sink.stderr_tail())),
    };
    let logs = sink.finish();
    Run {
        result,
        logs,
        fuel_consumed,
        duration: started.elapsed(),
    }
}

async fn execute(
    store: &mut Store<HostState>,
    pre: &PluginPre<HostState>,
    action: Action<'_>,
) -> wasmtime::Result<Output> {
    let plugin = pre.instantiate_async(&mut *store).await?;
    let tools = plugin.pipecat_plugin_tools();
    Ok(match action {
        Action::ListTools => Output::Tools(tools.call_list_tools(&mut *store).await?),
        Action::Call { tool, arguments } => {
            Output::Result(tools.call_call_tool(&mut *store, tool, arguments).await?)
        }
    })
}

/// Maps a failed run to a typed error, attaching the guest's stderr to plain traps (a panic message).
fn classify(error: &wasmtime::Error, memory_hit: bool, stderr: &str) -> CallError {
    if memory_hit || error.downcast_ref::<MemoryLimitExceeded>().is_some() {
        return CallError::MemoryLimit;
    }
    if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
        return CallError::Busy;
    }
    let mut message = match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => return CallError::OutOfFuel,
        Some(Trap::StackOverflow) => return CallError::StackOverflow,
        Some(Trap::Interrupt) => return CallError::Timeout,
        Some(trap) => trap.to_string(),
        None => match error.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => format!("the plugin exited with status {}", exit.0),
            None => error.root_cause().to_string(),
        },
    };
    if !stderr.is_empty() {
        message.push_str("; stderr: ");
        message.push_str(stderr);
    }
    CallError::Trap { message }
}
