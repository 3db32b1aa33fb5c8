//! [`PersonalKeyAuthenticator`]: `gk_…` keys users create for themselves
//! (`/gatehouse/v1/keys`), looked up by hash in the governance store.
//!
//! It claims an `OPEN-SANDBOX-API-KEY` only when the value looks like a personal key, so
//! it runs first in the chain and every other key reaches the named-key authenticator.
//! A key authenticates as its creator (subject and team) with the key's role, so requests
//! are scoped exactly like the user's own.
//!
//! Lookups are cached ([`CACHE_TTL`]): revocation through any replica invalidates the
//! entry at once (the change log, `crate::replication`); expiry is checked on every
//! request. If the store is unreachable, the last answer read within [`FAIL_STATIC_TTL`]
//! is used (fail static: a store outage does not lock out keys that were in use); a key
//! not read in that window gets 503 with `Retry-After` (never "invalid": it may be good).
//! The last-used time is written
//! by a background task, at most once a minute per key.

use async_trait::async_trait;
use gatehouse_authn::{
    AuthError, AuthMethod, Authenticator, Principal, PrincipalKind, RequestView,
};
use gatehouse_lifecycle::wire::API_KEY_HEADER;
use gatehouse_store::{hash_key, is_personal_key, ApiKeyRecord, GovernanceStore};
use std::sync::Arc;
use std::time::Duration;

/// How long a lookup (found or not) is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(10);
/// How long the last answer read stays usable while the store is unreachable.
pub const FAIL_STATIC_TTL: Duration = Duration::from_secs(15 * 60);
/// Least time between two last-used writes for one key.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// The personal-key authenticator. Clones share the caches (the chain holds one, the
/// key routes another, to invalidate on revocation).
#[derive(Clone)]
pub struct PersonalKeyAuthenticator {
    store: Arc<dyn GovernanceStore>,
    cache: moka::sync::Cache<String, Option<Arc<ApiKeyRecord>>>,
    last_known: moka::sync::Cache<String, Option<Arc<ApiKeyRecord>>>,
    touched: moka::sync::Cache<String, ()>,
    background: tokio::runtime::Handle,
}

impl PersonalKeyAuthenticator {
    /// An authenticator over `store`; last-used writes run on `background`.
    pub fn new(store: Arc<dyn GovernanceStore>, background: tokio::runtime::Handle) -> Self {
        Self {
            store,
            cache: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CACHE_TTL)
                .build(),
            last_known: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(FAIL_STATIC_TTL)
                .build(),
            touched: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(TOUCH_EVERY)
                .build(),
            background,
        }
    }

    /// Forgets the cached lookup of the key with this hash (after a revocation).
    pub fn invalidate(&self, hash: &str) {
        self.cache.invalidate(hash);
        self.last_known.invalidate(hash);
    }

    /// Forgets every cached lookup (changes may have been missed).
    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }

    fn touch(&self, id: &str, now_ms: i64) {
        if self.touched.contains_key(id) {
            return;
        }
        self.touched.insert(id.to_string(), ());
        let store = self.store.clone();
        let id = id.to_string();
        self.background.spawn(async move {
            if let Err(e) = store.touch_key(&id, now_ms).await {
                tracing::debug!(error = %e, "cannot record a personal key's last use");
            }
        });
    }
}

#[async_trait]
impl Authenticator for PersonalKeyAuthenticator {
    fn name(&self) -> &'static str {
        "personal_key"
    }

    async fn authenticate(&self, req: &RequestView<'_>) -> Result<Option<Principal>, AuthError> {
        let mut values = req.headers.get_all(API_KEY_HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        let Some(secret) = value.to_str().ok().filter(|v| is_personal_key(v)) else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(AuthError::InvalidApiKey);
        }
        let hash = hash_key(secret);
        let record = match self.cache.get(&hash) {
            Some(r) => r,
            None => match self.store.key_by_hash(&hash).await {
                Ok(r) => {
                    let r = r.map(Arc::new);
                    self.last_known.insert(hash.clone(), r.clone());
                    self.cache.insert(hash, r.clone());
                    r
                }
                Err(e) => match self.last_known.get(&hash) {
                    Some(r) => {
                        tracing::debug!(error = %e, "store unreachable; using the last lookup of this personal key");
                        r
                    }
                    None => {
                        // Not "invalid": the key may be good. 503 + Retry-After, so clients
                        // come back instead of discarding the key.
                        tracing::warn!(error = %e, "personal key lookup failed; answering 503");
                        return Err(AuthError::Unavailable {
                            dependency: "governance store",
                        });
                    }
                },
            },
        };
        let now = chrono::Utc::now().timestamp_millis();
        let Some(k) = record.filter(|k| k.is_usable(now)) else {
            return Err(AuthError::InvalidApiKey);
        };
        self.touch(&k.id, now);
        Ok(Some(Principal {
            kind: PrincipalKind::User,
            subject: k.subject.clone(),
            team: k.team.clone(),
            groups: Vec::new(),
            role: Some(k.role.clone()),
            method: AuthMethod::ApiKey,
            key_name: Some(format!("{} ({})", k.name, k.prefix)),
        }))
    }
}
