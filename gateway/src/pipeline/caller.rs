//! The verified-caller assertion: every request the gateway proxies to a sandbox carries
//! `X-Gatehouse-Caller`, a short-lived JWT the gateway signs (EdDSA, its
//! [`KeyRing`]) saying who is calling — `sub`, `team`, `role`, `auth` (how the gateway
//! authenticated them), `aud` = the sandbox id, `iss` = `gatehouse`, `exp` a minute
//! ahead. The app inside verifies it with the key at `/.well-known/jwks.json` and never
//! has to trust a header a client could set: the gateway removes any `X-Gatehouse-Caller`
//! a client sends. Assertions repeat per caller and sandbox, so they are cached (for half
//! their lifetime, so a served one always has at least 30 s left).

use crate::signing::KeyRing;
use gatehouse_authn::Principal;
use http::HeaderValue;
use moka::sync::Cache;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The header carrying the assertion.
pub const CALLER_HEADER: &str = "x-gatehouse-caller";

/// The JOSE `typ` of the assertion, so it cannot be mistaken for another token.
pub const CALLER_TYP: &str = "gatehouse-caller+jwt";

/// The assertion's `iss`.
pub const CALLER_ISSUER: &str = "gatehouse";

/// Seconds an assertion is valid.
const LIFETIME: u64 = 60;

/// Signs and caches caller assertions.
pub struct CallerAssertions {
    key: Arc<KeyRing>,
    cache: Cache<String, HeaderValue>,
}

impl std::fmt::Debug for CallerAssertions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerAssertions")
            .field("kids", &self.key.kids())
            .finish_non_exhaustive()
    }
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'static str,
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    team: Option<&'a str>,
    role: &'a str,
    auth: &'static str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

impl CallerAssertions {
    /// Assertions signed with `key`.
    pub fn new(key: Arc<KeyRing>) -> Self {
        Self {
            key,
            cache: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(LIFETIME / 2))
                .build(),
        }
    }

    /// The signing key (for the JWKS route).
    pub fn key(&self) -> &KeyRing {
        &self.key
    }

    /// The header value asserting `p` (with `role`) to sandbox `sandbox`.
    pub fn header_for(&self, p: &Principal, role: &str, sandbox: &str) -> Option<HeaderValue> {
        let team = p.team.as_deref();
        // Unit separators cannot occur in the parts (control characters are refused).
        let key = format!(
            "{}\u{1f}{}\u{1f}{role}\u{1f}{}\u{1f}{sandbox}",
            p.subject,
            team.unwrap_or(""),
            p.method.as_str()
        );
        if let Some(v) = self.cache.get(&key) {
            return Some(v);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Claims {
            iss: CALLER_ISSUER,
            sub: &p.subject,
            team,
            role,
            auth: p.method.as_str(),
            aud: sandbox,
            iat: now,
            exp: now + LIFETIME,
        };
        let token = match self.key.sign(CALLER_TYP, &claims) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "caller assertion not signed");
                return None;
            }
        };
        let mut v = HeaderValue::from_str(&token).ok()?;
        v.set_sensitive(true);
        self.cache.insert(key, v.clone());
        Some(v)
    }
}
