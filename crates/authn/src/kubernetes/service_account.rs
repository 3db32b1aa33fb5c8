//! [`ServiceAccountAuthenticator`]: a platform controller calling with a Kubernetes
//! ServiceAccount token (`Authorization: Bearer <jwt>`), checked by the API server's
//! TokenReview ([`TokenReviewer`]).
//!
//! - **Mine or not.** Only the token's *unverified* payload is peeked at, to decide
//!   whether it is a ServiceAccount token at all: it must carry the `kubernetes.io` claim
//!   object (every projected / TokenRequest token does) and, when an `issuer` is
//!   configured, that `iss`. Anything else (an OIDC access token, a sandbox token, an
//!   opaque string) is **not mine** (`Ok(None)`) and goes on down the chain. Nothing in
//!   the peeked claims is trusted: the API server decides.
//! - **Verified.** The token is reviewed for the configured audience; the API server
//!   names the ServiceAccount (`system:serviceaccount:<ns>:<name>`). Invalid, expired,
//!   revoked or meant for another audience: **401** `GATEWAY::INVALID_SERVICE_ACCOUNT_TOKEN`.
//!   A valid ServiceAccount no controller lists: **403** `GATEWAY::NOT_A_PLATFORM_CONTROLLER`.
//!   The API server unreachable or timing out: **503** (fail closed, never let through).
//! - **Cached.** A review's answer is remembered by the SHA-256 of the token (never the
//!   token) for at most `cache_ttl`, and never past the token's `exp` (read after the API
//!   server vouched for the token, so it is authentic): automation repeating one token
//!   pays one TokenReview, not one per request. Concurrent first requests with one token
//!   share one review. Refusals are remembered for [`REFUSAL_TTL`] only, so a stream of
//!   bad tokens does not become a stream of reviews; an unavailable API server is not
//!   remembered at all.
//!
//! The principal is [`PrincipalKind::Controller`] with subject
//! `system:serviceaccount:<ns>:<name>`, method [`AuthMethod::ServiceAccount`], the fixed
//! role from config and `key_name` = the controller's name (what the gateway's
//! `[[platform.controllers]]` entry is called), exactly what a controller's named key
//! yields apart from the subject and method.

use super::token_review::{ReviewError, TokenReviewer};
use crate::authenticator::{Authenticator, RequestView};
use crate::error::AuthError;
use crate::principal::{AuthMethod, Principal, PrincipalKind};
use crate::sandbox_token::bearer;
use async_trait::async_trait;
use moka::future::Cache;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Error code of a ServiceAccount token the API server does not vouch for (401).
pub const INVALID_SERVICE_ACCOUNT_TOKEN: &str = "GATEWAY::INVALID_SERVICE_ACCOUNT_TOKEN";
/// Error code of a valid ServiceAccount that is no platform controller (403).
pub const NOT_A_PLATFORM_CONTROLLER: &str = "GATEWAY::NOT_A_PLATFORM_CONTROLLER";
/// How long a refused token is remembered.
pub const REFUSAL_TTL: Duration = Duration::from_secs(10);
/// Most review answers remembered.
const CACHE_CAPACITY: u64 = 10_000;

/// What [`ServiceAccountAuthenticator`] needs to know.
#[derive(Debug, Clone)]
pub struct ServiceAccountSettings {
    /// The audience the token must carry (checked by TokenReview).
    pub audience: String,
    /// When set, only tokens whose (unverified) `iss` is this are looked at.
    pub issuer: Option<String>,
    /// `namespace/name` of a ServiceAccount → the controller it authenticates as.
    pub controllers: HashMap<String, String>,
    /// The role every controller principal gets.
    pub role: String,
    /// Longest a review answer is remembered.
    pub cache_ttl: Duration,
}

/// The unverified claims peeked at to decide "mine / not mine", and the `exp` bounding
/// the cache once the API server vouched for the token.
#[derive(Debug, serde::Deserialize)]
struct Peek {
    iss: Option<String>,
    exp: Option<u64>,
    #[serde(rename = "kubernetes.io")]
    kubernetes: Option<serde::de::IgnoredAny>,
}

