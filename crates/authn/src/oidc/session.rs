//! Server-side sessions behind an opaque cookie.
//!
//! The cookie holds a random 256-bit id; the store (an in-process `moka` cache) keys
//! sessions by the SHA-256 of that id, so the ids themselves are never kept. Sessions end
//! after `idle_timeout` without use or `absolute_timeout` after login, on logout, and on a
//! back-channel logout from the IdP. Identity (including any number of groups) stays
//! server-side, so no header ever grows with it.
//!
//! With a [`SessionBackend`] (the governance store, shared by every gateway replica) the
//! cache stays in front: a warm entry answers with no round trip; a miss reads the
//! backend; a use is recorded there at most every [`TOUCH_EVERY`] (so the idle timeout
//! holds across replicas); ending a session deletes it there, and the other replicas drop
//! their copies when the change log tells them ([`SessionStore::forget`]). The CSRF token
//! is derived from the session id, so every replica computes the same one and the store
//! holds no secret a browser would present.

use super::claims::Identity;
use super::revocation::{token_digest, unix_now, unverified_exp, Revocations};
use super::session_backend::{BackendError, SessionBackend, StoredLogin};
use super::SessionConfig;
use crate::authenticator::{Authenticator, RequestView};
use crate::error::AuthError;
use crate::principal::{AuthMethod, Principal, PrincipalKind};
use async_trait::async_trait;
use data_encoding::BASE64URL_NOPAD;
use moka::future::Cache;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Least time between two recorded uses of one session in the backend.
pub const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// One logged-in user.
#[derive(Clone)]
pub struct Session {
    /// Who.
    pub identity: Identity,
    /// The token every mutating request must echo in `X-CSRF-Token`.
    pub csrf_token: String,
    /// The IdP's session id (`sid`), for back-channel logout.
    pub sid: Option<String>,
    /// The ID token, as `id_token_hint` for RP-initiated logout.
    pub id_token: Option<String>,
    /// Login time.
    pub created: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("subject", &self.identity.subject)
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

/// The shared backend and what the store needs to use it.
struct Backed {
    store: Arc<dyn SessionBackend>,
    /// Sessions whose use was recorded lately (not again until the entry expires).
    touched: moka::sync::Cache<String, ()>,
    background: tokio::runtime::Handle,
}

/// The session store.
pub struct SessionStore {
    cache: Cache<String, Arc<Session>>,
    revoked: Arc<Revocations>,
    absolute: Duration,
    cfg: SessionConfig,
    backend: Option<Backed>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("sessions", &self.cache.entry_count())
            .finish()
    }
}

/// The key a session is stored under: the SHA-256 (hex) of its cookie value.
pub fn key_of(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// The CSRF token of the session with cookie value `id`: derived (SHA-256 under a
/// domain-separating label), so any replica that holds the cookie computes the same token
/// and nothing stored reveals it.
pub fn csrf_token_of(id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"gatehouse csrf token\0");
    h.update(id.as_bytes());
    BASE64URL_NOPAD.encode(&h.finalize())
}

/// Now, Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// 256 random bits, base64url.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    BASE64URL_NOPAD.encode(&b)
}

