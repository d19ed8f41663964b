//! Lines in the run's log (the host bounds how many a call may write).
//!
//! Compiled natively (in a plugin's unit tests) the lines go to standard error.

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Details useful while debugging.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that the tool recovered from.
    Warn,
    /// A failure.
    Error,
}

/// Writes one line at `level`.
pub fn write(level: Level, message: &str) {
    imp::write(level, message);
}

/// Writes one line at debug level.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// Writes one line at info level.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Writes one line at warn level.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Writes one line at error level.
pub fn error(message: &str) {
    write(Level::Error, message);
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Level;
    use crate::bindings::pipecat::plugin::log::{self, Level as Wit};

    pub(super) fn write(level: Level, message: &str) {
        let level = match level {
            Level::Trace => Wit::Trace,
            Level::Debug => Wit::Debug,
            Level::Info => Wit::Info,
            Level::Warn => Wit::Warn,
            Level::Error => Wit::Error,
        };
        log::write(level, message);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::Level;

    pub(super) fn write(level: Level, message: &str) {
        eprintln!("[{level:?}] {message}");
    }
}
