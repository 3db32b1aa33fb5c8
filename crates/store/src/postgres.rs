//! [`PostgresStore`]: the production store.

use crate::error::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

/// The governance store in PostgreSQL (15 and later).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
}

impl PostgresStore {
    /// A store for `url` (`postgres://user@host:port/db`). Connects lazily, so the gateway
    /// starts while the database is down; operations fail fast (2 s) until it is back.
    pub fn connect_lazy(url: &str) -> Result<Self, StoreError> {
        let opts = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(opts);
        Ok(Self { pool })
    }

    /// Applies the embedded migrations (`migrations/postgres`) not applied yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    /// The pool, e.g. to `LISTEN` for binding changes.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

crate::sql::governance_sql!(PostgresStore, sqlx::Postgres, "postgres");
