//! [`StoreConfig`]: the gateway's `[store]` section, and [`StoreConfig::open`].
//!
//! ```toml
//! [store]
//! type = "sqlite"                  # the default; or "postgres"
//! path = "gatehouse.db"            # sqlite: relative to the config file's directory
//! # url_env = "GATEHOUSE_STORE_URL"  # postgres: the variable holding the URL (or `url`)
//! spool_dir = "audit-spool"        # events wait here while the store is unreachable
//! queue_capacity = 65536           # events held in memory before the writer
//! ```

use crate::error::StoreError;
use crate::postgres::PostgresStore;
use crate::sqlite::SqliteStore;
use crate::store::GovernanceStore;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// An embedded SQLite file (the default; needs nothing else).
    #[default]
    Sqlite,
    /// PostgreSQL (production).
    Postgres,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite` or `postgres`.
    #[serde(rename = "type")]
    pub kind: StoreKind,
    /// SQLite database file.
    pub path: PathBuf,
    /// PostgreSQL URL. Prefer `url_env`: a URL may hold a password.
    pub url: Option<String>,
    /// Environment variable holding the PostgreSQL URL.
    pub url_env: Option<String>,
    /// Directory of the audit spool file.
    pub spool_dir: PathBuf,
    /// Events queued in memory for the writer (at least 1).
    pub queue_capacity: usize,
    /// Largest batch the writer inserts in one transaction.
    pub batch_size: usize,
    /// How often the writer retries an unreachable store, milliseconds.
    pub retry_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Sqlite,
            path: PathBuf::from("gatehouse.db"),
            url: None,
            url_env: None,
            spool_dir: PathBuf::from("audit-spool"),
            queue_capacity: 65536,
            batch_size: 256,
            retry_ms: 500,
        }
    }
}

impl StoreConfig {
    /// Makes relative paths relative to `base` (the config file's directory).
    pub fn resolve_relative(&mut self, base: &Path) {
        if self.path.is_relative() {
            self.path = base.join(&self.path);
        }
        if self.spool_dir.is_relative() {
            self.spool_dir = base.join(&self.spool_dir);
        }
    }

    /// Checks the section; the error names the bad key (`store.…`).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.queue_capacity == 0 {
            return Err(("store.queue_capacity", "must be at least 1".into()));
        }
        if self.batch_size == 0 || self.batch_size > 10_000 {
            return Err(("store.batch_size", "must be between 1 and 10000".into()));
        }
        if self.retry_ms == 0 {
            return Err(("store.retry_ms", "must be at least 1".into()));
        }
        if self.kind == StoreKind::Postgres && self.url.is_none() && self.url_env.is_none() {
            return Err((
                "store.url",
                "type = \"postgres\" needs `url` or `url_env`".into(),
            ));
        }
        if self.kind == StoreKind::Sqlite && (self.url.is_some() || self.url_env.is_some()) {
            return Err(("store.url", "`url` needs type = \"postgres\"".into()));
        }
        Ok(())
    }

    /// The PostgreSQL URL (from `url`, else the `url_env` variable).
    pub(crate) fn postgres_url(&self) -> Result<String, StoreError> {
        if let Some(u) = &self.url {
            return Ok(u.clone());
        }
        let var = self.url_env.as_deref().unwrap_or("GATEHOUSE_STORE_URL");
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| StoreError::Invalid(format!("store.url_env: {var} is not set")))
    }

    /// Opens the signing-key store (`signing_keys`, shared by replicas) on the same
    /// database, with its own small pool. Migrations are applied by [`StoreConfig::open`]'s
    /// store ([`GovernanceStore::prepare`]).
    pub async fn open_signing_keys(
        &self,
    ) -> Result<Arc<dyn crate::signing_keys::SigningKeyStore>, StoreError> {
        Ok(match self.kind {
            StoreKind::Sqlite => Arc::new(SqliteStore::open(&self.path).await?),
            StoreKind::Postgres => Arc::new(PostgresStore::connect_lazy(&self.postgres_url()?)?),
        })
    }

    /// Opens the store. SQLite is opened and migrated now; PostgreSQL connects lazily
    /// (the durable writer migrates it once it answers).
    pub async fn open(&self) -> Result<Arc<dyn GovernanceStore>, StoreError> {
        Ok(self.open_handles().await?.governance)
    }

    /// Opens (creating its directory) and migrates the SQLite file.
    pub(crate) async fn open_sqlite(&self) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Spool {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        SqliteStore::open(&self.path).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        store: StoreConfig,
    }

    fn parse(s: &str) -> Result<StoreConfig, String> {
        let d: Doc = toml::from_str(s).map_err(|e| e.to_string())?;
        d.store.validate().map_err(|(k, m)| format!("{k}: {m}"))?;
        Ok(d.store)
    }

    #[test]
    fn sqlite_is_the_default_and_errors_name_the_key() {
        let c = parse("[store]\n").unwrap();
        assert_eq!(c.kind, StoreKind::Sqlite);
        let c = parse("[store]\ntype = \"postgres\"\nurl_env = \"X\"\n").unwrap();
        assert_eq!(c.kind, StoreKind::Postgres);
        assert!(parse("[store]\ntype = \"postgres\"\n")
            .unwrap_err()
            .contains("store.url"));
        assert!(parse("[store]\ntype = \"mysql\"\n")
            .unwrap_err()
            .contains("mysql"));
        assert!(parse("[store]\npaht = \"x\"\n")
            .unwrap_err()
            .contains("paht"));
        assert!(parse("[store]\nqueue_capacity = 0\n")
            .unwrap_err()
            .contains("store.queue_capacity"));
        let mut c = StoreConfig::default();
        c.resolve_relative(Path::new("/etc/gh"));
        assert_eq!(c.path, Path::new("/etc/gh/gatehouse.db"));
        assert_eq!(c.spool_dir, Path::new("/etc/gh/audit-spool"));
    }
}