/// A remembered review answer.
#[derive(Debug, Clone)]
struct Verdict {
    /// The controller principal, or the refusal.
    outcome: Result<Principal, AuthError>,
    /// How long it is remembered.
    ttl: Duration,
    /// When it stops being used (checked on read as well).
    until: Instant,
}

/// Per-entry lifetime: each verdict's own.
struct VerdictExpiry;

impl moka::Expiry<[u8; 32], Arc<Verdict>> for VerdictExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Arc<Verdict>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Authenticates platform controllers by ServiceAccount token.
pub struct ServiceAccountAuthenticator {
    reviewer: TokenReviewer,
    settings: ServiceAccountSettings,
    audiences: [String; 1],
    cache: Cache<[u8; 32], Arc<Verdict>>,
}

impl std::fmt::Debug for ServiceAccountAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountAuthenticator")
            .field("audience", &self.settings.audience)
            .field("issuer", &self.settings.issuer)
            .field("controllers", &self.settings.controllers)
            .finish_non_exhaustive()
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn invalid() -> AuthError {
    AuthError::Rejected {
        code: INVALID_SERVICE_ACCOUNT_TOKEN,
        message: "The ServiceAccount token is invalid, expired or not meant for this gateway."
            .into(),
    }
}

impl ServiceAccountAuthenticator {
    /// An authenticator asking `reviewer`.
    pub fn new(reviewer: TokenReviewer, settings: ServiceAccountSettings) -> Self {
        Self {
            audiences: [settings.audience.clone()],
            reviewer,
            settings,
            cache: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(VerdictExpiry)
                .build(),
        }
    }

    /// The peeked claims of `token` when it looks like a ServiceAccount token this
    /// authenticator should decide; `None` when it is not its business.
    fn peek(&self, token: &str) -> Option<Peek> {
        let p: Peek = jsonwebtoken::dangerous::insecure_decode_claims(token).ok()?;
        p.kubernetes.as_ref()?;
        match &self.settings.issuer {
            Some(iss) if p.iss.as_deref() != Some(iss.as_str()) => None,
            _ => Some(p),
        }
    }

    /// Asks the API server about `token` and turns its answer into a verdict; `Err` only
    /// when the API server could not be asked (not remembered).
    async fn review(&self, token: &str, exp: Option<u64>) -> Result<Arc<Verdict>, AuthError> {
        let refused = |outcome: AuthError| {
            Ok(Arc::new(Verdict {
                outcome: Err(outcome),
                ttl: REFUSAL_TTL,
                until: Instant::now() + REFUSAL_TTL,
            }))
        };
        let account = match self.reviewer.review(token, &self.audiences).await {
            Ok(a) => a,
            Err(e @ (ReviewError::Unavailable(_) | ReviewError::Config(_))) => {
                tracing::warn!(error = %e, "TokenReview of a controller token failed");
                return Err(AuthError::Unavailable {
                    dependency: "Kubernetes API server",
                });
            }
            Err(e) => {
                tracing::info!(error = %e, "ServiceAccount token refused");
                return refused(invalid());
            }
        };
        let sa = format!("{}/{}", account.namespace, account.service_account);
        let Some(controller) = self.settings.controllers.get(&sa) else {
            tracing::info!(service_account = %sa, "ServiceAccount is not a platform controller");
            return refused(AuthError::Forbidden {
                code: NOT_A_PLATFORM_CONTROLLER,
                message: format!(
                    "ServiceAccount {sa} is not a platform controller of this gateway."
                ),
            });
        };
        // The API server vouched for the token, so its `exp` is authentic now.
        let left = exp.map_or(self.settings.cache_ttl, |e| {
            Duration::from_secs(e.saturating_sub(now_unix()))
        });
        let ttl = left.min(self.settings.cache_ttl);
        tracing::info!(
            service_account = %sa,
            controller = %controller,
            cache_seconds = ttl.as_secs(),
            "platform controller authenticated by TokenReview"
        );
        Ok(Arc::new(Verdict {
            outcome: Ok(Principal {
                kind: PrincipalKind::Controller,
                subject: format!(
                    "system:serviceaccount:{}:{}",
                    account.namespace, account.service_account
                ),
                team: None,
                groups: Vec::new(),
                role: Some(self.settings.role.clone()),
                method: AuthMethod::ServiceAccount,
                key_name: Some(controller.clone()),
            }),
            ttl,
            until: Instant::now() + ttl,
        }))
    }

