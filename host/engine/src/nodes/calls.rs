//! Tool calls (shared by `tool` and `llm` nodes): recording, events, concurrency slots, provider-safe names.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::Value;

use crate::ToolFailure;
use crate::events::EventKind;
use crate::outcome::{ErrorInfo, ToolCallRecord};
use crate::run::{Shared, ms};

/// One tool call to make.
pub(crate) struct Call<'a> {
    pub(crate) node_id: &'a str,
    /// `plugin.tool`.
    pub(crate) reference: &'a str,
    pub(crate) call_id: String,
    /// The arguments, or why they are unusable (sent back as an error result without calling the tool).
    pub(crate) arguments: Result<Value, (Value, ToolFailure)>,
}

/// Makes one tool call: `tool_call` event, a concurrency slot, the runner, the record, `tool_result` event.
pub(crate) async fn call_tool(shared: &Shared<'_>, call: Call<'_>) -> Result<String, ToolFailure> {
    let seq = shared.call_seq.fetch_add(1, Ordering::Relaxed);
    let (plugin, tool) = call
        .reference
        .split_once('.')
        .unwrap_or(("", call.reference));
    let input = match &call.arguments {
        Ok(v) => v.clone(),
        Err((raw, _)) => raw.clone(),
    };
    let started_offset_ms = shared.offset_ms();
    shared
        .emitter
        .emit(EventKind::ToolCall {
            node_id: call.node_id.to_string(),
            tool: tool.to_string(),
            plugin: plugin.to_string(),
            input: input.clone(),
            call_id: call.call_id.clone(),
        })
        .await;
    let started = Instant::now();
    let result = match call.arguments {
        Err((_, failure)) => Err(failure),
        Ok(arguments) => match shared.tool_slots.acquire().await {
            Ok(_permit) => shared.tools.call(call.reference, &arguments).await,
            Err(_) => Err(ToolFailure {
                code: "failed".into(),
                message: "tool slots closed".into(),
            }),
        },
    };
    let duration_ms = ms(started.elapsed());
    let (text, error) = match &result {
        Ok(text) => (Some(text.clone()), None),
        Err(f) => (
            None,
            Some(ErrorInfo {
                code: f.code.clone(),
                message: f.message.clone(),
            }),
        ),
    };
    let record = ToolCallRecord {
        node_id: call.node_id.to_string(),
        tool: tool.to_string(),
        plugin: plugin.to_string(),
        call_id: call.call_id.clone(),
        input,
        result: text.clone(),
        error: error.clone(),
        duration_ms,
        started_offset_ms,
    };
    match shared.tool_calls.lock() {
        Ok(mut calls) => calls.push((seq, record)),
        Err(poisoned) => poisoned.into_inner().push((seq, record)),
    }
    shared
        .emitter
        .emit(EventKind::ToolResult {
            node_id: call.node_id.to_string(),
            tool: tool.to_string(),
            plugin: plugin.to_string(),
            call_id: call.call_id,
            result: text,
            error,
            duration_ms,
        })
        .await;
    result
}

/// Provider-safe, unique names (`^[a-zA-Z0-9_-]{1,64}$`) for tool references: `weather.get_weather` ->
/// `weather__get_weather`.
pub(crate) fn safe_tool_names(references: &[String]) -> Vec<String> {
    let mut used = HashSet::new();
    references
        .iter()
        .map(|reference| {
            let mut base: String = reference
                .replace('.', "__")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if base.is_empty() {
                base.push_str("tool");
            }
            base.truncate(64);
            let mut name = base.clone();
            let mut k = 2;
            while !used.insert(name.clone()) {
                let suffix = format!("_{k}");
                let mut stem = base.clone();
                stem.truncate(64 - suffix.len());
                name = format!("{stem}{suffix}");
                k += 1;
            }
            name
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::safe_tool_names;

    #[test]
    fn names_are_safe_and_unique() {
        let refs = vec![
            "weather.get_weather".to_string(),
            "weather_.get_weather".into(),
            "a.b c".into(),
            "x".repeat(80),
        ];
        let names = safe_tool_names(&refs);
        assert_eq!(names[0], "weather__get_weather");
        assert_eq!(names[2], "a__b_c");
        assert_eq!(names[3].len(), 64);
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert!(names.iter().all(|n| {
            n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }));
    }
}
