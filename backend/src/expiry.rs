//! The expiry scheduler: deletes each sandbox at its `expiresAt`.
//!
//! It holds no timers of its own: it sleeps until the earliest expiry in the store (or
//! until an expiry changes), so renewals, deletes and restarts need no bookkeeping. When
//! the engine cannot carry out a deletion, it retries after `expiry.retry_seconds`.

use crate::service::Service;
use gatehouse_lifecycle::time;
use std::sync::Arc;
use std::time::Duration;

/// Longest sleep between checks, so clock jumps are noticed.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Runs until the process exits.
pub async fn run(service: Arc<Service>, retry: Duration) {
    loop {
        let mut failed = false;
        match service.store().due(time::now()).await {
            Ok(ids) => {
                for id in ids {
                    if let Err(e) = service.expire(&id).await {
                        tracing::warn!(sandbox.id = %id, error = %e, "expiry failed; will retry");
                        failed = true;
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read expiries");
                failed = true;
            }
        }
        let sleep = if failed {
            retry
        } else {
            match service.store().next_expiry().await {
                Ok(Some(at)) => (at - time::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(MAX_SLEEP),
                Ok(None) => MAX_SLEEP,
                Err(_) => retry,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = service.expiry_changed().notified() => {}
        }
    }
}
