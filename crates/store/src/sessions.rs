//! [`SessionStore`]: login sessions shared by every gateway replica.
//!
//! A session is stored under the SHA-256 (hex) of its cookie value, never the value
//! itself, so a copy of the table lets no one sign in. Ending a session (logout,
//! back-channel logout) deletes its row; a trigger then appends the change to the change
//! log ([`crate::ChangeLog`]) in the same transaction, so every replica drops its cached
//! copy and refuses tokens carrying its IdP session id.

use crate::error::StoreError;

/// One login session as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// SHA-256 (hex) of the cookie value.
    pub id_hash: String,
    /// Who.
    pub subject: String,
    /// Their team.
    pub team: Option<String>,
    /// Their groups.
    pub groups: Vec<String>,
    /// The IdP's session id (`sid`), for back-channel logout.
    pub sid: Option<String>,
    /// The ID token, as `id_token_hint` at logout.
    pub id_token: Option<String>,
    /// Login time, Unix milliseconds.
    pub created_ms: i64,
    /// End of its absolute lifetime, Unix milliseconds.
    pub expires_ms: i64,
    /// Last recorded use, Unix milliseconds (written at most once a minute).
    pub seen_ms: i64,
}

impl std::fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSession")
            .field("subject", &self.subject)
            .field("sid", &self.sid)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}

/// Sessions in the governance store. Implemented by [`crate::SqliteStore`] and
/// [`crate::PostgresStore`] (conformance suite: `tests/e2e/store_conformance.rs`).
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session (an existing row with the same hash is replaced).
    async fn put_session(&self, s: &StoredSession) -> Result<(), StoreError>;

    /// The session with this hash, whatever its times (the caller checks them).
    async fn session(&self, id_hash: &str) -> Result<Option<StoredSession>, StoreError>;

    /// Deletes a session; the row it had.
    async fn delete_session(&self, id_hash: &str) -> Result<Option<StoredSession>, StoreError>;

    /// Deletes every session of IdP session `sid`, or (when `sid` is `None`) of `subject`;
    /// the rows deleted.
    async fn delete_sessions_matching(
        &self,
        sid: Option<&str>,
        subject: Option<&str>,
    ) -> Result<Vec<StoredSession>, StoreError>;

    /// Records a use at `now_ms` (never moves `seen_ms` back).
    async fn touch_session(&self, id_hash: &str, now_ms: i64) -> Result<(), StoreError>;

    /// Deletes sessions past their absolute lifetime (no change is logged: every replica
    /// expires them by itself); how many. A session idle too long stays until then, and
    /// readers refuse it by `seen_ms`.
    async fn purge_sessions(&self, now_ms: i64) -> Result<u64, StoreError>;
}

pub(crate) const SESSION_COLUMNS: &str =
    "id_hash, subject, team, groups_json, sid, id_token, created_ms, expires_ms, seen_ms";

/// Reads one `sessions` row (any backend).
pub(crate) fn session_row<R>(r: &R) -> Result<StoredSession, StoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let groups: String = r.try_get("groups_json")?;
    Ok(StoredSession {
        id_hash: r.try_get("id_hash")?,
        subject: r.try_get("subject")?,
        team: r.try_get("team")?,
        groups: serde_json::from_str(&groups)
            .map_err(|e| StoreError::Corrupt(format!("session groups: {e}")))?,
        sid: r.try_get("sid")?,
        id_token: r.try_get("id_token")?,
        created_ms: r.try_get("created_ms")?,
        expires_ms: r.try_get("expires_ms")?,
        seen_ms: r.try_get("seen_ms")?,
    })
}

/// Implements [`SessionStore`] for `$store` (a struct with a `pool: sqlx::Pool<_>` field).
macro_rules! session_sql {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl SessionStore for $store {
            async fn put_session(&self, s: &StoredSession) -> Result<(), StoreError> {
                let groups = serde_json::to_string(&s.groups)
                    .map_err(|e| StoreError::Invalid(format!("session groups: {e}")))?;
                sqlx::query(
                    "INSERT INTO sessions (id_hash, subject, team, groups_json, sid, id_token, \
                     created_ms, expires_ms, seen_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (id_hash) DO UPDATE SET subject = excluded.subject, \
                     team = excluded.team, groups_json = excluded.groups_json, sid = excluded.sid, \
                     id_token = excluded.id_token, created_ms = excluded.created_ms, \
                     expires_ms = excluded.expires_ms, seen_ms = excluded.seen_ms",
                )
                .bind(&s.id_hash)
                .bind(&s.subject)
                .bind(&s.team)
                .bind(groups)
                .bind(&s.sid)
                .bind(&s.id_token)
                .bind(s.created_ms)
                .bind(s.expires_ms)
                .bind(s.seen_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn session(&self, id_hash: &str) -> Result<Option<StoredSession>, StoreError> {
                let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1");
                let row = sqlx::query(&sql)
                    .bind(id_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(session_row).transpose()
            }

            async fn delete_session(
                &self,
                id_hash: &str,
            ) -> Result<Option<StoredSession>, StoreError> {
                let sql =
                    format!("DELETE FROM sessions WHERE id_hash = $1 RETURNING {SESSION_COLUMNS}");
                let row = sqlx::query(&sql)
                    .bind(id_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(session_row).transpose()
            }

            async fn delete_sessions_matching(
                &self,
                sid: Option<&str>,
                subject: Option<&str>,
            ) -> Result<Vec<StoredSession>, StoreError> {
                let (column, value) = match (sid, subject) {
                    (Some(sid), _) => ("sid", sid),
                    (None, Some(sub)) => ("subject", sub),
                    (None, None) => return Ok(Vec::new()),
                };
                let sql =
                    format!("DELETE FROM sessions WHERE {column} = $1 RETURNING {SESSION_COLUMNS}");
                let rows = sqlx::query(&sql).bind(value).fetch_all(&self.pool).await?;
                rows.iter().map(session_row).collect()
            }

            async fn touch_session(&self, id_hash: &str, now_ms: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE sessions SET seen_ms = $1 WHERE id_hash = $2 AND seen_ms < $1")
                    .bind(now_ms)
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn purge_sessions(&self, now_ms: i64) -> Result<u64, StoreError> {
                let r = sqlx::query("DELETE FROM sessions WHERE expires_ms <= $1")
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected())
            }
        }
    };
}

session_sql!(crate::SqliteStore);
session_sql!(crate::PostgresStore);
