//! Sandbox identities: code running inside a sandbox calls the gateway as *that sandbox*
//! with a short-lived token the gateway mints (see README "Sandbox identities").
//!
//! - [`SandboxIdentity::mint`]: an EdDSA JWT from the key ring ([`crate::signing`]):
//!   `typ` `gatehouse-sandbox+jwt`, `kid`, `iss`/`aud` from `[sandbox_identity]`, `sub`
//!   the sandbox id, `iat`, `exp`, `jti`. Checked by
//!   [`gatehouse_authn::SandboxTokenAuthenticator`].
//! - Docker bootstrap (push, [`push`]): after a create through the gateway, the token is
//!   handed to the backend (`PUT /gatehouse/ext/v1/sandboxes/{id}/identity`, backend key),
//!   which writes it into the sandbox; re-pushed before it expires, until the sandbox is
//!   gone.
//! - Refresh and the Kubernetes pull bootstrap: [`crate::routes::sandbox_auth`].

pub mod config;
pub mod push;

use crate::signing::KeyRing;
use crate::signing_key::KeyError;
use gatehouse_authn::kubernetes::TokenReviewer;
use gatehouse_authn::{SandboxClaims, SandboxTokenAuthenticator, SANDBOX_TOKEN_TYP};
use std::sync::Arc;

pub use config::{SandboxIdentityConfig, SandboxKubernetesConfig, SigningConfig};

/// A freshly minted token. `Debug` never shows it.
pub struct Minted {
    /// The compact JWT: hand it only to the sandbox.
    pub token: String,
    /// Its `exp`, Unix seconds.
    pub expires_at: u64,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Minted {
    /// `expiresAt` as RFC 3339.
    pub fn expires_rfc3339(&self) -> String {
        let secs = i64::try_from(self.expires_at).unwrap_or(i64::MAX);
        chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    }
}

/// Everything the sandbox identity routes and the push need.
pub struct SandboxIdentity {
    /// The configuration.
    pub cfg: SandboxIdentityConfig,
    ring: Arc<KeyRing>,
    /// Verifies sandbox tokens (the refresh route re-checks the caller's token).
    pub verifier: SandboxTokenAuthenticator,
    /// TokenReview client, when the Kubernetes pull bootstrap is configured.
    pub reviewer: Option<TokenReviewer>,
    /// Pushes tokens to the backend, when `push` is on.
    pub pusher: Option<push::Pusher>,
}

impl std::fmt::Debug for SandboxIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxIdentity")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl SandboxIdentity {
    /// Sandbox identities signed by `ring`.
    pub fn new(
        cfg: SandboxIdentityConfig,
        ring: Arc<KeyRing>,
        reviewer: Option<TokenReviewer>,
        pusher: Option<push::Pusher>,
    ) -> Self {
        let verifier =
            SandboxTokenAuthenticator::new(ring.clone(), &cfg.issuer, &cfg.audience, &cfg.role);
        Self {
            cfg,
            ring,
            verifier,
            reviewer,
            pusher,
        }
    }

    /// A new token for sandbox `id`; `via` (`push`, `refresh`, `kubernetes`) is logged.
    pub fn mint(&self, id: &str, via: &'static str) -> Result<Minted, KeyError> {
        let now = now_secs();
        let expires_at = now + self.cfg.token_minutes * 60;
        let claims = SandboxClaims {
            iss: self.cfg.issuer.clone(),
            sub: id.to_owned(),
            aud: self.cfg.audience.clone(),
            iat: now,
            exp: expires_at,
            jti: uuid::Uuid::new_v4().simple().to_string(),
        };
        let token = self.ring.sign(SANDBOX_TOKEN_TYP, &claims)?;
        tracing::info!(
            sandbox.id = id,
            via,
            exp = expires_at,
            "sandbox token minted"
        );
        Ok(Minted { token, expires_at })
    }

    /// Starts handing sandbox `id` its token (when `push` is on): now, and again before
    /// each token expires, until the backend says the sandbox is gone.
    pub fn on_created(self: &Arc<Self>, id: &str) {
        if self.pusher.is_some() {
            push::spawn_loop(self.clone(), id.to_owned());
        }
    }
}

/// The sandbox identity service `cfg` asks for: the TokenReview client (Kubernetes pull)
/// and the pusher (Docker push, through the backend key of `upstream`).
pub fn build(
    cfg: &SandboxIdentityConfig,
    ring: Arc<KeyRing>,
    upstream: &crate::config::Upstream,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Arc<SandboxIdentity>> {
    use anyhow::Context;
    let reviewer = match &cfg.kubernetes {
        Some(k) => Some(
            rt.block_on(TokenReviewer::from_kubeconfig(
                k.kubeconfig_path.as_deref(),
                std::time::Duration::from_millis(k.timeout_ms),
            ))
            .context("sandbox_identity.kubernetes")?,
        ),
        None => None,
    };
    let pusher = cfg.push.then(|| {
        if upstream.api_key.is_none() {
            tracing::warn!("sandbox_identity.push without upstream.api_key: the backend will refuse the pushes");
        }
        push::Pusher::new(upstream.clone(), std::time::Duration::from_secs(5))
    });
    Ok(Arc::new(SandboxIdentity::new(
        cfg.clone(),
        ring,
        reviewer,
        pusher,
    )))
}
