//! Signals: the first SIGTERM/SIGINT starts a graceful shutdown, a second one exits at once.

use tokio_util::sync::CancellationToken;

/// Waits for SIGTERM or SIGINT (Ctrl-C).
pub async fn signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Cancels `token` on the first signal; exits the process (status 130) on the second.
pub fn watch_signals(token: CancellationToken) {
    tokio::spawn(async move {
        tokio::select! {
            () = signal() => {}
            () = token.cancelled() => return,
        }
        tracing::info!(
            "shutdown signal received: draining runs in flight (send again to exit at once)"
        );
        token.cancel();
        signal().await;
        tracing::warn!("second shutdown signal: exiting at once");
        std::process::exit(130);
    });
}
