//! The call's log: `log.write` lines plus captured stdout/stderr, bounded in bytes.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use serde::Serialize;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Very detailed.
    Trace,
    /// Debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected (stderr lines get this level).
    Warn,
    /// A failure.
    Error,
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    /// The guest called `log.write`.
    Plugin,
    /// The guest wrote to stdout.
    Stdout,
    /// The guest wrote to stderr.
    Stderr,
    /// The sandbox itself (e.g. "log truncated").
    Host,
}

/// One line of a call's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// Severity.
    pub level: LogLevel,
    /// Origin.
    pub source: LogSource,
    /// The text, without a trailing newline.
    pub message: String,
}

/// Bytes of stderr kept for trap messages (the end of it, where a panic message is).
const STDERR_TAIL: usize = 2048;

/// Collects the log of one call, keeping at most `max_bytes` bytes of text.
#[derive(Debug)]
pub(crate) struct LogSink {
    lines: Vec<LogLine>,
    used: usize,
    max_bytes: usize,
    dropped: usize,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    stderr_tail: Vec<u8>,
}

impl LogSink {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            lines: Vec::new(),
            used: 0,
            max_bytes,
            dropped: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stderr_tail: Vec::new(),
        }
    }

    /// Adds one line, or counts it as dropped when the budget is spent.
    pub(crate) fn push(&mut self, level: LogLevel, source: LogSource, message: &str) {
        if self.used + message.len() > self.max_bytes {
            self.dropped += message.len();
            return;
        }
        self.used += message.len();
        self.lines.push(LogLine {
            level,
            source,
            message: message.to_owned(),
        });
    }

    fn write_stream(&mut self, source: LogSource, bytes: &[u8]) {
        if source == LogSource::Stderr {
            self.stderr_tail.extend_from_slice(bytes);
            if self.stderr_tail.len() > STDERR_TAIL {
                let cut = self.stderr_tail.len() - STDERR_TAIL;
                self.stderr_tail.drain(..cut);
            }
        }
        let room = self
            .max_bytes
            .saturating_sub(self.used + self.stdout.len() + self.stderr.len());
        let take = bytes.len().min(room);
        self.dropped += bytes.len() - take;
        let (buf, level) = match source {
            LogSource::Stderr => (&mut self.stderr, LogLevel::Warn),
            _ => (&mut self.stdout, LogLevel::Info),
        };
        buf.extend_from_slice(&bytes[..take]);
        let Some(last_newline) = buf.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = buf.drain(..=last_newline).collect();
        for line in complete[..complete.len() - 1].split(|b| *b == b'\n') {
            let text = String::from_utf8_lossy(line).into_owned();
            self.used += text.len();
            self.lines.push(LogLine {
                level,
                source,
                message: text,
            });
        }
    }

    /// The last bytes the guest wrote to stderr, trimmed.
    pub(crate) fn stderr_tail(&self) -> String {
        String::from_utf8_lossy(&self.stderr_tail).trim().to_owned()
    }

    /// Flushes partial stdout/stderr lines and returns every line.
    pub(crate) fn finish(&mut self) -> Vec<LogLine> {
        for (source, level) in [
            (LogSource::Stdout, LogLevel::Info),
            (LogSource::Stderr, LogLevel::Warn),
        ] {
            let buf = std::mem::take(if source == LogSource::Stdout {
                &mut self.stdout
            } else {
                &mut self.stderr
            });
            if !buf.is_empty() {
                let text = String::from_utf8_lossy(&buf).into_owned();
                self.used += text.len();
                self.lines.push(LogLine {
                    level,
                    source,
                    message: text,
                });
            }
        }
        let mut lines = std::mem::take(&mut self.lines);
        if self.dropped > 0 {
            lines.push(LogLine {
                level: LogLevel::Warn,
                source: LogSource::Host,
                message: format!(
                    "log truncated: {} bytes over the limit of {} were dropped",
                    self.dropped, self.max_bytes
                ),
            });
        }
        lines
    }
}

/// A shared handle on the sink.
#[derive(Debug, Clone)]
pub(crate) struct SharedLog(Arc<Mutex<LogSink>>);

impl SharedLog {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self(Arc::new(Mutex::new(LogSink::new(max_bytes))))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, LogSink> {
        // A panic while holding the lock leaves the sink consistent enough to read.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The guest's stdout or stderr, writing into this log.
    pub(crate) fn stream(&self, source: LogSource) -> Capture {
        Capture {
            log: self.clone(),
            source,
        }
    }
}

/// A guest stdout/stderr that writes into the call's log and never fails (excess bytes are dropped), so a
/// chatty guest is not killed by `println!` panicking on a write error.
#[derive(Debug, Clone)]
pub(crate) struct Capture {
    log: SharedLog,
    source: LogSource,
}

impl Capture {
    fn write_bytes(&self, bytes: &[u8]) {
        self.log.lock().write_stream(self.source, bytes);
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
