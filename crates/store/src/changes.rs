//! [`ChangeLog`]: one feed of changes every gateway replica follows to keep its caches
//! true.
//!
//! Rows of `change_log` carry a kind and an item, in commit order (`seq`). Most are written
//! by triggers in the same transaction as the change itself (a session deleted, a personal
//! key revoked, a binding edited); the gateway appends the rest ([`ChangeKind::Sandbox`]:
//! a sandbox deleted or its metadata changed through one replica). PostgreSQL sends
//! `NOTIFY gatehouse_changes` with every append, so followers wake at once; SQLite
//! followers poll. A follower that cannot read the log (restart, lost connection) reads on
//! from its last position when it can, or drops its caches when it has no position.

use crate::error::StoreError;
use std::time::Duration;

/// The PostgreSQL channel every append to the change log notifies.
pub const CHANGES_CHANNEL: &str = "gatehouse_changes";

/// What a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A session ended early; the item is the SHA-256 (hex) of its id.
    Session,
    /// Tokens of an IdP session are refused; the item is the `sid`.
    Sid,
    /// A personal key was revoked or changed; the item is its SHA-256 (hex).
    ApiKey,
    /// The RBAC bindings changed; no item.
    Bindings,
    /// A sandbox was deleted or its metadata changed; the item is its id.
    Sandbox,
}

impl ChangeKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Session => "session",
            ChangeKind::Sid => "sid",
            ChangeKind::ApiKey => "api_key",
            ChangeKind::Bindings => "bindings",
            ChangeKind::Sandbox => "sandbox",
        }
    }

    /// Parses [`ChangeKind::as_str`]'s output; `None` for a kind this version does not know
    /// (a newer replica wrote it: the follower then drops every cache).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "session" => ChangeKind::Session,
            "sid" => ChangeKind::Sid,
            "api_key" => ChangeKind::ApiKey,
            "bindings" => ChangeKind::Bindings,
            "sandbox" => ChangeKind::Sandbox,
            _ => return None,
        })
    }
}

/// One row of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Its position; later changes have larger ones.
    pub seq: i64,
    /// When, Unix milliseconds.
    pub at_ms: i64,
    /// What kind, as stored (see [`ChangeKind::parse`]).
    pub kind: String,
    /// What changed (a hash, a sid, a sandbox id; empty for bindings).
    pub item: String,
}

/// The change log. Implemented by [`crate::SqliteStore`] and [`crate::PostgresStore`].
#[async_trait::async_trait]
pub trait ChangeLog: Send + Sync + 'static {
    /// Appends a change (committed when this returns).
    async fn publish(&self, kind: ChangeKind, item: &str) -> Result<(), StoreError>;

    /// Changes after position `after`, oldest first, at most `limit`.
    async fn changes_after(&self, after: i64, limit: u32) -> Result<Vec<Change>, StoreError>;

    /// The position of the newest change (0 when the log is empty).
    async fn head(&self) -> Result<i64, StoreError>;

    /// Deletes changes older than `before_ms`; how many.
    async fn prune_changes(&self, before_ms: i64) -> Result<u64, StoreError>;

    /// Waits until a change may have been appended, at most `max`: PostgreSQL wakes on
    /// `NOTIFY gatehouse_changes`; SQLite sleeps `max` (callers poll).
    async fn wait_for_changes(&self, max: Duration);
}

/// Implements [`ChangeLog`] for `$store` (a `pool` field and a `wait_change` method).
macro_rules! change_sql {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl ChangeLog for $store {
            async fn publish(&self, kind: ChangeKind, item: &str) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO change_log (at_ms, kind, item) VALUES ($1, $2, $3)")
                    .bind(chrono::Utc::now().timestamp_millis())
                    .bind(kind.as_str())
                    .bind(item)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn changes_after(
                &self,
                after: i64,
                limit: u32,
            ) -> Result<Vec<Change>, StoreError> {
                let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(
                    "SELECT seq, at_ms, kind, item FROM change_log WHERE seq > $1 \
                     ORDER BY seq LIMIT $2",
                )
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(seq, at_ms, kind, item)| Change {
                        seq,
                        at_ms,
                        kind,
                        item,
                    })
                    .collect())
            }

            async fn head(&self) -> Result<i64, StoreError> {
                let (seq,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM change_log")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(seq.unwrap_or(0))
            }

            async fn prune_changes(&self, before_ms: i64) -> Result<u64, StoreError> {
                let r = sqlx::query("DELETE FROM change_log WHERE at_ms < $1")
                    .bind(before_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected())
            }

            async fn wait_for_changes(&self, max: Duration) {
                self.wait_change(max).await
            }
        }
    };
}

change_sql!(crate::SqliteStore);
change_sql!(crate::PostgresStore);
