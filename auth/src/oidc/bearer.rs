//! `Authorization: Bearer <JWT>` from the configured issuer.

use super::claims::identity;
use super::jwks::{Expect, JwksCache};
use super::OidcConfig;
use crate::authenticator::{Authenticator, RequestView};
use crate::error::AuthError;
use crate::principal::{AuthMethod, Principal, PrincipalKind};
use async_trait::async_trait;
use std::sync::Arc;

/// Validates bearer JWTs: signature (JWKS), allowed algorithms, `iss`, `aud`, `exp`/`nbf`.
#[derive(Debug)]
pub struct BearerAuthenticator {
    jwks: Arc<JwksCache>,
    expect: Expect,
    subject_claim: String,
    team_claim: String,
    groups_claim: String,
}

impl BearerAuthenticator {
    /// A bearer authenticator over `jwks` for the issuer in `cfg`.
    pub fn new(cfg: &OidcConfig, issuer: String, jwks: Arc<JwksCache>) -> Self {
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
            },
            subject_claim: cfg.subject_claim.clone(),
            team_claim: cfg.team_claim.clone(),
            groups_claim: cfg.groups_claim.clone(),
        }
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
        let claims = self
            .jwks
            .verify(token.trim(), &self.expect)
            .await
            .map_err(|e| {
                tracing::info!(reason = %e, "bearer token refused");
                rejected()
            })?;
        let id = identity(
            &claims,
            &self.subject_claim,
            &self.team_claim,
            &self.groups_claim,
        )?;
        Ok(Some(Principal {
            kind: PrincipalKind::User,
            subject: id.subject,
            team: id.team,
            groups: id.groups,
            role: None,
            method: AuthMethod::Bearer,
            key_name: None,
        }))
    }
}
