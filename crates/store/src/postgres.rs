//! [`PostgresStore`]: the production store.

use crate::error::StoreError;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The governance store in PostgreSQL (15 and later).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    listener: Arc<Mutex<Option<PgListener>>>,
}

/// The channel every change notifies (binding changes included, since migration 6).
pub const BINDINGS_CHANNEL: &str = crate::changes::CHANGES_CHANNEL;

impl PostgresStore {
    /// A store for `url` (`postgres://user@host:port/db`). Connects lazily, so the gateway
    /// starts while the database is down; operations fail fast (2 s) until it is back.
    pub fn connect_lazy(url: &str) -> Result<Self, StoreError> {
        let opts = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(opts);
        Ok(Self {
            pool,
            listener: Arc::new(Mutex::new(None)),
        })
    }

    /// Applies the embedded migrations (`migrations/postgres`) not applied yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    /// Waits for `NOTIFY gatehouse_changes`, at most `max`. The listening connection is
    /// opened on first use and again after it breaks; without one, this sleeps `max`.
    pub(crate) async fn wait_change(&self, max: Duration) {
        let deadline = tokio::time::Instant::now() + max;
        let mut guard = self.listener.lock().await;
        if guard.is_none() {
            match PgListener::connect_with(&self.pool).await {
                Ok(mut l) => match l.listen(BINDINGS_CHANNEL).await {
                    Ok(()) => *guard = Some(l),
                    Err(e) => tracing::debug!(error = %e, "cannot LISTEN for binding changes"),
                },
                Err(e) => tracing::debug!(error = %e, "cannot LISTEN for binding changes"),
            }
        }
        if let Some(l) = guard.as_mut() {
            match tokio::time::timeout_at(deadline, l.try_recv()).await {
                Ok(Ok(Some(_))) | Err(_) => return,
                // The connection broke: open a new one next time.
                Ok(Ok(None)) | Ok(Err(_)) => *guard = None,
            }
        }
        drop(guard);
        tokio::time::sleep_until(deadline).await;
    }

    /// The pool, e.g. to `LISTEN` for binding changes.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

crate::sql::governance_sql!(PostgresStore, sqlx::Postgres, "postgres");
