//! [`QuotaStore`]: per-team quota overrides and the resource ledger of created sandboxes.
//!
//! Quotas are counted from the backend's own list of live sandboxes (so they hold across
//! gateway replicas and after deletes); the backend's list does not show a sandbox's
//! `resourceLimits`, so the gateway records them here when a create succeeds and sums
//! the rows of the sandboxes that are still live.

use crate::error::StoreError;
use serde::{Deserialize, Serialize};

/// Limits of one team or user; `None` is "no limit".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QuotaLimits {
    /// Most live sandboxes.
    pub max_sandboxes: Option<u64>,
    /// Most CPU over all live sandboxes, millicores.
    pub max_cpu_millis: Option<u64>,
    /// Most memory over all live sandboxes, bytes.
    pub max_memory_bytes: Option<u64>,
    /// Longest `timeout` a create may ask for, seconds.
    pub max_timeout_seconds: Option<u64>,
}

/// A team's stored override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamQuota {
    /// The team.
    pub team: String,
    /// Its limits (each replaces the configured default when set).
    pub limits: QuotaLimits,
    /// Who set it.
    pub updated_by: String,
    /// When, Unix milliseconds.
    pub updated_ms: i64,
}

/// What a created sandbox holds, as the gateway recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The sandbox.
    pub sandbox_id: String,
    /// Its team, when scoped to one.
    pub team: Option<String>,
    /// Its owner.
    pub owner: String,
    /// CPU limit, millicores (0 when the create named none).
    pub cpu_millis: u64,
    /// Memory limit, bytes (0 when the create named none).
    pub memory_bytes: u64,
    /// When it was created, Unix milliseconds.
    pub created_ms: i64,
}

/// The lock on one team's (or user's) quota, held while a create is counted and made so
/// that the creates of one team are admitted one at a time by every replica sharing the
/// store. Released when dropped (the PostgreSQL transaction holding it rolls back).
pub struct QuotaLock {
    _held: Option<std::sync::Mutex<Box<dyn Send>>>,
}

impl std::fmt::Debug for QuotaLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaLock")
            .field("shared", &self._held.is_some())
            .finish()
    }
}

impl QuotaLock {
    /// No lock beyond the gateway's own: a single-node store (SQLite) serves one gateway.
    pub fn local() -> Self {
        Self { _held: None }
    }
}

impl crate::SqliteStore {
    async fn quota_lock(&self, _key: &str) -> Result<QuotaLock, StoreError> {
        Ok(QuotaLock::local())
    }
}

impl crate::PostgresStore {
    /// A transaction-scoped advisory lock on `key` (waiting at most 30 s for it).
    async fn quota_lock(&self, key: &str) -> Result<QuotaLock, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL lock_timeout = '30s'")
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(&mut *tx)
            .await?;
        Ok(QuotaLock {
            _held: Some(std::sync::Mutex::new(Box::new(tx))),
        })
    }
}

/// Quota overrides and the resource ledger. Implemented by [`crate::SqliteStore`] and
/// [`crate::PostgresStore`] over the same SQL.
#[async_trait::async_trait]
pub trait QuotaStore: Send + Sync + 'static {
    /// The override of `team`, if any.
    async fn team_quota(&self, team: &str) -> Result<Option<TeamQuota>, StoreError>;

    /// Creates or replaces the override of `q.team`.
    async fn put_team_quota(&self, q: &TeamQuota) -> Result<(), StoreError>;

    /// Deletes the override of `team`; whether there was one.
    async fn delete_team_quota(&self, team: &str) -> Result<bool, StoreError>;

    /// Records a created sandbox (replacing a row of the same id).
    async fn record_sandbox(&self, e: &LedgerEntry) -> Result<(), StoreError>;

    /// The ledger rows of `team` (or, when `team` is `None`, of `owner` without a team).
    async fn ledger(&self, team: Option<&str>, owner: &str)
        -> Result<Vec<LedgerEntry>, StoreError>;

    /// Forgets ledger rows of sandboxes that are gone.
    async fn forget_sandboxes(&self, ids: &[String]) -> Result<(), StoreError>;

    /// Takes the quota lock of `key` (a team or an owner), waiting for the replica that
    /// holds it; held until the returned value is dropped.
    async fn lock_quota(&self, key: &str) -> Result<QuotaLock, StoreError>;
}

