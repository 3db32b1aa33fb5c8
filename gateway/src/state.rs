//! [`Gateway`]: everything the request pipeline and the gateway's own routes share,
//! built once at start-up by [`crate::server`].

use crate::backend_client::BackendClient;
use crate::http::upstream::Upstream;
use crate::routes::console::Console;
use gatehouse_audit::AuditSink;
use gatehouse_authn::oidc::{OidcLogin, SessionStore};
use gatehouse_authn::Chain;
use gatehouse_authz::PolicyStore;
use gatehouse_scope::ScopeKeys;
use http::HeaderName;
use std::sync::Arc;

/// OIDC login and sessions, shared by the auth routes, the CSRF check and the
/// authenticators.
pub struct OidcRuntime {
    /// Login flow.
    pub login: Arc<OidcLogin>,
    /// Sessions.
    pub sessions: Arc<SessionStore>,
    /// `Secure` on cookies.
    pub secure: bool,
    /// Whether the OpenID provider's discovery has succeeded (for `/readyz`).
    pub discovered: Arc<std::sync::atomic::AtomicBool>,
}

/// The gateway's shared state.
pub struct Gateway {
    /// Authenticator chain.
    pub chain: Chain,
    /// Role table, hot-reloaded.
    pub policy: Arc<PolicyStore>,
    /// The backend: address, timeouts, per-thread connection pool.
    pub upstream: Upstream,
    /// Key added for requests the gateway authenticated itself (a sensitive header
    /// value, made once).
    pub upstream_key: Option<http::HeaderValue>,
    /// The gateway's own backend calls: scope lookups and health.
    pub backend: BackendClient,
    /// Audit sink (the `[audit]` sink and the durable store writer).
    pub audit: Arc<dyn AuditSink>,
    /// The governance store.
    pub store: Arc<dyn gatehouse_store::GovernanceStore>,
    /// The store's change log (the gateway publishes sandbox scope changes to it).
    pub changes: Arc<dyn gatehouse_store::ChangeLog>,
    /// Personal `gk_` keys (shares its cache with the chain's copy).
    pub personal_keys: crate::personal_keys::PersonalKeyAuthenticator,
    /// RBAC bindings from the store (checked before the static `[authz]` table).
    pub bindings: Arc<crate::bindings::BindingsCache>,
    /// The durable audit writer (queue and spool depth).
    pub durable: Arc<gatehouse_store::DurableAuditSink>,
    /// Reserved metadata keys.
    pub keys: ScopeKeys,
    /// Platform controllers and their allowlists (`[platform]`).
    pub platform: crate::platform::Platform,
    /// Identity headers never forwarded as sent.
    pub identity_headers: Vec<HeaderName>,
    /// Largest create/patch body parsed.
    pub max_body: usize,
    /// Largest response rewritten.
    pub max_response: usize,
    /// Public base URL for server-proxy endpoints.
    pub public_url: Option<String>,
    /// Sandbox origins and their hand-offs, when `server.sandbox_domain` is set.
    pub sandbox_origins: Option<crate::sandbox_origin::SandboxOrigins>,
    /// Signs the verified-caller header of proxied requests.
    pub caller: crate::pipeline::caller::CallerAssertions,
    /// The names the gateway answers to (never reflect an unknown `Host`).
    pub hosts: crate::hosts::PublicHosts,
    /// OIDC login and sessions, when configured.
    pub oidc: Option<Arc<OidcRuntime>>,
    /// The console bundle.
    pub console: Arc<Console>,
    /// `auth.mode` as configured (for `/auth/config`).
    pub mode_name: &'static str,
    /// Origins allowed to call the API from a browser (CORS, never with credentials).
    pub cors: crate::cors::Cors,
    /// The gateway's own cookie names, never forwarded.
    pub own_cookies: Vec<String>,
    /// Sandbox identities (tokens, push, refresh, Kubernetes pull), when
    /// `[sandbox_identity]` is configured.
    pub sandbox_identity: Option<Arc<crate::sandbox_identity::SandboxIdentity>>,
    /// Prometheus metrics (served on the admin listener).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The lifecycle event hub (`None` when `[events] source = "off"`).
    pub events: Option<Arc<crate::events::EventHub>>,
    /// Idempotent create, quotas and rate limits.
    pub limits: Arc<crate::limits::Limits>,
}
