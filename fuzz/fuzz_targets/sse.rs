//! Arbitrary chunked bytes -> the providers' Server-Sent Events parser (`pipecat_llm::sse::SseParser`).
//!
//! Input layout: the first byte `n` says how many control bytes follow (`n % 32`); each control byte is the
//! length of one chunk (used in turn, cycling; 0 feeds an empty chunk); the rest is the stream. So a seed
//! `\0` + a recorded stream feeds the stream whole.
//!
//! Invariants: nothing panics; feeding the stream in one chunk, in the chosen chunks, and one byte at a time
//! (for short inputs) yields the same events; no event field holds a line terminator (data lines are
//! joined with `\n` only); what stays buffered is never a complete line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipecat_llm::sse::{SseEvent, SseParser};

fn whole(stream: &[u8]) -> Vec<SseEvent> {
    let mut parser = SseParser::new();
    let mut events = parser.feed(stream);
    events.extend(parser.finish());
    events
}

fn chunked(stream: &[u8], lengths: &[u8]) -> Vec<SseEvent> {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    let mut rest = stream;
    let mut turn = 0;
    while !rest.is_empty() {
        let len = if lengths.is_empty() {
            rest.len()
        } else {
            usize::from(lengths[turn % lengths.len()]).min(rest.len())
        };
        turn += 1;
        let (chunk, tail) = rest.split_at(len);
        events.extend(parser.feed(chunk));
        rest = tail;
        if turn > 100_000 {
            // Only empty chunks: feed the rest at once.
            events.extend(parser.feed(rest));
            break;
        }
    }
    check_buffer(&parser, stream);
    events.extend(parser.finish());
    assert_eq!(parser.buffered(), 0);
    events
}

/// What is buffered after the last feed is a tail of the stream with no line terminator in it, save a
/// final `\r` that may be the first half of `\r\n`.
fn check_buffer(parser: &SseParser, stream: &[u8]) {
    let n = parser.buffered();
    assert!(n <= stream.len());
    let tail = &stream[stream.len() - n..];
    let body = tail.strip_suffix(b"\r").unwrap_or(tail);
    assert!(
        !body.iter().any(|&b| b == b'\n' || b == b'\r'),
        "a complete line stayed buffered: {tail:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 32).min(rest.len());
    let (lengths, stream) = rest.split_at(n);

    let expected = whole(stream);
    for event in &expected {
        assert!(!event.data.contains('\r'), "{event:?}");
        if let Some(name) = &event.event {
            assert!(!name.contains(['\r', '\n']), "{event:?}");
        }
    }
    assert_eq!(chunked(stream, lengths), expected, "chunks {lengths:?}");
    if stream.len() <= 512 {
        assert_eq!(chunked(stream, &[1]), expected, "one byte at a time");
    }
});
