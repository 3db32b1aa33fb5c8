//! Server-side sessions behind an opaque cookie.
//!
//! The cookie holds a random 256-bit id; the store (an in-process `moka` cache) keys
//! sessions by the SHA-256 of that id, so the ids themselves are never kept. Sessions end
//! after `idle_timeout` without use or `absolute_timeout` after login, on logout, and on a
//! back-channel logout from the IdP. Identity (including any number of groups) stays
//! server-side, so no header ever grows with it.

use super::claims::Identity;
use super::revocation::{token_digest, unix_now, unverified_exp, Revocations};
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
use std::time::{Duration, Instant};

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

/// The session store.
pub struct SessionStore {
    cache: Cache<String, Arc<Session>>,
    revoked: Arc<Revocations>,
    absolute: Duration,
    cfg: SessionConfig,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("sessions", &self.cache.entry_count())
            .finish()
    }
}

fn key_of(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// 256 random bits, base64url.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    BASE64URL_NOPAD.encode(&b)
}

impl SessionStore {
    /// A store with the configured lifetimes.
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
        }
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

    /// How many sessions are live (approximate: expired entries leave lazily).
    pub fn live(&self) -> u64 {
        self.cache.entry_count()
    }

    /// The cookie name.
    pub fn cookie_name(&self) -> &str {
        &self.cfg.cookie_name
    }

    /// Creates a session; returns the cookie value (the session id).
    pub async fn create(
        &self,
        identity: Identity,
        sid: Option<String>,
        id_token: Option<String>,
    ) -> (String, Arc<Session>) {
        let id = random_token();
        let session = Arc::new(Session {
            identity,
            csrf_token: random_token(),
            sid,
            id_token,
            created: Instant::now(),
        });
        self.cache.insert(key_of(&id), session.clone()).await;
        (id, session)
    }

    /// The live session for a cookie value.
    pub async fn get(&self, id: &str) -> Option<Arc<Session>> {
        let s = self.cache.get(&key_of(id)).await?;
        (s.created.elapsed() < self.absolute).then_some(s)
    }

    /// Ends one session.
    pub async fn end(&self, id: &str) -> Option<Arc<Session>> {
        let s = self.cache.remove(&key_of(id)).await?;
        self.revoke(&s);
        Some(s)
    }

    /// Ends every session of an IdP session id or subject (back-channel logout).
    pub async fn end_matching(&self, sid: Option<&str>, subject: Option<&str>) -> usize {
        if let Some(sid) = sid {
            let horizon = unix_now().saturating_add(self.cfg.absolute_timeout_seconds);
            self.revoked.revoke_sid(sid, horizon);
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
        victims.len()
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
        match self.store.get(id).await {
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
        let (cookie, s) = store.create(id("alice"), Some("sid-1".into()), None).await;
        assert_eq!(cookie.len(), 43, "256 bits, base64url");
        assert_ne!(s.csrf_token, cookie);
        assert!(store.get(&cookie).await.is_some());
        assert!(store.get("forged").await.is_none());
        let (other, _) = store.create(id("alice"), Some("sid-2".into()), None).await;
        assert_eq!(store.end_matching(Some("sid-1"), None).await, 1);
        assert!(store.get(&cookie).await.is_none());
        assert!(store.get(&other).await.is_some());
        assert_eq!(store.end_matching(None, Some("alice")).await, 1);
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
