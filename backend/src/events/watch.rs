//! While the gateway (or anyone) follows the event feed, statuses are refreshed from the
//! engine every `interval`, so a sandbox that starts, fails or stops on its own is
//! published within that time rather than at the next reconciliation. Nobody
//! following: no engine calls.

use crate::service::Service;
use gatehouse_lifecycle::query::ListQuery;
use std::sync::Arc;
use std::time::Duration;

/// How often statuses are refreshed while the feed has a subscriber.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// Runs until the process exits.
pub async fn run(service: Arc<Service>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        if !service.feed().has_subscribers() {
            continue;
        }
        if let Err(e) = service.list(&ListQuery::default()).await {
            tracing::debug!(error = %e, "status refresh for the event feed failed");
        }
    }
}
