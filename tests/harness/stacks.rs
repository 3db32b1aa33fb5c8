//! The process stacks the gateway scenarios run against, each started fresh for one test
//! (its own store, role table, audit file and IdP, so a test's counts and audit events are
//! its own). Dropping a stack stops its processes.

use crate::gateway::Gateway;
use crate::idp::{Idp, IdpOptions};
use crate::principals::TRUSTED_PROXY_SECTION;
use crate::upstream::{Upstream, UpstreamOptions};
use crate::{free_port, Backend, BackendOptions};
use anyhow::Result;
use sha2::{Digest, Sha256};

/// The `service_admin` API key of a [`KeyedStack`].
pub const ADMIN_KEY: &str = "gw-admin-key-0123456789";

/// The team-b `operator` API key of a [`KeyedStack`].
pub const TEAMB_KEY: &str = "gw-teamb-bot-key-9876543210";

/// `gatehouse-backend` and a gateway in front of it in `api_key_and_user` mode: identity
/// headers trusted from [`crate::principals::TRUSTED`], API keys [`ADMIN_KEY`]
/// (`ci-admin`, service_admin) and [`TEAMB_KEY`] (`teamb-bot`, operator of team-b), and
/// the backend's own key passed through.
pub struct KeyedStack {
    /// The backend.
    pub backend: Backend,
    /// The gateway.
    pub gw: Gateway,
}

impl KeyedStack {
    /// Starts both processes.
    pub async fn start() -> Result<Self> {
        Self::start_with("").await
    }

    /// [`KeyedStack::start`] with `more` TOML for the gateway (see [`Gateway::start_on`]).
    pub async fn start_with(more: &str) -> Result<Self> {
        let backend = Backend::start(BackendOptions::default()).await?;
        let extra = format!(
            "[auth]\nmode = \"api_key_and_user\"\n\n{TRUSTED_PROXY_SECTION}\n\
             [[auth.api_keys]]\nname = \"ci-admin\"\nsha256 = \"{}\"\nrole = \"service_admin\"\n\n\
             [[auth.api_keys]]\nname = \"teamb-bot\"\nsha256 = \"{}\"\nrole = \"operator\"\nteam = \"team-b\"\n{more}\n",
            hex::encode(Sha256::digest(ADMIN_KEY)),
            hex::encode(Sha256::digest(TEAMB_KEY)),
        );
        let gw = Gateway::start(&backend.url, &backend.api_key, &extra).await?;
        Ok(Self { backend, gw })
    }
}

/// `gatehouse-backend`, the dev IdP and a gateway that logs console users in through the
/// IdP (its redirect, post-logout and back-channel logout URIs registered there).
pub struct OidcStack {
    /// The backend.
    pub backend: Backend,
    /// The gateway.
    pub gw: Gateway,
    /// The IdP.
    pub idp: Idp,
}

impl OidcStack {
    /// Starts the three processes; `oidc_extra` is TOML appended to `[oidc]`, `sections`
    /// more sections (e.g. `[oidc.session]`, `[console]`).
    pub async fn start(oidc_extra: &str, sections: &str) -> Result<Self> {
        Self::start_full(BackendOptions::default(), oidc_extra, sections, None).await
    }

    /// Like [`OidcStack::start`] with the backend's options (e.g. sandboxes running the
    /// in-sandbox agent, for the console's terminal and live metrics).
    pub async fn start_with(
        backend: BackendOptions,
        oidc_extra: &str,
        sections: &str,
    ) -> Result<Self> {
        Self::start_full(backend, oidc_extra, sections, None).await
    }

    /// [`OidcStack::start`] with more IdP users (see [`IdpOptions::extra_users`]).
    pub async fn start_with_users(
        oidc_extra: &str,
        sections: &str,
        users: Option<serde_json::Value>,
    ) -> Result<Self> {
        Self::start_full(BackendOptions::default(), oidc_extra, sections, users).await
    }

    /// The stack with the backend's options and more IdP users.
    pub async fn start_full(
        backend: BackendOptions,
        oidc_extra: &str,
        sections: &str,
        users: Option<serde_json::Value>,
    ) -> Result<Self> {
        let backend = Backend::start(backend).await?;
        let port = free_port();
        let mut opts = IdpOptions::for_gateway(&format!("http://127.0.0.1:{port}"));
        opts.extra_users = users;
        let idp = Idp::start(opts).await?;
        let extra = format!(
            "[oidc]\nissuer = \"{issuer}\"\nclient_id = \"{client}\"\nclient_secret = \"{secret}\"\n\
             redirect_url = \"{{gateway}}/auth/callback\"\n{oidc_extra}\n\n{sections}\n",
            issuer = idp.issuer,
            client = idp.client_id,
            secret = idp.client_secret,
        );
        let gw = Gateway::start_on(port, &backend.url, &backend.api_key, &extra).await?;
        Ok(Self { backend, gw, idp })
    }
}

/// The real upstream `opensandbox-server` and a gateway in front of it trusting identity
/// headers from [`crate::principals::TRUSTED`].
pub struct UpstreamStack {
    /// The upstream server.
    pub up: Upstream,
    /// The gateway.
    pub gw: Gateway,
}

impl UpstreamStack {
    /// Starts both processes.
    pub async fn start() -> Result<Self> {
        let up = Upstream::start(UpstreamOptions::default()).await?;
        let gw = Gateway::start(&up.url, &up.api_key, TRUSTED_PROXY_SECTION).await?;
        Ok(Self { up, gw })
    }
}
