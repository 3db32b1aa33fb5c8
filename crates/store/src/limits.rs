//! [`LimitsStores`]: the governance store's handles for idempotency keys and quotas,
//! opened from the same `[store]` section as the governance store (the same database,
//! the same migrations).

use crate::config::{StoreConfig, StoreKind};
use crate::error::StoreError;
use crate::idempotency::IdempotencyStore;
use crate::quotas::QuotaStore;
use crate::{PostgresStore, SqliteStore};
use std::sync::Arc;

/// The store behind the automation limits.
#[derive(Clone)]
pub struct LimitsStores {
    /// Idempotency records.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Quota overrides and the resource ledger.
    pub quotas: Arc<dyn QuotaStore>,
}

impl std::fmt::Debug for LimitsStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LimitsStores")
    }
}

impl LimitsStores {
    /// Both handles over one store.
    pub fn of<S: IdempotencyStore + QuotaStore + Clone>(store: S) -> Self {
        Self {
            idempotency: Arc::new(store.clone()),
            quotas: Arc::new(store),
        }
    }
}

impl StoreConfig {
    /// Opens the limits' handles (a pool of their own on the configured database; SQLite
    /// is migrated now, PostgreSQL lazily with the governance store).
    pub async fn open_limits(&self) -> Result<LimitsStores, StoreError> {
        Ok(match self.kind {
            StoreKind::Sqlite => LimitsStores::of(SqliteStore::open(&self.path).await?),
            StoreKind::Postgres => {
                LimitsStores::of(PostgresStore::connect_lazy(&self.postgres_url()?)?)
            }
        })
    }
}