impl SessionStore {
    /// An in-memory store with the configured lifetimes (one gateway).
    pub fn new(cfg: &SessionConfig) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(cfg.max_sessions)
                .time_to_idle(Duration::from_secs(cfg.idle_timeout_seconds))
                .time_to_live(Duration::from_secs(cfg.absolute_timeout_seconds))
                .build(),
            revoked: Arc::new(Revocations::default()),
            absolute: Duration::from_secs(cfg.absolute_timeout_seconds),
            cfg: cfg.clone(),
            backend: None,
        }
    }

    /// A store whose sessions live in `backend` (shared by every replica), with this
    /// process's cache in front; uses are recorded from tasks on `background`.
    pub fn with_backend(
        cfg: &SessionConfig,
        backend: Arc<dyn SessionBackend>,
        background: tokio::runtime::Handle,
    ) -> Self {
        let touch = TOUCH_EVERY
            .min(Duration::from_secs(cfg.idle_timeout_seconds / 4).max(Duration::from_secs(1)));
        let mut s = Self::new(cfg);
        s.backend = Some(Backed {
            store: backend,
            touched: moka::sync::Cache::builder()
                .max_capacity(cfg.max_sessions)
                .time_to_live(touch)
                .build(),
            background,
        });
        s
    }

    /// Whether sessions live in a shared backend.
    pub fn is_shared(&self) -> bool {
        self.backend.is_some()
    }

    /// Tokens of ended sessions, for the bearer authenticator to refuse.
    pub fn revocations(&self) -> Arc<Revocations> {
        self.revoked.clone()
    }

    /// Revokes what a session's tokens carry: its ID token until that expires, and its
    /// IdP session id for as long as a session could have lasted.
    fn revoke(&self, s: &Session) {
        let horizon = unix_now().saturating_add(self.cfg.absolute_timeout_seconds);
        if let Some(t) = &s.id_token {
            self.revoked
                .revoke_token(token_digest(t), unverified_exp(t).unwrap_or(horizon));
        }
        if let Some(sid) = &s.sid {
            self.revoked.revoke_sid(sid, horizon);
        }
    }

    /// Refuses tokens carrying IdP session `sid` for as long as a session could have
    /// lasted (a session of it ended, here or on another replica).
    pub fn revoke_sid(&self, sid: &str) {
        let horizon = unix_now().saturating_add(self.cfg.absolute_timeout_seconds);
        self.revoked.revoke_sid(sid, horizon);
    }

    /// Drops the cached copy of the session stored under `key` (ended elsewhere).
    pub async fn forget(&self, key: &str) {
        self.cache.invalidate(key).await;
    }

    /// Drops every cached session (after changes may have been missed): the next request
    /// of each re-reads the backend.
    pub fn forget_all(&self) {
        self.cache.invalidate_all();
    }

    /// How many sessions are cached here (approximate: expired entries leave lazily).
    pub fn live(&self) -> u64 {
        self.cache.entry_count()
    }

    /// The cookie name.
    pub fn cookie_name(&self) -> &str {
        &self.cfg.cookie_name
    }

    /// Creates a session; returns the cookie value (the session id). With a backend, the
    /// session is stored there first (an unreachable backend fails the login).
    pub async fn create(
        &self,
        identity: Identity,
        sid: Option<String>,
        id_token: Option<String>,
    ) -> Result<(String, Arc<Session>), BackendError> {
        let id = random_token();
        let key = key_of(&id);
        if let Some(b) = &self.backend {
            let now = now_ms();
            let login = StoredLogin {
                subject: identity.subject.clone(),
                team: identity.team.clone(),
                groups: identity.groups.clone(),
                sid: sid.clone(),
                id_token: id_token.clone(),
                created_ms: now,
                expires_ms: now.saturating_add(ms(self.absolute)),
                seen_ms: now,
            };
            b.store.save(&key, &login).await?;
            b.touched.insert(key.clone(), ());
        }
        let session = Arc::new(Session {
            identity,
            csrf_token: csrf_token_of(&id),
            sid,
            id_token,
            created: Instant::now(),
        });
        self.cache.insert(key, session.clone()).await;
        Ok((id, session))
    }

    /// The live session for a cookie value, or `None` (unknown, ended, expired, or the
    /// backend unreachable on a cache miss).
    pub async fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.lookup(id).await.ok().flatten()
    }

    /// The live session for a cookie value; an error when it is not cached here and the
    /// backend cannot be read.
    pub async fn lookup(&self, id: &str) -> Result<Option<Arc<Session>>, BackendError> {
        let key = key_of(id);
        if let Some(s) = self.cache.get(&key).await {
            if s.created.elapsed() >= self.absolute {
                return Ok(None);
            }
            if let Some(b) = &self.backend {
                self.touch(b, key);
            }
            return Ok(Some(s));
        }
        let Some(b) = &self.backend else {
            return Ok(None);
        };
        let Some(login) = b.store.load(&key).await? else {
            return Ok(None);
        };
        let now = now_ms();
        let idle = i64::try_from(self.cfg.idle_timeout_seconds)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        if login.expires_ms <= now || login.seen_ms.saturating_add(idle) <= now {
            return Ok(None);
        }
        let age = Duration::from_millis(u64::try_from(now - login.created_ms).unwrap_or(0));
        let session = Arc::new(Session {
            identity: Identity {
                subject: login.subject,
                team: login.team,
                groups: login.groups,
            },
            csrf_token: csrf_token_of(id),
            sid: login.sid,
            id_token: login.id_token,
            created: Instant::now().checked_sub(age).unwrap_or_else(Instant::now),
        });
        if session.created.elapsed() >= self.absolute {
            return Ok(None);
        }
        self.cache.insert(key.clone(), session.clone()).await;
        self.touch(b, key);
        Ok(Some(session))
    }

    /// Records a use in the backend, at most every [`TOUCH_EVERY`] per session.
    fn touch(&self, b: &Backed, key: String) {
        if b.touched.contains_key(&key) {
            return;
        }
        b.touched.insert(key.clone(), ());
        let store = b.store.clone();
        b.background.spawn(async move {
            if let Err(e) = store.touch(&key, now_ms()).await {
                tracing::debug!(error = %e, "cannot record a session's use");
            }
        });
    }

    /// Ends one session (everywhere, with a backend: an unreachable backend is an error,
    /// and the session is still ended here).
    pub async fn end(&self, id: &str) -> Result<Option<Arc<Session>>, BackendError> {
        let key = key_of(id);
        let cached = self.cache.remove(&key).await;
        let stored = match &self.backend {
            Some(b) => b.store.remove(&key).await?,
            None => None,
        };
        let ended = cached.or_else(|| {
            stored.map(|l| {
                Arc::new(Session {
                    identity: Identity {
                        subject: l.subject,
                        team: l.team,
                        groups: l.groups,
                    },
                    csrf_token: csrf_token_of(id),
                    sid: l.sid,
                    id_token: l.id_token,
                    created: Instant::now(),
                })
            })
        });
        if let Some(s) = &ended {
            self.revoke(s);
        }
        Ok(ended)
    }

    /// Ends every session of an IdP session id or subject (back-channel logout), here and,
    /// with a backend, everywhere.
    pub async fn end_matching(
        &self,
        sid: Option<&str>,
        subject: Option<&str>,
    ) -> Result<usize, BackendError> {
        if let Some(sid) = sid {
            self.revoke_sid(sid);
        }
        let mut ended = 0;
        if let Some(b) = &self.backend {
            for (key, login) in b.store.remove_matching(sid, subject).await? {
                ended += 1;
                match self.cache.remove(&key).await {
                    Some(s) => self.revoke(&s),
                    None => {
                        if let Some(s) = &login.sid {
                            self.revoke_sid(s);
                        }
                    }
                }
            }
        }
        let victims: Vec<(String, Arc<Session>)> = self
            .cache
            .iter()
            .filter(|(_, s)| match (sid, subject) {
                (Some(sid), _) => s.sid.as_deref() == Some(sid),
                (None, Some(sub)) => s.identity.subject == sub,
                (None, None) => false,
            })
            .map(|(k, s)| ((*k).clone(), s))
            .collect();
        for (k, s) in &victims {
            self.revoke(s);
            self.cache.invalidate(k).await;
        }
        Ok(victims.len() + ended)
    }

    /// The `Set-Cookie` value for a new session.
    pub fn set_cookie(&self, id: &str, secure: bool) -> String {
        format!(
            "{}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
            self.cfg.cookie_name,
            self.cfg.absolute_timeout_seconds,
            if secure { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that clears the session cookie.
    pub fn clear_cookie(&self, secure: bool) -> String {
        format!(
            "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
            self.cfg.cookie_name,
            if secure { "; Secure" } else { "" }
        )
    }
}

/// What a request's `Cookie` headers hold under one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieLookup<'a> {
    /// Not sent.
    Absent,
    /// Sent exactly once.
    One(&'a str),
    /// Sent more than once (another path or a sibling host planted one): which one the
    /// browser meant cannot be known, so none is used.
    Ambiguous,
}

/// Looks cookie `name` up in a request's `Cookie` headers.
pub fn cookie_lookup<'a>(headers: &'a http::HeaderMap, name: &str) -> CookieLookup<'a> {
    let mut found = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v);
    match (found.next(), found.next()) {
        (None, _) => CookieLookup::Absent,
        (Some(v), None) => CookieLookup::One(v),
        (Some(_), Some(_)) => CookieLookup::Ambiguous,
    }
}

