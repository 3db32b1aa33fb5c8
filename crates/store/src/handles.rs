//! [`StoreHandles`]: one opened store seen through each of its traits.

use crate::changes::ChangeLog;
use crate::config::{StoreConfig, StoreKind};
use crate::error::StoreError;
use crate::login_states::LoginStateStore;
use crate::postgres::PostgresStore;
use crate::sessions::SessionStore;
use crate::sqlite::SqliteStore;
use crate::store::GovernanceStore;
use std::sync::Arc;

/// The same database (one pool) as the governance store, the session store and the
/// change log.
#[derive(Clone)]
pub struct StoreHandles {
    /// Audit, bindings, personal keys.
    pub governance: Arc<dyn GovernanceStore>,
    /// Login sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// The change feed.
    pub changes: Arc<dyn ChangeLog>,
    /// Sign-ins in progress.
    pub login_states: Arc<dyn LoginStateStore>,
}

impl std::fmt::Debug for StoreHandles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandles")
            .field("kind", &self.governance.kind())
            .finish()
    }
}

impl StoreHandles {
    /// Handles over one SQLite store.
    pub fn sqlite(s: SqliteStore) -> Self {
        Self {
            governance: Arc::new(s.clone()),
            sessions: Arc::new(s.clone()),
            login_states: Arc::new(s.clone()),
            changes: Arc::new(s),
        }
    }

    /// Handles over one PostgreSQL store.
    pub fn postgres(s: PostgresStore) -> Self {
        Self {
            governance: Arc::new(s.clone()),
            sessions: Arc::new(s.clone()),
            login_states: Arc::new(s.clone()),
            changes: Arc::new(s),
        }
    }
}

impl StoreConfig {
    /// Opens the store as [`StoreConfig::open`] does, with every handle.
    pub async fn open_handles(&self) -> Result<StoreHandles, StoreError> {
        Ok(match self.kind {
            StoreKind::Sqlite => StoreHandles::sqlite(self.open_sqlite().await?),
            StoreKind::Postgres => {
                StoreHandles::postgres(PostgresStore::connect_lazy(&self.postgres_url()?)?)
            }
        })
    }
}