fn to_i64(v: Option<u64>) -> Option<i64> {
    v.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

fn to_u64(v: Option<i64>) -> Option<u64> {
    v.map(|n| u64::try_from(n).unwrap_or(0))
}

type QuotaRow = (
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    String,
    i64,
);
type LedgerRow = (String, Option<String>, String, i64, i64, i64);

fn quota_row(r: QuotaRow) -> TeamQuota {
    TeamQuota {
        team: r.0,
        limits: QuotaLimits {
            max_sandboxes: to_u64(r.1),
            max_cpu_millis: to_u64(r.2),
            max_memory_bytes: to_u64(r.3),
            max_timeout_seconds: to_u64(r.4),
        },
        updated_by: r.5,
        updated_ms: r.6,
    }
}

fn ledger_row(r: LedgerRow) -> LedgerEntry {
    LedgerEntry {
        sandbox_id: r.0,
        team: r.1,
        owner: r.2,
        cpu_millis: u64::try_from(r.3).unwrap_or(0),
        memory_bytes: u64::try_from(r.4).unwrap_or(0),
        created_ms: r.5,
    }
}

macro_rules! quota_sql {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl QuotaStore for $store {
            async fn team_quota(&self, team: &str) -> Result<Option<TeamQuota>, StoreError> {
                let row: Option<QuotaRow> = sqlx::query_as(
                    "SELECT team, max_sandboxes, max_cpu_millis, max_memory_bytes, \
                     max_timeout_seconds, updated_by, updated_ms FROM team_quotas WHERE team = $1",
                )
                .bind(team)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(quota_row))
            }

            async fn put_team_quota(&self, q: &TeamQuota) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO team_quotas (team, max_sandboxes, max_cpu_millis, \
                     max_memory_bytes, max_timeout_seconds, updated_by, updated_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (team) DO UPDATE SET \
                     max_sandboxes = excluded.max_sandboxes, \
                     max_cpu_millis = excluded.max_cpu_millis, \
                     max_memory_bytes = excluded.max_memory_bytes, \
                     max_timeout_seconds = excluded.max_timeout_seconds, \
                     updated_by = excluded.updated_by, updated_ms = excluded.updated_ms",
                )
                .bind(&q.team)
                .bind(to_i64(q.limits.max_sandboxes))
                .bind(to_i64(q.limits.max_cpu_millis))
                .bind(to_i64(q.limits.max_memory_bytes))
                .bind(to_i64(q.limits.max_timeout_seconds))
                .bind(&q.updated_by)
                .bind(q.updated_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_team_quota(&self, team: &str) -> Result<bool, StoreError> {
                let r = sqlx::query("DELETE FROM team_quotas WHERE team = $1")
                    .bind(team)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected() > 0)
            }

            async fn record_sandbox(&self, e: &LedgerEntry) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO quota_ledger (sandbox_id, team, owner, cpu_millis, \
                     memory_bytes, created_ms) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (sandbox_id) DO UPDATE SET team = excluded.team, \
                     owner = excluded.owner, cpu_millis = excluded.cpu_millis, \
                     memory_bytes = excluded.memory_bytes, created_ms = excluded.created_ms",
                )
                .bind(&e.sandbox_id)
                .bind(&e.team)
                .bind(&e.owner)
                .bind(i64::try_from(e.cpu_millis).unwrap_or(i64::MAX))
                .bind(i64::try_from(e.memory_bytes).unwrap_or(i64::MAX))
                .bind(e.created_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn ledger(
                &self,
                team: Option<&str>,
                owner: &str,
            ) -> Result<Vec<LedgerEntry>, StoreError> {
                const COLS: &str =
                    "SELECT sandbox_id, team, owner, cpu_millis, memory_bytes, created_ms \
                     FROM quota_ledger";
                let rows: Vec<LedgerRow> = match team {
                    Some(t) => {
                        sqlx::query_as(&format!("{COLS} WHERE team = $1 ORDER BY sandbox_id"))
                            .bind(t)
                            .fetch_all(&self.pool)
                            .await?
                    }
                    None => {
                        sqlx::query_as(&format!(
                            "{COLS} WHERE team IS NULL AND owner = $1 ORDER BY sandbox_id"
                        ))
                        .bind(owner)
                        .fetch_all(&self.pool)
                        .await?
                    }
                };
                Ok(rows.into_iter().map(ledger_row).collect())
            }

            async fn forget_sandboxes(&self, ids: &[String]) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                for id in ids {
                    sqlx::query("DELETE FROM quota_ledger WHERE sandbox_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn lock_quota(&self, key: &str) -> Result<QuotaLock, StoreError> {
                self.quota_lock(key).await
            }
        }
    };
}

quota_sql!(crate::SqliteStore);
quota_sql!(crate::PostgresStore);
