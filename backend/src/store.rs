//! The embedded SQLite store: the durable record of every sandbox.
//!
//! The engine is the truth about whether a container runs; the store is the truth about
//! everything the engine cannot hold or change later: expiry (renewals), metadata
//! (patches), the last observed status (served while the engine is down). Environment
//! variables and registry credentials are never stored.

use chrono::{DateTime, Utc};
use gatehouse_lifecycle::{
    time, ImageSpec, PlatformSpec, Sandbox, SandboxState, SandboxStatus, StringMap,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("store: {0}")]
    Db(#[from] sqlx::Error),
    /// A row could not be decoded.
    #[error("store: corrupt row for sandbox {id}: {detail}")]
    Corrupt {
        /// Sandbox id.
        id: String,
        /// What was wrong.
        detail: String,
    },
    /// The database directory could not be created.
    #[error("store: cannot create {path}: {source}")]
    Dir {
        /// Directory.
        path: String,
        /// I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// One sandbox as persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Sandbox id.
    pub id: String,
    /// Image reference.
    pub image: String,
    /// Entry process.
    pub entrypoint: Vec<String>,
    /// User metadata.
    pub metadata: StringMap,
    /// Extensions given at create.
    pub extensions: Option<StringMap>,
    /// Platform constraint.
    pub platform: Option<PlatformSpec>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Expiry; `None` for manual cleanup.
    pub expires_at: Option<DateTime<Utc>>,
    /// Last observed status.
    pub status: SandboxStatus,
    /// Access token of the sandbox's in-sandbox agent (execd); held only here.
    pub execd_token: Option<AgentToken>,
}

/// The per-sandbox execd access token. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentToken(String);

impl AgentToken {
    /// A new random token: 32 bytes from the OS, hex-encoded.
    pub fn generate() -> std::io::Result<Self> {
        use std::io::Read;
        let mut b = [0u8; 32];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
        Ok(Self(b.iter().map(|x| format!("{x:02x}")).collect()))
    }

    /// The token's value, for the agent and the `X-EXECD-ACCESS-TOKEN` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for AgentToken {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl std::fmt::Debug for AgentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentToken(<redacted>)")
    }
}

impl Record {
    /// The API view of this record.
    pub fn to_sandbox(&self) -> Sandbox {
        Sandbox {
            id: self.id.clone(),
            image: Some(ImageSpec {
                uri: self.image.clone(),
                auth: None,
            }),
            platform: self.platform.clone(),
            status: self.status.clone(),
            metadata: self.metadata.clone(),
            entrypoint: self.entrypoint.clone(),
            extensions: self.extensions.clone(),
            expires_at: self.expires_at,
            created_at: self.created_at,
        }
    }
}

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sandboxes (
    id                 TEXT PRIMARY KEY NOT NULL,
    image              TEXT NOT NULL,
    entrypoint         TEXT NOT NULL,
    metadata           TEXT NOT NULL,
    extensions         TEXT,
    platform           TEXT,
    created_at         TEXT NOT NULL,
    expires_at         TEXT,
    state              TEXT NOT NULL,
    reason             TEXT,
    message            TEXT,
    last_transition_at TEXT,
    execd_token        TEXT
);
CREATE INDEX IF NOT EXISTS sandboxes_expires_at ON sandboxes (expires_at) WHERE expires_at IS NOT NULL;
";

/// Columns added after the first schema, with their definitions (additive migrations:
/// an older store gains them on open; its rows get NULL).
const ADDED_COLUMNS: &[(&str, &str)] = &[("execd_token", "TEXT")];

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn ts(t: &Option<DateTime<Utc>>) -> Option<String> {
    t.as_ref().map(time::format)
}

