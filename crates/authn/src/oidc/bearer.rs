//! `Authorization: Bearer <JWT>` from the configured issuer: access tokens only.
//!
//! A bearer must be an access token for this gateway's API: its JOSE `typ` is one of
//! `access_token_types` (`at+jwt`, RFC 9068), its `aud` one of `audiences`, and it carries
//! none of the claims that mark an ID token (`nonce`, `at_hash`, `c_hash`, `s_hash`) or a
//! logout token (`events`). A token of a session that logged out is refused until it
//! expires (the [`Revocations`] list).
//!
//! Verified tokens are remembered by their SHA-256 for `bearer_cache_seconds` (as Envoy's
//! `jwt_authn` cache does), never past their `exp`: automation that repeats one token pays
//! for the signature check once, not on every request.

use super::claims::{identity, Identity};
use super::jwks::{Expect, JwksCache};
use super::revocation::Revocations;
use super::OidcConfig;
use crate::authenticator::{Authenticator, RequestView};
use crate::error::AuthError;
use crate::principal::{AuthMethod, Principal, PrincipalKind};
use async_trait::async_trait;
use moka::sync::Cache;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Most verified tokens remembered.
const CACHE_CAPACITY: u64 = 10_000;

/// A token that passed verification: who it names and when it expires (Unix seconds).
#[derive(Debug)]
struct Verified {
    identity: Identity,
    expires: u64,
    /// The IdP session the token belongs to (`sid`), for the revocation list.
    sid: Option<String>,
}

/// Claims that only ID tokens (OIDC Core §2, §3.3.2.11) or logout tokens carry.
const NOT_ACCESS_TOKEN_CLAIMS: [&str; 5] = ["nonce", "at_hash", "c_hash", "s_hash", "events"];

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Validates bearer JWTs: signature (JWKS), allowed algorithms, `iss`, `aud`, `exp`/`nbf`.
#[derive(Debug)]
pub struct BearerAuthenticator {
    jwks: Arc<JwksCache>,
    expect: Expect,
    subject_claim: String,
    team_claim: String,
    groups_claim: String,
    verified: Option<Cache<[u8; 32], Arc<Verified>>>,
    revoked: Arc<Revocations>,
}

impl BearerAuthenticator {
    /// A bearer authenticator over `jwks` for the issuer in `cfg`, refusing what
    /// `revoked` lists.
    pub fn new(
        cfg: &OidcConfig,
        issuer: String,
        jwks: Arc<JwksCache>,
        revoked: Arc<Revocations>,
    ) -> Self {
        let algorithms = cfg
            .algorithms
            .iter()
            .filter_map(|a| super::jwks::parse_alg(a))
            .collect();
        Self {
            jwks,
            expect: Expect {
                issuer,
                audiences: cfg.bearer_audiences(),
                algorithms,
                leeway: cfg.leeway_seconds,
                require_exp: true,
                types: cfg.bearer_types(),
            },
            subject_claim: cfg.subject_claim.clone(),
            team_claim: cfg.team_claim.clone(),
            groups_claim: cfg.groups_claim.clone(),
            verified: (cfg.bearer_cache_seconds > 0).then(|| {
                Cache::builder()
                    .max_capacity(CACHE_CAPACITY)
                    .time_to_live(Duration::from_secs(cfg.bearer_cache_seconds))
                    .build()
            }),
            revoked,
        }
    }

    /// Signature and claims check, then the identity the claims name.
    async fn verify(&self, token: &str) -> Result<Verified, AuthError> {
        let claims = self.jwks.verify(token, &self.expect).await.map_err(|e| {
            tracing::info!(reason = %e, "bearer token refused");
            rejected()
        })?;
        let expires = claims
            .get("exp")
            .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f as u64)))
            .ok_or_else(rejected)?;
        if let Some(c) = NOT_ACCESS_TOKEN_CLAIMS
            .iter()
            .find(|c| claims.contains_key(**c))
        {
            tracing::info!(claim = c, "bearer token refused: an ID or logout token");
            return Err(rejected());
        }
        let sid = claims
            .get("sid")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let identity = identity(
            &claims,
            &self.subject_claim,
            &self.team_claim,
            &self.groups_claim,
        )?;
        Ok(Verified {
            identity,
            expires,
            sid,
        })
    }

    /// The verified token, from the cache when it is there and not yet expired.
    async fn verified(&self, token: &str) -> Result<Arc<Verified>, AuthError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let v = self.verified_uncached_revocation(token, &key).await?;
        if self.revoked.is_revoked(&key, v.sid.as_deref()) {
            tracing::info!("bearer token refused: its session logged out");
            return Err(rejected());
        }
        Ok(v)
    }

    /// The verified token (cache or signature check), before the revocation check.
    async fn verified_uncached_revocation(
        &self,
        token: &str,
        key: &[u8; 32],
    ) -> Result<Arc<Verified>, AuthError> {
        let Some(cache) = &self.verified else {
            return self.verify(token).await.map(Arc::new);
        };
        if let Some(v) = cache.get(key) {
            if now() < v.expires.saturating_add(self.expect.leeway) {
                return Ok(v);
            }
            cache.invalidate(key);
        }
        let v = Arc::new(self.verify(token).await?);
        cache.insert(*key, v.clone());
        Ok(v)
    }
}

/// 401 for any bearer problem; the reason goes to the log only.
fn rejected() -> AuthError {
    AuthError::Rejected {
        code: "GATEWAY::INVALID_TOKEN",
        message: "The bearer token is invalid, expired or not issued for this gateway.".into(),
    }
}

#[async_trait]
impl Authenticator for BearerAuthenticator {
    fn name(&self) -> &'static str {
        "bearer"
    }

    async fn authenticate(&self, req: &RequestView<'_>) -> Result<Option<Principal>, AuthError> {
        let mut values = req.headers.get_all(http::header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(rejected());
        }
        let value = value.to_str().map_err(|_| rejected())?;
        let Some((scheme, token)) = value.split_once(' ') else {
            return Err(rejected());
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            // Another scheme (Basic, ...) is not ours; the chain decides.
            return Ok(None);
        }
        let v = self.verified(token.trim()).await?;
        let id = &v.identity;
        Ok(Some(Principal {
            kind: PrincipalKind::User,
            subject: id.subject.clone(),
            team: id.team.clone(),
            groups: id.groups.clone(),
            role: None,
            method: AuthMethod::Bearer,
            key_name: None,
        }))
    }
}
