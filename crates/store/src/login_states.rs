//! [`LoginStateStore`]: sign-ins in progress, shared by every gateway replica, so the IdP
//! may send a browser back to any of them.
//!
//! A row is keyed by the SHA-256 (hex) of the OAuth `state`, which only the browser's
//! login cookie and the IdP redirect carry; it is taken (deleted and returned) exactly
//! once, by the callback, and ignored after its expiry.

use crate::error::StoreError;

/// One sign-in in progress.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredLoginState {
    /// The PKCE code verifier.
    pub verifier: String,
    /// The ID token nonce.
    pub nonce: String,
    /// Where the browser goes after the sign-in.
    pub return_to: String,
    /// When it expires, Unix milliseconds.
    pub expires_ms: i64,
}

impl std::fmt::Debug for StoredLoginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredLoginState")
            .field("return_to", &self.return_to)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}

/// Sign-ins in progress. Implemented by [`crate::SqliteStore`] and
/// [`crate::PostgresStore`] over the same SQL.
#[async_trait::async_trait]
pub trait LoginStateStore: Send + Sync + 'static {
    /// Stores a sign-in under `state_hash` (and prunes expired ones).
    async fn put_login_state(
        &self,
        state_hash: &str,
        s: &StoredLoginState,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Takes the sign-in under `state_hash` if it has not expired at `now_ms`: at most
    /// one caller ever gets it.
    async fn take_login_state(
        &self,
        state_hash: &str,
        now_ms: i64,
    ) -> Result<Option<StoredLoginState>, StoreError>;
}

type Row = (String, String, String, i64);

macro_rules! login_state_sql {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl LoginStateStore for $store {
            async fn put_login_state(
                &self,
                state_hash: &str,
                s: &StoredLoginState,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM login_states WHERE expires_ms <= $1")
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO login_states (state_hash, verifier, nonce, return_to, \
                     expires_ms) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(state_hash)
                .bind(&s.verifier)
                .bind(&s.nonce)
                .bind(&s.return_to)
                .bind(s.expires_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn take_login_state(
                &self,
                state_hash: &str,
                now_ms: i64,
            ) -> Result<Option<StoredLoginState>, StoreError> {
                let row: Option<Row> = sqlx::query_as(
                    "DELETE FROM login_states WHERE state_hash = $1 \
                     RETURNING verifier, nonce, return_to, expires_ms",
                )
                .bind(state_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.filter(|r| r.3 > now_ms).map(|r| StoredLoginState {
                    verifier: r.0,
                    nonce: r.1,
                    return_to: r.2,
                    expires_ms: r.3,
                }))
            }
        }
    };
}

login_state_sql!(crate::SqliteStore);
login_state_sql!(crate::PostgresStore);
