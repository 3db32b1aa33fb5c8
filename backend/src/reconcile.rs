//! Periodic reconciliation of the store with the engine (and once at start).
//!
//! An unreachable engine skips the round; nothing is dropped on an outage. The first round
//! after the engine comes back logs the recovery.

use crate::error::BackendError;
use crate::service::Service;
use gatehouse_lifecycle::RuntimeError;
use std::sync::Arc;
use std::time::Duration;

/// Runs until the process exits.
pub async fn run(service: Arc<Service>, every: Duration) {
    let mut engine_was_up = true;
    loop {
        match service.reconcile().await {
            Ok(report) => {
                if !engine_was_up {
                    tracing::info!("engine reachable again");
                }
                engine_was_up = true;
                if report.adopted + report.removed + report.refreshed > 0 {
                    tracing::info!(
                        adopted = report.adopted,
                        removed = report.removed,
                        refreshed = report.refreshed,
                        "reconciled store with engine"
                    );
                }
            }
            Err(BackendError::Runtime(e @ RuntimeError::Unavailable { .. })) => {
                if engine_was_up {
                    tracing::warn!(error = %e, "engine unreachable; serving reads from the store");
                }
                engine_was_up = false;
            }
            Err(e) => tracing::error!(error = %e, "reconciliation failed"),
        }
        tokio::time::sleep(if engine_was_up {
            every
        } else {
            every.min(Duration::from_secs(2))
        })
        .await;
    }
}