impl Store {
    /// Opens (creating when missing) the database at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(5));
        // Schema and migrations on one connection first, so no pooled connection ever
        // holds a statement prepared against the old table.
        {
            let setup = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts.clone())
                .await?;
            sqlx::raw_sql(SCHEMA).execute(&setup).await?;
            let present: Vec<(String,)> =
                sqlx::query_as("SELECT name FROM pragma_table_info('sandboxes')")
                    .fetch_all(&setup)
                    .await?;
            for (col, def) in ADDED_COLUMNS {
                if !present.iter().any(|(n,)| n == col) {
                    sqlx::raw_sql(&format!("ALTER TABLE sandboxes ADD COLUMN {col} {def}"))
                        .execute(&setup)
                        .await?;
                }
            }
            setup.close().await;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        Ok(Self { pool })
    }

    /// Inserts or replaces a record (create wins over an adoption racing with it).
    pub async fn upsert(&self, r: &Record) -> Result<(), StoreError> {
        self.insert(r, "INSERT OR REPLACE").await.map(|_| ())
    }

    /// Inserts a record unless one with the same id exists (adoption); whether it did.
    pub async fn insert_if_absent(&self, r: &Record) -> Result<bool, StoreError> {
        self.insert(r, "INSERT OR IGNORE").await
    }

    async fn insert(&self, r: &Record, verb: &str) -> Result<bool, StoreError> {
        let sql = format!(
            "{verb} INTO sandboxes (id, image, entrypoint, metadata, extensions, platform, created_at, \
             expires_at, state, reason, message, last_transition_at, execd_token) \
             VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
        );
        let done = sqlx::query(&sql)
            .bind(&r.id)
            .bind(&r.image)
            .bind(json(&r.entrypoint))
            .bind(json(&r.metadata))
            .bind(r.extensions.as_ref().map(json))
            .bind(r.platform.as_ref().map(json))
            .bind(time::format(&r.created_at))
            .bind(ts(&r.expires_at))
            .bind(r.status.state.as_str())
            .bind(&r.status.reason)
            .bind(&r.status.message)
            .bind(ts(&r.status.last_transition_at))
            .bind(r.execd_token.as_ref().map(AgentToken::expose))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// One record.
    pub async fn get(&self, id: &str) -> Result<Option<Record>, StoreError> {
        let row = sqlx::query("SELECT * FROM sandboxes WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decode(&r)).transpose()
    }

    /// Every record.
    pub async fn all(&self) -> Result<Vec<Record>, StoreError> {
        let rows = sqlx::query("SELECT * FROM sandboxes")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode).collect()
    }

    /// Removes a record; `true` when one was removed.
    pub async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM sandboxes WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Stores a newly observed status.
    pub async fn set_status(&self, id: &str, s: &SandboxStatus) -> Result<(), StoreError> {
        sqlx::query("UPDATE sandboxes SET state = ?, reason = ?, message = ?, last_transition_at = ? WHERE id = ?")
            .bind(s.state.as_str())
            .bind(&s.reason)
            .bind(&s.message)
            .bind(ts(&s.last_transition_at))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets a new expiry; `false` when the sandbox is unknown.
    pub async fn set_expiry(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE sandboxes SET expires_at = ? WHERE id = ?")
            .bind(time::format(&at))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Replaces the metadata; `false` when the sandbox is unknown.
    pub async fn set_metadata(&self, id: &str, md: &StringMap) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE sandboxes SET metadata = ? WHERE id = ?")
            .bind(json(md))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The earliest expiry of any sandbox.
    pub async fn next_expiry(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT MIN(expires_at) FROM sandboxes WHERE expires_at IS NOT NULL")
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|(t,)| t).and_then(|t| time::parse(&t).ok()))
    }

    /// Ids of sandboxes whose expiry is at or before `now`.
    pub async fn due(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        // Timestamps share one fixed-width format, so text order is time order.
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM sandboxes WHERE expires_at IS NOT NULL AND expires_at <= ?",
        )
        .bind(time::format(&now))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}

