//! [`LoginStateBackend`]: where sign-ins in progress live beyond this process, so the
//! IdP's callback may reach any gateway replica (no sticky sessions needed).
//!
//! This crate does not know the governance store; the gateway implements this trait with
//! it. Without one, [`super::OidcLogin`] keeps them in memory (one gateway).

use super::session_backend::BackendError;
use async_trait::async_trait;

/// One sign-in in progress as a backend keeps it (keyed by the SHA-256, hex, of `state`).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredPending {
    /// The PKCE code verifier.
    pub verifier: String,
    /// The ID token nonce.
    pub nonce: String,
    /// Where the browser goes afterwards.
    pub return_to: String,
    /// Expiry, Unix milliseconds.
    pub expires_ms: i64,
}

impl std::fmt::Debug for StoredPending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPending")
            .field("return_to", &self.return_to)
            .finish_non_exhaustive()
    }
}

/// Durable, shared storage of sign-ins in progress.
#[async_trait]
pub trait LoginStateBackend: Send + Sync + 'static {
    /// Stores a sign-in under `key`.
    async fn put(
        &self,
        key: &str,
        pending: &StoredPending,
        now_ms: i64,
    ) -> Result<(), BackendError>;
    /// Takes (deletes and returns) the sign-in under `key` unless it expired by `now_ms`.
    async fn take(&self, key: &str, now_ms: i64) -> Result<Option<StoredPending>, BackendError>;
}
