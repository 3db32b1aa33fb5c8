//! `SIGHUP`: reload the configuration file, the named API keys and the role table while
//! serving. The new file is validated and cross-checked first; on any error the running
//! configuration stays in force and the error is logged. Settings that shape listeners,
//! threads or the upstream pool need a restart (or a graceful upgrade); a reload that
//! changes them says so.

use crate::check::cross_check;
use crate::config::{GatewayConfig, Overrides};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use gatehouse_authn::{
    ApiKeyAuthenticator, AuthError, Authenticator, Principal, RequestView, SecretString,
};
use gatehouse_authz::{PolicyStore, RoleTable};
use std::path::PathBuf;
use std::sync::Arc;

/// The API-key authenticator behind a swappable pointer, so a reload replaces the named
/// keys atomically; requests in flight finish with the keys they started with.
pub struct ReloadableKeys {
    current: ArcSwap<ApiKeyAuthenticator>,
}

impl ReloadableKeys {
    /// Starts with `keys`.
    pub fn new(keys: ApiKeyAuthenticator) -> Arc<Self> {
        Arc::new(Self {
            current: ArcSwap::from_pointee(keys),
        })
    }

    /// Replaces the keys.
    pub fn replace(&self, keys: ApiKeyAuthenticator) {
        self.current.store(Arc::new(keys));
    }
}

/// The chain's handle on [`ReloadableKeys`].
pub struct KeysHandle(pub Arc<ReloadableKeys>);

#[async_trait]
impl Authenticator for KeysHandle {
    fn name(&self) -> &'static str {
        "api_key"
    }

    async fn authenticate(&self, req: &RequestView<'_>) -> Result<Option<Principal>, AuthError> {
        let keys = self.0.current.load_full();
        keys.authenticate(req).await
    }
}

/// What a reload needs to rebuild.
pub struct Reloader {
    /// The configuration file.
    pub path: PathBuf,
    /// Environment and flag overrides, applied again on every reload.
    pub env: Overrides,
    /// Flag overrides.
    pub cli: Overrides,
    /// The configuration in force.
    pub running: GatewayConfig,
    /// The named keys.
    pub keys: Arc<ReloadableKeys>,
    /// The role table.
    pub policy: Arc<PolicyStore>,
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The role table is invalid.
    #[error(transparent)]
    Policy(#[from] gatehouse_authz::PolicyError),
    /// The keys are invalid.
    #[error("auth.api_keys: {0}")]
    Keys(#[from] gatehouse_authn::ConfigError),
}

impl Reloader {
    /// Loads and checks everything, then swaps keys and role table; returns the keys of
    /// settings that changed but need a restart.
    pub fn reload(&mut self) -> Result<Vec<&'static str>, ReloadError> {
        let cfg = GatewayConfig::load(&self.path, self.env.clone(), self.cli.clone())?;
        let table = RoleTable::load(&cfg.policy.path)?;
        cross_check(&cfg, &table)?;
        let upstream = cfg.upstream()?;
        let backend_key = if cfg.auth.backend_key_passthrough {
            upstream.api_key.clone().map(SecretString::new)
        } else {
            None
        };
        let env = |name: &str| std::env::var(name).ok();
        let keys = ApiKeyAuthenticator::new(backend_key, &cfg.auth.api_keys, &env)?;
        let mut restart = Vec::new();
        let (old, new) = (&self.running, &cfg);
        if old.server.listen != new.server.listen {
            restart.push("server.listen");
        }
        if old.server.threads != new.server.threads {
            restart.push("server.threads");
        }
        if old.upstream.url != new.upstream.url {
            restart.push("upstream.url");
        }
        if old.admin.listen != new.admin.listen {
            restart.push("admin.listen");
        }
        if old.oidc.is_some() != new.oidc.is_some() {
            restart.push("oidc");
        }
        self.keys.replace(keys);
        self.policy.replace(table);
        self.running = cfg;
        Ok(restart)
    }
}

/// Reloads on every `SIGHUP` until the process ends. Runs on the background runtime.
pub async fn on_sighup(mut reloader: Reloader) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot handle SIGHUP; reload by restarting");
            return;
        }
    };
    while hup.recv().await.is_some() {
        match reloader.reload() {
            Ok(restart) if restart.is_empty() => tracing::info!(
                config = %reloader.path.display(),
                "SIGHUP: configuration, API keys and role table reloaded"
            ),
            Ok(restart) => tracing::warn!(
                config = %reloader.path.display(),
                needs_restart = ?restart,
                "SIGHUP: API keys and role table reloaded; these changed settings take effect after a restart"
            ),
            Err(e) => tracing::error!(
                config = %reloader.path.display(),
                error = %e,
                "SIGHUP: reload refused; the running configuration stays in force"
            ),
        }
    }
}
