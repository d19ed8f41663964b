//! The retention task: prunes run records by age and per-workflow count (`[retention]`); statistics stay.

use std::time::Duration;

use pipecat_store::{DynStore, RetentionPolicy};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::RetentionConfig;

/// The policy of a configuration at `now`.
pub fn policy(config: &RetentionConfig, now: OffsetDateTime) -> RetentionPolicy {
    RetentionPolicy {
        older_than: config.max_age_days.map(|days| {
            now - time::Duration::days(i64::try_from(days).unwrap_or(i64::MAX / 86_400 / 2))
        }),
        max_runs_per_workflow: config.max_runs_per_workflow,
    }
}

/// Prunes now, then every `interval_secs`, until `stop` fires. Does nothing without a policy.
pub fn start(store: DynStore, config: RetentionConfig, stop: CancellationToken) {
    if config.max_age_days.is_none() && config.max_runs_per_workflow.is_none() {
        return;
    }
    let every = Duration::from_secs(config.interval_secs.max(1));
    tokio::spawn(async move {
        loop {
            match store
                .prune_runs(policy(&config, OffsetDateTime::now_utc()))
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, "retention pruned run records"),
                Err(e) => tracing::error!(error = %e, "retention failed"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    });
}