/// The value of cookie `name` when the request sent it exactly once; a duplicated cookie
/// (a planted twin) counts as absent.
pub fn cookie_value<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    match cookie_lookup(headers, name) {
        CookieLookup::One(v) => Some(v),
        _ => None,
    }
}

/// Authenticates the session cookie.
#[derive(Debug, Clone)]
pub struct SessionAuthenticator {
    store: Arc<SessionStore>,
}

impl SessionAuthenticator {
    /// An authenticator over `store`.
    pub fn new(store: Arc<SessionStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Authenticator for SessionAuthenticator {
    fn name(&self) -> &'static str {
        "session"
    }

    async fn authenticate(&self, req: &RequestView<'_>) -> Result<Option<Principal>, AuthError> {
        let id = match cookie_lookup(req.headers, self.store.cookie_name()) {
            CookieLookup::Absent => return Ok(None),
            CookieLookup::One(id) => id,
            CookieLookup::Ambiguous => {
                return Err(AuthError::Rejected {
                    code: "GATEWAY::SESSION_AMBIGUOUS",
                    message: "More than one session cookie was sent; sign in again.".into(),
                })
            }
        };
        let found = self.store.lookup(id).await.map_err(|e| {
            tracing::warn!(error = %e, "session backend unreachable; refusing an uncached session");
            AuthError::Rejected {
                code: "GATEWAY::SESSION_UNAVAILABLE",
                message: "Your session cannot be checked right now; retry shortly.".into(),
            }
        })?;
        match found {
            Some(s) => Ok(Some(Principal {
                kind: PrincipalKind::User,
                subject: s.identity.subject.clone(),
                team: s.identity.team.clone(),
                groups: s.identity.groups.clone(),
                role: None,
                method: AuthMethod::Session,
                key_name: None,
            })),
            None => Err(AuthError::Rejected {
                code: "GATEWAY::SESSION_EXPIRED",
                message: "Your session is invalid or has expired; sign in again.".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(sub: &str) -> Identity {
        Identity {
            subject: sub.into(),
            team: None,
            groups: vec![],
        }
    }

    #[tokio::test]
    async fn sessions_live_end_and_never_store_ids() {
        let store = SessionStore::new(&SessionConfig::default());
        let (cookie, s) = store
            .create(id("alice"), Some("sid-1".into()), None)
            .await
            .unwrap();
        assert_eq!(cookie.len(), 43, "256 bits, base64url");
        assert_ne!(s.csrf_token, cookie);
        assert_eq!(
            s.csrf_token,
            csrf_token_of(&cookie),
            "derived, the same on every replica"
        );
        assert!(store.get(&cookie).await.is_some());
        assert!(store.get("forged").await.is_none());
        let (other, _) = store
            .create(id("alice"), Some("sid-2".into()), None)
            .await
            .unwrap();
        assert_eq!(store.end_matching(Some("sid-1"), None).await.unwrap(), 1);
        assert!(store.get(&cookie).await.is_none());
        assert!(store.get(&other).await.is_some());
        assert_eq!(store.end_matching(None, Some("alice")).await.unwrap(), 1);
        assert!(store.get(&other).await.is_none());
    }

    #[test]
    fn cookie_parsing() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            "a=1; gatehouse_session=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_value(&h, "gatehouse_session"), Some("xyz"));
        assert_eq!(cookie_value(&h, "gatehouse"), None);
        h.append(
            http::header::COOKIE,
            "gatehouse_session=planted".parse().unwrap(),
        );
        assert_eq!(
            cookie_value(&h, "gatehouse_session"),
            None,
            "a planted twin"
        );
        assert_eq!(
            cookie_lookup(&h, "gatehouse_session"),
            CookieLookup::Ambiguous
        );
    }
}