fn decode(row: &SqliteRow) -> Result<Record, StoreError> {
    let id: String = row.try_get("id")?;
    let corrupt = |detail: String| StoreError::Corrupt {
        id: id.clone(),
        detail,
    };
    let parse_ts = |col: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        let v: Option<String> = row.try_get(col)?;
        v.map(|s| time::parse(&s).map_err(|e| corrupt(format!("{col}: {e}"))))
            .transpose()
    };
    let parse_json = |col: &str| -> Result<Option<serde_json::Value>, StoreError> {
        let v: Option<String> = row.try_get(col)?;
        v.map(|s| serde_json::from_str(&s).map_err(|e| corrupt(format!("{col}: {e}"))))
            .transpose()
    };
    fn from<T: serde::de::DeserializeOwned>(
        v: Option<serde_json::Value>,
        col: &str,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        v.filter(|v| !v.is_null())
            .map(|v| {
                serde_json::from_value(v).map_err(|e| StoreError::Corrupt {
                    id: id.to_string(),
                    detail: format!("{col}: {e}"),
                })
            })
            .transpose()
    }
    let state: String = row.try_get("state")?;
    Ok(Record {
        image: row.try_get("image")?,
        entrypoint: from(parse_json("entrypoint")?, "entrypoint", &id)?.unwrap_or_default(),
        metadata: from(parse_json("metadata")?, "metadata", &id)?.unwrap_or_default(),
        extensions: from(parse_json("extensions")?, "extensions", &id)?,
        platform: from(parse_json("platform")?, "platform", &id)?,
        created_at: parse_ts("created_at")?.ok_or_else(|| corrupt("created_at is null".into()))?,
        expires_at: parse_ts("expires_at")?,
        status: SandboxStatus {
            state: SandboxState::from_str(&state).unwrap_or(SandboxState::Unknown),
            reason: row.try_get("reason")?,
            message: row.try_get("message")?,
            last_transition_at: parse_ts("last_transition_at")?,
        },
        execd_token: row
            .try_get::<Option<String>, _>("execd_token")?
            .map(AgentToken::from),
        id: id.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, expires_in: Option<i64>) -> Record {
        let now = time::now();
        Record {
            id: id.into(),
            image: "img".into(),
            entrypoint: vec!["sh".into()],
            metadata: StringMap::from([("k".into(), "v".into())]),
            extensions: None,
            platform: None,
            created_at: now,
            expires_at: expires_in.map(|s| now + chrono::Duration::seconds(s)),
            status: SandboxStatus {
                state: SandboxState::Running,
                reason: Some("CONTAINER_RUNNING".into()),
                message: None,
                last_transition_at: Some(now),
            },
            execd_token: Some(AgentToken::from("t0ken".to_string())),
        }
    }

    #[tokio::test]
    async fn round_trip_and_expiry_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db/backend.db");
        let s = Store::open(&path).await.unwrap();
        let a = rec("a", Some(-1));
        let b = rec("b", Some(3600));
        s.upsert(&a).await.unwrap();
        s.upsert(&b).await.unwrap();
        s.set_metadata("b", &StringMap::from([("x".into(), "y".into())]))
            .await
            .unwrap();
        drop(s);
        let s = Store::open(&path).await.unwrap();
        assert_eq!(s.get("a").await.unwrap().unwrap(), a);
        assert_eq!(
            s.get("b")
                .await
                .unwrap()
                .unwrap()
                .metadata
                .get("x")
                .unwrap(),
            "y"
        );
        assert_eq!(s.due(time::now()).await.unwrap(), vec!["a".to_string()]);
        assert_eq!(s.next_expiry().await.unwrap(), a.expires_at);
        assert!(s.delete("a").await.unwrap());
        assert!(!s.delete("a").await.unwrap());
    }

    #[tokio::test]
    async fn an_old_store_gains_the_token_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let opts = SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true);
            let pool = SqlitePoolOptions::new().connect_with(opts).await.unwrap();
            let old_schema = SCHEMA.replace(",\n    execd_token        TEXT", "");
            assert!(!old_schema.contains("execd_token"));
            sqlx::raw_sql(&old_schema).execute(&pool).await.unwrap();
            sqlx::raw_sql(
                "INSERT INTO sandboxes (id, image, entrypoint, metadata, created_at, state) \
                 VALUES ('old', 'img', '[\"sh\"]', '{}', '2026-01-01T00:00:00Z', 'Running')",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let s = Store::open(&path).await.unwrap();
        let old = s.get("old").await.unwrap().unwrap();
        assert_eq!(old.execd_token, None);
        let r = rec("new", None);
        s.upsert(&r).await.unwrap();
        assert_eq!(s.get("new").await.unwrap().unwrap(), r);
        assert_eq!(
            format!("{:?}", r.execd_token),
            "Some(AgentToken(<redacted>))"
        );
        let t = AgentToken::generate().unwrap();
        assert_eq!(t.expose().len(), 64);
        assert_ne!(t, AgentToken::generate().unwrap());
    }

    #[tokio::test]
    async fn adoption_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("x.db")).await.unwrap();
        let mut a = rec("a", None);
        s.upsert(&a).await.unwrap();
        a.image = "other".into();
        s.insert_if_absent(&a).await.unwrap();
        assert_eq!(s.get("a").await.unwrap().unwrap().image, "img");
    }
}
