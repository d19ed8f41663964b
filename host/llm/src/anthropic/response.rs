//! Anthropic answers: the wire shapes of a whole message and of stream events, and the
//! accumulator that turns either into a [`ChatResponse`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::types::{ChatResponse, FinishReason, ToolCallRequest, Usage};

#[derive(Debug, Default, Deserialize)]
pub(super) struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    fn input(&self) -> Option<u64> {
        let cached = self.cache_creation_input_tokens.unwrap_or(0)
            + self.cache_read_input_tokens.unwrap_or(0);
        self.input_tokens.map(|i| i + cached)
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct Block {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireMessage {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Option<Vec<Block>>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
pub(super) struct BlockDelta {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    partial_json: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct MessageDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireError {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Event {
    MessageStart {
        message: WireMessage,
    },
    ContentBlockStart {
        index: usize,
        content_block: Block,
    },
    ContentBlockDelta {
        index: usize,
        delta: BlockDelta,
    },
    ContentBlockStop {},
    MessageDelta {
        delta: MessageDelta,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop {},
    Ping {},
    Error {
        error: WireError,
    },
    #[serde(other)]
    Unknown,
}

pub(super) enum Step {
    Continue(Option<String>),
    Done,
    Failed(String, String),
}

/// One content block being assembled.
#[derive(Debug)]
pub(super) struct Part {
    tool: Option<(String, String)>,
    buf: String,
}

/// Assembles an answer from a whole message or from stream events.
pub(super) struct Acc<'r> {
    structured: Option<&'r str>,
    model: String,
    parts: BTreeMap<usize, Part>,
    stop: Option<String>,
    usage: Usage,
}

impl<'r> Acc<'r> {
    pub(super) fn new(structured: Option<&'r str>) -> Self {
        Acc {
            structured,
            model: String::new(),
            parts: BTreeMap::new(),
            stop: None,
            usage: Usage::default(),
        }
    }

    fn start(&mut self, index: usize, block: Block) {
        let tool = (block.kind == "tool_use").then(|| {
            (
                block.id.unwrap_or_else(|| format!("toolu_{index}")),
                block.name.unwrap_or_default(),
            )
        });
        let buf = if tool.is_some() {
            String::new()
        } else {
            block.text.unwrap_or_default()
        };
        self.parts.insert(index, Part { tool, buf });
    }

    fn is_structured(&self, part: &Part) -> bool {
        matches!((&part.tool, self.structured), (Some((_, name)), Some(s)) if name == s)
    }

    pub(super) fn whole(&mut self, message: WireMessage) {
        self.model = message.model.unwrap_or_default();
        self.stop = message.stop_reason;
        if let Some(u) = message.usage {
            self.usage = Usage {
                input_tokens: u.input().unwrap_or(0),
                output_tokens: u.output_tokens.unwrap_or(0),
            };
        }
        for (index, mut block) in message.content.unwrap_or_default().into_iter().enumerate() {
            let input = block.input.take();
            let is_tool = block.kind == "tool_use";
            self.start(index, block);
            if let (true, Some(input), Some(part)) = (is_tool, input, self.parts.get_mut(&index)) {
                part.buf = input.to_string();
            }
        }
    }

    pub(super) fn event(&mut self, event: Event) -> Step {
        match event {
            Event::MessageStart { message } => {
                self.model = message.model.unwrap_or_default();
                if let Some(u) = message.usage {
                    self.usage.input_tokens = u.input().unwrap_or(0);
                    self.usage.output_tokens = u.output_tokens.unwrap_or(0);
                }
            }
            Event::ContentBlockStart {
                index,
                content_block,
            } => self.start(index, content_block),
            Event::ContentBlockDelta { index, delta } => {
                let piece = match delta.kind.as_str() {
                    "text_delta" => delta.text,
                    "input_json_delta" => delta.partial_json,
                    _ => None,
                };
                let (Some(piece), Some(part)) = (piece, self.parts.get(&index)) else {
                    return Step::Continue(None);
                };
                let visible = part.tool.is_none() || self.is_structured(part);
                if let Some(part) = self.parts.get_mut(&index) {
                    part.buf.push_str(&piece);
                }
                return Step::Continue((visible && !piece.is_empty()).then_some(piece));
            }
            Event::MessageDelta { delta, usage } => {
                if delta.stop_reason.is_some() {
                    self.stop = delta.stop_reason;
                }
                if let Some(u) = usage {
                    if let Some(input) = u.input() {
                        self.usage.input_tokens = input;
                    }
                    if let Some(output) = u.output_tokens {
                        self.usage.output_tokens = output;
                    }
                }
            }
            Event::MessageStop {} => return Step::Done,
            Event::Error { error } => {
                return Step::Failed(
                    error.kind.unwrap_or_else(|| "error".into()),
                    error.message.unwrap_or_default(),
                );
            }
            Event::ContentBlockStop {} | Event::Ping {} | Event::Unknown => {}
        }
        Step::Continue(None)
    }

    pub(super) fn finish(self) -> ChatResponse {
        let mut text: Option<String> = None;
        let mut json: Option<String> = None;
        let mut tool_calls = Vec::new();
        for part in self.parts.values() {
            let structured = self.is_structured(part);
            match &part.tool {
                None => text.get_or_insert_with(String::new).push_str(&part.buf),
                Some(_) if structured => json = Some(part.buf.clone()),
                Some((id, name)) => tool_calls.push(ToolCallRequest {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: if part.buf.trim().is_empty() {
                        "{}".to_owned()
                    } else {
                        part.buf.clone()
                    },
                }),
            }
        }
        let finish_reason = match (self.stop.as_deref(), json.is_some()) {
            (Some("tool_use"), true) if tool_calls.is_empty() => FinishReason::Stop,
            (None | Some("end_turn" | "stop_sequence" | "pause_turn"), _) => FinishReason::Stop,
            (Some("tool_use"), _) => FinishReason::ToolCalls,
            (Some("max_tokens"), _) => FinishReason::Length,
            (Some("refusal"), _) => FinishReason::ContentFilter,
            (Some(_), _) => FinishReason::Other,
        };
        // Structured output: the forced tool's input is the content; a preface in text is dropped.
        let content = json.or(text);
        ChatResponse {
            content,
            tool_calls,
            usage: self.usage,
            finish_reason,
            model: self.model,
        }
    }
}
