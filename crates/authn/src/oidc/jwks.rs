//! The JWKS cache and JWT verification.
//!
//! Keys are held by `kid` behind an `ArcSwap`, so verification never waits on a lock. A
//! token with an unknown `kid` triggers one refresh: concurrent requests share it (single
//! flight), refreshes are at most one per `min_refresh`, and a failed refresh keeps the old
//! keys. Only asymmetric algorithms from the configured list are accepted, and a key is only
//! used with an algorithm of its own family (no HMAC with a public key; `none` cannot even
//! be parsed).

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Parses an algorithm name; HMAC is refused.
pub fn parse_alg(name: &str) -> Option<Algorithm> {
    let alg: Algorithm = name.parse().ok()?;
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => None,
        other => Some(other),
    }
}

#[derive(Clone)]
struct Key {
    key: DecodingKey,
    family: Family,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Family {
    Rsa,
    Ec,
    Okp,
}

fn family_of(alg: Algorithm) -> Option<Family> {
    use Algorithm::*;
    match alg {
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Some(Family::Rsa),
        ES256 | ES384 => Some(Family::Ec),
        EdDSA => Some(Family::Okp),
        _ => None,
    }
}

/// Why a token was refused (for logs; clients get one generic message).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a well-formed JWT, or an algorithm outside the allowed list.
    #[error("malformed or disallowed token: {0}")]
    Malformed(String),
    /// No key with this `kid`, even after a refresh.
    #[error("unknown signing key '{0}'")]
    UnknownKey(String),
    /// Signature, issuer, audience or time checks failed.
    #[error("token rejected: {0}")]
    Invalid(String),
}

/// Verification parameters.
#[derive(Debug, Clone)]
pub struct Expect {
    /// Accepted issuer.
    pub issuer: String,
    /// Accepted audiences.
    pub audiences: Vec<String>,
    /// Accepted algorithms.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew, seconds.
    pub leeway: u64,
    /// Whether `exp` is required (logout tokens have none).
    pub require_exp: bool,
    /// Accepted JOSE `typ` header values, lowercase (empty: any). Bearer access tokens
    /// require `at+jwt` (RFC 9068) by default, so an ID token is not one.
    pub types: Vec<String>,
}

/// Whether a token's `typ` header is one of `types` (compared without case and without an
/// `application/` prefix, RFC 7515 §4.1.9); any `typ` passes when `types` is empty.
pub fn typ_allowed(typ: Option<&str>, types: &[String]) -> bool {
    if types.is_empty() {
        return true;
    }
    let Some(t) = typ else {
        return false;
    };
    let t = t.to_ascii_lowercase();
    let t = t.strip_prefix("application/").unwrap_or(&t);
    types
        .iter()
        .any(|a| a.strip_prefix("application/").unwrap_or(a) == t)
}

/// What a token's header says, once [`checked_header`] accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedHeader {
    /// The signing algorithm: one of [`Expect::algorithms`], never HMAC or `none`.
    pub alg: Algorithm,
    /// The key id the token names.
    pub kid: String,
}

/// The checks on a JWT's header that come before any key is looked up: a well-formed
/// header, an accepted `typ`, an allowed asymmetric algorithm, and a `kid`.
pub fn checked_header(token: &str, expect: &Expect) -> Result<CheckedHeader, TokenError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
    if !typ_allowed(header.typ.as_deref(), &expect.types) {
        return Err(TokenError::Malformed(format!(
            "token type {:?} is not accepted here",
            header.typ
        )));
    }
    if !expect.algorithms.contains(&header.alg) {
        return Err(TokenError::Malformed(format!(
            "algorithm {:?} is not allowed",
            header.alg
        )));
    }
    if family_of(header.alg).is_none() {
        return Err(TokenError::Malformed("symmetric algorithm".into()));
    }
    let kid = header
        .kid
        .ok_or_else(|| TokenError::Malformed("no kid".into()))?;
    Ok(CheckedHeader {
        alg: header.alg,
        kid,
    })
}

/// Cached signing keys of one issuer.
pub struct JwksCache {
    url: ArcSwap<String>,
    http: reqwest::Client,
    keys: ArcSwap<HashMap<String, Key>>,
    refresh: tokio::sync::Mutex<Option<Instant>>,
    min_refresh: Duration,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("url", &self.url.load())
            .field("keys", &self.keys.load().len())
            .finish()
    }
}

