//! Personal and team API keys: `gk_` followed by 43 URL-safe characters (256 random bits).
//! Only the SHA-256 of a key is stored; the key itself is shown once, at creation.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Every personal key starts with this, so a key is recognisable (and scannable) in a leak.
pub const KEY_PREFIX: &str = "gk_";

/// A key as stored (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyRecord {
    /// Key id (a UUID), used to list and revoke.
    pub id: String,
    /// The first characters of the key (`gk_` and 6 more), to recognise it in a list.
    pub prefix: String,
    /// Its name.
    pub name: String,
    /// The identity requests with the key carry.
    pub subject: String,
    /// Its team.
    pub team: Option<String>,
    /// Its role (no higher than the creator's).
    pub role: String,
    /// Creation time, Unix milliseconds.
    pub created_ms: i64,
    /// Expiry, Unix milliseconds; `None` never expires.
    pub expires_ms: Option<i64>,
    /// Last time it authenticated a request (updated in the background).
    pub last_used_ms: Option<i64>,
    /// When it was revoked.
    pub revoked_ms: Option<i64>,
    /// The key's SHA-256 (hex); not serialized.
    #[serde(skip)]
    pub hash: String,
}

impl ApiKeyRecord {
    /// Whether the key may authenticate a request at `now_ms`.
    pub fn is_usable(&self, now_ms: i64) -> bool {
        self.revoked_ms.is_none() && self.expires_ms.is_none_or(|e| now_ms < e)
    }
}

/// A freshly generated key: the secret (shown once) and the record to store.
#[derive(Debug)]
pub struct NewApiKey {
    /// `gk_…`: hand to the user once, never store or log.
    pub secret: String,
    /// What is stored.
    pub record: ApiKeyRecord,
}

/// Whether a credential looks like a personal key.
pub fn is_personal_key(s: &str) -> bool {
    s.len() == KEY_PREFIX.len() + 43 && s.starts_with(KEY_PREFIX)
}

/// The stored form of a key: SHA-256, hex. A fast hash is right here: the key has 256
/// random bits, so there is nothing to brute-force.
pub fn hash_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The parts of a key the creator chooses.
#[derive(Debug, Clone)]
pub struct KeySpec {
    /// Its name.
    pub name: String,
    /// The identity it carries.
    pub subject: String,
    /// Its team.
    pub team: Option<String>,
    /// Its role.
    pub role: String,
    /// Expiry, Unix milliseconds.
    pub expires_ms: Option<i64>,
}

/// Generates a key for `spec`, created at `now_ms`.
pub fn generate(spec: KeySpec, now_ms: i64) -> NewApiKey {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    // v4 UUIDs carry 122 random bits each; hash the pair so all 256 output bits are mixed.
    let digest = Sha256::digest(bytes);
    let secret = format!(
        "{KEY_PREFIX}{}",
        data_encoding::BASE64URL_NOPAD.encode(&digest)
    );
    let record = ApiKeyRecord {
        id: uuid::Uuid::new_v4().to_string(),
        prefix: secret.chars().take(KEY_PREFIX.len() + 6).collect(),
        name: spec.name,
        subject: spec.subject,
        team: spec.team,
        role: spec.role,
        created_ms: now_ms,
        expires_ms: spec.expires_ms,
        last_used_ms: None,
        revoked_ms: None,
        hash: hash_key(&secret),
    };
    NewApiKey { secret, record }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_random_and_stored_hashed() {
        let spec = KeySpec {
            name: "ci".into(),
            subject: "alice".into(),
            team: Some("t".into()),
            role: "operator".into(),
            expires_ms: Some(10),
        };
        let a = generate(spec.clone(), 1);
        let b = generate(spec, 1);
        assert!(is_personal_key(&a.secret), "{}", a.secret);
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.record.hash, hash_key(&a.secret));
        assert!(!a.record.hash.contains(&a.secret[3..]));
        assert!(a.secret.starts_with(&a.record.prefix));
        assert!(a.record.is_usable(9));
        assert!(!a.record.is_usable(10));
        assert!(!is_personal_key("gk_short"));
    }
}
