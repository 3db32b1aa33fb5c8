//! [`StoreLoginStates`]: the authn crate's `LoginStateBackend` over the governance store,
//! so a sign-in started on one replica completes on any other.

use async_trait::async_trait;
use gatehouse_authn::oidc::login_state::{LoginStateBackend, StoredPending};
use gatehouse_authn::oidc::session_backend::BackendError;
use gatehouse_store::{LoginStateStore, StoredLoginState};
use std::sync::Arc;

/// Sign-ins in progress in the governance store.
#[derive(Clone)]
pub struct StoreLoginStates {
    store: Arc<dyn LoginStateStore>,
}

impl StoreLoginStates {
    /// A backend over `store`.
    pub fn new(store: Arc<dyn LoginStateStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl LoginStateBackend for StoreLoginStates {
    async fn put(&self, key: &str, p: &StoredPending, now_ms: i64) -> Result<(), BackendError> {
        let s = StoredLoginState {
            verifier: p.verifier.clone(),
            nonce: p.nonce.clone(),
            return_to: p.return_to.clone(),
            expires_ms: p.expires_ms,
        };
        self.store
            .put_login_state(key, &s, now_ms)
            .await
            .map_err(|e| BackendError(e.to_string()))
    }

    async fn take(&self, key: &str, now_ms: i64) -> Result<Option<StoredPending>, BackendError> {
        let s = self
            .store
            .take_login_state(key, now_ms)
            .await
            .map_err(|e| BackendError(e.to_string()))?;
        Ok(s.map(|s| StoredPending {
            verifier: s.verifier,
            nonce: s.nonce,
            return_to: s.return_to,
            expires_ms: s.expires_ms,
        }))
    }
}