    /// The verdict on `token`: remembered, or one review shared by concurrent callers.
    async fn verdict(&self, token: &str, exp: Option<u64>) -> Result<Arc<Verdict>, AuthError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(v) = self.cache.get(&key).await {
            if Instant::now() < v.until {
                return Ok(v);
            }
            self.cache.invalidate(&key).await;
        }
        self.cache
            .try_get_with(key, self.review(token, exp))
            .await
            .map_err(|e| (*e).clone())
    }
}

#[async_trait]
impl Authenticator for ServiceAccountAuthenticator {
    fn name(&self) -> &'static str {
        "service_account"
    }

    async fn authenticate(&self, req: &RequestView<'_>) -> Result<Option<Principal>, AuthError> {
        let Some(token) = bearer(req.headers) else {
            return Ok(None);
        };
        let Some(peek) = self.peek(token) else {
            return Ok(None);
        };
        let v = self.verdict(token, peek.exp).await?;
        v.outcome.clone().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsigned(claims: serde_json::Value) -> String {
        let enc =
            |v: &serde_json::Value| data_encoding::BASE64URL_NOPAD.encode(v.to_string().as_bytes());
        format!(
            "{}.{}.c2ln",
            enc(&serde_json::json!({"alg": "RS256", "kid": "k"})),
            enc(&claims)
        )
    }

    async fn authenticator(issuer: Option<&str>) -> ServiceAccountAuthenticator {
        // A client for a closed port: these tests never get as far as a review.
        let cfg = kube::Config::new("https://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(cfg).unwrap();
        ServiceAccountAuthenticator::new(
            TokenReviewer::new(client, Duration::from_millis(200)),
            ServiceAccountSettings {
                audience: "gatehouse".into(),
                issuer: issuer.map(str::to_owned),
                controllers: HashMap::from([("platform/onb".into(), "onb".into())]),
                role: "platform_controller".into(),
                cache_ttl: Duration::from_secs(60),
            },
        )
    }

    #[tokio::test]
    async fn only_service_account_tokens_are_mine() {
        let a = authenticator(Some("https://kubernetes.default.svc")).await;
        let sa = unsigned(serde_json::json!({
            "iss": "https://kubernetes.default.svc",
            "sub": "system:serviceaccount:platform:onb",
            "kubernetes.io": {"namespace": "platform"},
        }));
        assert!(a.peek(&sa).is_some());
        let oidc = unsigned(serde_json::json!({"iss": "https://idp", "sub": "alice"}));
        assert!(a.peek(&oidc).is_none());
        let other_cluster = unsigned(serde_json::json!({
            "iss": "https://elsewhere", "kubernetes.io": {"namespace": "x"},
        }));
        assert!(a.peek(&other_cluster).is_none());
        assert!(a.peek("opaque").is_none());
        assert!(a.peek("a.b.c").is_none());
        let any_issuer = authenticator(None).await;
        assert!(any_issuer.peek(&other_cluster).is_some());
    }

    #[tokio::test]
    async fn an_unreachable_api_server_is_503_and_not_remembered() {
        let a = authenticator(None).await;
        let sa = unsigned(serde_json::json!({"kubernetes.io": {"namespace": "platform"}}));
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {sa}").parse().unwrap(),
        );
        let req = RequestView {
            peer: None,
            headers: &headers,
        };
        for _ in 0..2 {
            let e = a.authenticate(&req).await.unwrap_err();
            assert_eq!(e.status(), 503);
            assert!(!e.message().contains(&sa));
        }
        a.cache.run_pending_tasks().await;
        assert_eq!(a.cache.entry_count(), 0);
    }
}
