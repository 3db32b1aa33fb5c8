//! [`SessionBackend`]: where sessions live beyond this process, so every gateway replica
//! knows every session.
//!
//! This crate does not know the governance store; the gateway implements this trait with
//! it. A [`super::SessionStore`] without a backend keeps sessions in memory only (one
//! gateway). With one, the in-memory cache stays in front: a warm cache answers without a
//! round trip, a miss reads the backend, and ending a session deletes it there (which tells
//! the other replicas).

use async_trait::async_trait;

/// A session as the backend keeps it (the key is the SHA-256, hex, of the cookie value).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredLogin {
    /// Subject.
    pub subject: String,
    /// Team.
    pub team: Option<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// The IdP's session id.
    pub sid: Option<String>,
    /// The ID token (for `id_token_hint`).
    pub id_token: Option<String>,
    /// Login time, Unix milliseconds.
    pub created_ms: i64,
    /// End of the absolute lifetime, Unix milliseconds.
    pub expires_ms: i64,
    /// Last recorded use, Unix milliseconds.
    pub seen_ms: i64,
}

impl std::fmt::Debug for StoredLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredLogin")
            .field("subject", &self.subject)
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

/// The backend could not be used (unreachable, failing); the message is for logs.
#[derive(Debug, Clone, thiserror::Error)]
#[error("session backend: {0}")]
pub struct BackendError(pub String);

/// Durable, shared session storage.
#[async_trait]
pub trait SessionBackend: Send + Sync + 'static {
    /// Stores a new session under `key`.
    async fn save(&self, key: &str, login: &StoredLogin) -> Result<(), BackendError>;
    /// The session under `key`.
    async fn load(&self, key: &str) -> Result<Option<StoredLogin>, BackendError>;
    /// Deletes the session under `key`; what it was.
    async fn remove(&self, key: &str) -> Result<Option<StoredLogin>, BackendError>;
    /// Deletes the sessions of IdP session `sid`, else of `subject`; their keys and logins.
    async fn remove_matching(
        &self,
        sid: Option<&str>,
        subject: Option<&str>,
    ) -> Result<Vec<(String, StoredLogin)>, BackendError>;
    /// Records that the session under `key` was used at `now_ms`.
    async fn touch(&self, key: &str, now_ms: i64) -> Result<(), BackendError>;
}
