//! [`StoreSessionBackend`]: the authn crate's `SessionBackend` over the governance
//! store's `SessionStore` (only hashes of session ids are stored).

use async_trait::async_trait;
use gatehouse_authn::oidc::session_backend::{BackendError, SessionBackend, StoredLogin};
use gatehouse_store::{SessionStore, StoredSession};
use std::sync::Arc;

/// Sessions in the governance store.
#[derive(Clone)]
pub struct StoreSessionBackend {
    store: Arc<dyn SessionStore>,
}

impl StoreSessionBackend {
    /// A backend over `store`.
    pub fn new(store: Arc<dyn SessionStore>) -> Self {
        Self { store }
    }
}

fn err(e: gatehouse_store::StoreError) -> BackendError {
    BackendError(e.to_string())
}

fn login(s: StoredSession) -> StoredLogin {
    StoredLogin {
        subject: s.subject,
        team: s.team,
        groups: s.groups,
        sid: s.sid,
        id_token: s.id_token,
        created_ms: s.created_ms,
        expires_ms: s.expires_ms,
        seen_ms: s.seen_ms,
    }
}

#[async_trait]
impl SessionBackend for StoreSessionBackend {
    async fn save(&self, key: &str, l: &StoredLogin) -> Result<(), BackendError> {
        let s = StoredSession {
            id_hash: key.to_owned(),
            subject: l.subject.clone(),
            team: l.team.clone(),
            groups: l.groups.clone(),
            sid: l.sid.clone(),
            id_token: l.id_token.clone(),
            created_ms: l.created_ms,
            expires_ms: l.expires_ms,
            seen_ms: l.seen_ms,
        };
        self.store.put_session(&s).await.map_err(err)
    }

    async fn load(&self, key: &str) -> Result<Option<StoredLogin>, BackendError> {
        Ok(self.store.session(key).await.map_err(err)?.map(login))
    }

    async fn remove(&self, key: &str) -> Result<Option<StoredLogin>, BackendError> {
        Ok(self
            .store
            .delete_session(key)
            .await
            .map_err(err)?
            .map(login))
    }

    async fn remove_matching(
        &self,
        sid: Option<&str>,
        subject: Option<&str>,
    ) -> Result<Vec<(String, StoredLogin)>, BackendError> {
        Ok(self
            .store
            .delete_sessions_matching(sid, subject)
            .await
            .map_err(err)?
            .into_iter()
            .map(|s| (s.id_hash.clone(), login(s)))
            .collect())
    }

    async fn touch(&self, key: &str, now_ms: i64) -> Result<(), BackendError> {
        self.store.touch_session(key, now_ms).await.map_err(err)
    }
}
