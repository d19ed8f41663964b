//! Signals: the first SIGTERM/SIGINT starts a graceful shutdown, a second one exits at once.

use tokio_util::sync::CancellationToken;

/// The process exit status after a second shutdown signal (as a shell reports death by SIGINT).
pub const EXIT_SECOND_SIGNAL: i32 = 130;

/// SIGTERM and SIGINT, listened to from the moment this is created: a signal arriving between two
/// [`Signals::recv`] calls is not lost.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Waits for the next SIGTERM or SIGINT.
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        if s.recv().await.is_none() {
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = next(&mut self.term) => {},
                () = next(&mut self.int) => {},
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Waits for SIGTERM or SIGINT (Ctrl-C).
pub async fn signal() {
    Signals::new().recv().await;
}

/// Cancels `token` on the first signal; exits the process (status [`EXIT_SECOND_SIGNAL`], 130) on the
/// second, without draining or flushing (what was acknowledged is durable already).
pub fn watch_signals(token: CancellationToken) {
    // Registered before returning, so a signal right after start-up is seen.
    let mut signals = Signals::new();
    tokio::spawn(async move {
        tokio::select! {
            () = signals.recv() => {}
            () = token.cancelled() => return,
        }
        tracing::info!(
            "shutdown signal received: draining runs in flight (send again to exit at once)"
        );
        token.cancel();
        signals.recv().await;
        tracing::warn!("second shutdown signal: exiting at once");
        std::process::exit(EXIT_SECOND_SIGNAL);
    });
}