impl JwksCache {
    /// An empty cache for `url`; keys are fetched on first use.
    pub fn new(url: String, http: reqwest::Client, min_refresh: Duration) -> Self {
        Self {
            url: ArcSwap::from_pointee(url),
            http,
            keys: ArcSwap::from_pointee(HashMap::new()),
            refresh: tokio::sync::Mutex::new(None),
            min_refresh,
        }
    }

    /// Points the cache at a (newly discovered) JWKS URL.
    pub fn set_url(&self, url: String) {
        self.url.store(Arc::new(url));
    }

    /// Number of cached keys.
    pub fn len(&self) -> usize {
        self.keys.load().len()
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    async fn fetch(&self) -> Result<HashMap<String, Key>, String> {
        let url = self.url.load_full();
        if url.is_empty() {
            return Err("the provider has not been discovered yet".into());
        }
        let resp = self
            .http
            .get(url.as_str())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("JWKS endpoint answered {}", resp.status()));
        }
        let set: JwkSet = resp.json().await.map_err(|e| e.to_string())?;
        let mut out = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let family = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Family::Rsa,
                AlgorithmParameters::EllipticCurve(_) => Family::Ec,
                AlgorithmParameters::OctetKeyPair(_) => Family::Okp,
                // Symmetric keys (and anything unknown) are never used to verify.
                _ => continue,
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                out.insert(kid, Key { key, family });
            }
        }
        Ok(out)
    }

    /// Refreshes now unless another caller just did (single flight, rate-limited).
    async fn refresh(&self, force: bool) {
        let mut last = self.refresh.lock().await;
        if !force && last.is_some_and(|t| t.elapsed() < self.min_refresh) {
            return;
        }
        match self.fetch().await {
            Ok(keys) if !keys.is_empty() => {
                tracing::info!(jwks = %self.url.load(), keys = keys.len(), "signing keys refreshed");
                self.keys.store(Arc::new(keys));
            }
            Ok(_) => {
                tracing::warn!(jwks = %self.url.load(), "JWKS has no usable keys; keeping the cached ones")
            }
            Err(e) => {
                tracing::warn!(jwks = %self.url.load(), error = %e, "JWKS refresh failed; keeping the cached keys")
            }
        }
        *last = Some(Instant::now());
    }

    async fn key(&self, kid: &str) -> Option<Key> {
        if let Some(k) = self.keys.load().get(kid) {
            return Some(k.clone());
        }
        let before = Arc::clone(&self.keys.load());
        let mut guard = self.refresh.lock().await;
        // Someone refreshed while we waited.
        if !Arc::ptr_eq(&before, &self.keys.load()) {
            drop(guard);
            return self.keys.load().get(kid).cloned();
        }
        let allowed = guard.is_none_or(|t| t.elapsed() >= self.min_refresh);
        if allowed {
            match self.fetch().await {
                Ok(keys) if !keys.is_empty() => self.keys.store(Arc::new(keys)),
                Ok(_) => tracing::warn!(jwks = %self.url.load(), "JWKS has no usable keys"),
                Err(e) => {
                    tracing::warn!(jwks = %self.url.load(), error = %e, "JWKS refresh failed; keeping the cached keys")
                }
            }
            *guard = Some(Instant::now());
        }
        drop(guard);
        self.keys.load().get(kid).cloned()
    }

    /// Fetches the keys now (at start-up); failures are logged.
    pub async fn prime(&self) {
        self.refresh(true).await;
    }

    /// Verifies a JWT and returns its claims.
    pub async fn verify(
        &self,
        token: &str,
        expect: &Expect,
    ) -> Result<Map<String, Value>, TokenError> {
        let CheckedHeader { alg, kid } = checked_header(token, expect)?;
        let family =
            family_of(alg).ok_or_else(|| TokenError::Malformed("symmetric algorithm".into()))?;
        let key = self
            .key(&kid)
            .await
            .ok_or_else(|| TokenError::UnknownKey(kid.clone()))?;
        if key.family != family {
            return Err(TokenError::Malformed(format!(
                "algorithm {alg:?} does not match key '{kid}'"
            )));
        }
        let mut v = Validation::new(alg);
        v.algorithms = vec![alg];
        v.leeway = expect.leeway;
        v.validate_nbf = true;
        v.validate_exp = expect.require_exp;
        v.set_issuer(&[&expect.issuer]);
        v.set_audience(&expect.audiences);
        let required: &[&str] = if expect.require_exp {
            &["exp", "iss", "aud"]
        } else {
            &["iss", "aud"]
        };
        v.set_required_spec_claims(required);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &v)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        Ok(data.claims)
    }
}
