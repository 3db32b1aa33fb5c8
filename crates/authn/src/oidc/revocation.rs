//! Tokens of ended sessions, refused until they expire.
//!
//! Logging out (front- or back-channel) ends the gateway's session, but JWTs the IdP
//! issued for it stay valid by signature until their `exp`. The revocation list remembers
//! what identifies them — the SHA-256 of a token handed to the browser (the ID token, as
//! `id_token_hint`) and the IdP session id (`sid`) that access tokens carry — each only
//! as long as a token naming it could still verify, in a bounded `moka` cache.

use moka::sync::Cache;
use moka::Expiry;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Most entries held (oldest evicted first when full).
const CAPACITY: u64 = 100_000;

/// What a revocation names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Revoked {
    /// The SHA-256 of one token.
    Token([u8; 32]),
    /// Every token carrying this IdP session id.
    Sid(String),
}

/// Each entry lives until the Unix time it holds.
struct UntilExpiry;

impl Expiry<Revoked, u64> for UntilExpiry {
    fn expire_after_create(&self, _k: &Revoked, until: &u64, _now: Instant) -> Option<Duration> {
        Some(Duration::from_secs(until.saturating_sub(unix_now()).max(1)))
    }
}

/// Current Unix time, seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The SHA-256 of a token, as the bearer cache keys it.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The revocation list shared by the session store and the bearer authenticator.
pub struct Revocations {
    cache: Cache<Revoked, u64>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl Default for Revocations {
    fn default() -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(CAPACITY)
                .expire_after(UntilExpiry)
                .build(),
        }
    }
}

impl Revocations {
    /// Refuses the token with this digest until `until` (Unix seconds, its `exp`).
    pub fn revoke_token(&self, digest: [u8; 32], until: u64) {
        self.cache.insert(Revoked::Token(digest), until);
    }

    /// Refuses every token carrying IdP session `sid` until `until` (Unix seconds).
    pub fn revoke_sid(&self, sid: &str, until: u64) {
        self.cache.insert(Revoked::Sid(sid.to_owned()), until);
    }

    /// Whether a token (by digest, with its `sid` claim) was revoked.
    pub fn is_revoked(&self, digest: &[u8; 32], sid: Option<&str>) -> bool {
        self.cache.contains_key(&Revoked::Token(*digest))
            || sid.is_some_and(|s| self.cache.contains_key(&Revoked::Sid(s.to_owned())))
    }
}

/// The `exp` claim of a JWT, read without verifying it (for a token the gateway verified
/// earlier, e.g. the ID token of a login).
pub fn unverified_exp(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(payload.trim_end_matches('=').as_bytes())
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("exp")?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_until_expiry() {
        let r = Revocations::default();
        let d = token_digest("a.b.c");
        assert!(!r.is_revoked(&d, Some("sid-1")));
        r.revoke_token(d, unix_now() + 60);
        r.revoke_sid("sid-2", unix_now() + 60);
        assert!(r.is_revoked(&d, None));
        assert!(r.is_revoked(&token_digest("x"), Some("sid-2")));
        assert!(!r.is_revoked(&token_digest("x"), Some("sid-1")));
    }

    #[test]
    fn exp_is_read_from_the_payload() {
        let p = data_encoding::BASE64URL_NOPAD.encode(br#"{"exp":1700000000,"sub":"a"}"#);
        assert_eq!(unverified_exp(&format!("h.{p}.s")), Some(1_700_000_000));
        assert_eq!(unverified_exp("garbage"), None);
    }
}
