//! The gateway's own endpoints, resolved once per request by [`OwnRoute::resolve`] and
//! answered by [`serve`]; they are never forwarded to the backend.
//!
//! | route | caller | module |
//! |---|---|---|
//! | `/livez`, `/readyz`, `/healthz` | anyone | [`health`] |
//! | `GET /`, `GET/HEAD /console/*` | anyone | [`console`] |
//! | `GET /auth/config`, `/auth/login`, `/auth/callback`, `POST /auth/backchannel-logout` | anyone | [`auth`] |
//! | `GET /auth/me`, `POST /auth/logout` | authenticated (after the chain and CSRF) | [`auth`] |
//! | `POST /auth/sandbox-handoff` | authenticated (after the chain and CSRF) | [`handoff`] |
//! | anything else under `/auth` | 404 | |
//! | `GET /.well-known/jwks.json` | anyone | the signing key ring ([`crate::signing`]) |
//! | `POST /auth/sandbox/refresh` | a sandbox token (after the chain) | [`sandbox_auth`] |
//! | `POST /auth/sandbox/token` | a projected ServiceAccount token (Kubernetes pull) | [`sandbox_auth`] |
//! | `GET /gatehouse/v1/audit` | role table: `audit:read` | [`audit_api`] |
//! | `POST`/`GET /gatehouse/v1/keys`, `DELETE /gatehouse/v1/keys/{id}` | role table: `apikey:manage` | [`keys`] |
//! | `GET`/`PUT /gatehouse/v1/bindings`, `DELETE /gatehouse/v1/bindings/{kind}/{name}` | role table: `binding:read`/`binding:write` | [`bindings`] |
//! | `GET /gatehouse/v1/events` (Server-Sent Events) | role table: `events:read` | [`events`] |
//! | `GET /gatehouse/v1/quotas`, `PUT`/`DELETE /gatehouse/v1/quotas/teams/{team}` | role table: `quota:read`/`quota:write` | [`quotas`] |
//!
//! The `/gatehouse/v1` routes are *governed* ([`OwnRoute::governed`]): after
//! authentication the role table must allow them (entries with a gateway action in
//! `policies/roles.toml`), exactly like API routes; a new one needs an entry there.

pub mod audit_api;
pub mod auth;
pub mod bindings;
pub mod console;
pub mod events;
pub mod handoff;
pub mod health;
pub mod keys;
pub mod quotas;
pub mod sandbox_auth;

use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::http::inbound::Inbound;
use crate::reply::Reply;
use crate::state::Gateway;

/// One of the gateway's own endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnRoute {
    /// `/healthz` (any method).
    Health,
    /// `/livez` (any method).
    Livez,
    /// `/readyz` (any method).
    Readyz,
    /// `GET /`: to the console.
    Root,
    /// `GET`/`HEAD` `/console` and below.
    Console,
    /// `GET /auth/config`.
    AuthConfig,
    /// `GET /auth/login`.
    Login,
    /// `GET /auth/callback`.
    Callback,
    /// `POST /auth/backchannel-logout`.
    BackchannelLogout,
    /// `GET /auth/me` (authenticated).
    Me,
    /// `POST /auth/logout` (session).
    Logout,
    /// Any other path under `/auth`.
    UnknownAuth,
    /// `GET /.well-known/jwks.json`: the key of the verified-caller header.
    Jwks,
    /// `POST /auth/sandbox-handoff` (authenticated): a hand-off to a sandbox origin.
    Handoff,
    /// `GET /gatehouse/v1/audit` (authenticated).
    AuditQuery,
    /// `POST /gatehouse/v1/keys` (authenticated).
    KeyCreate,
    /// `GET /gatehouse/v1/keys` (authenticated).
    KeyList,
    /// `DELETE /gatehouse/v1/keys/{id}` (authenticated).
    KeyRevoke,
    /// `GET /gatehouse/v1/bindings` (service_admin).
    BindingList,
    /// `PUT /gatehouse/v1/bindings` (service_admin).
    BindingPut,
    /// `DELETE /gatehouse/v1/bindings/{kind}/{name}` (service_admin).
    BindingDelete,
    /// `GET /gatehouse/v1/events` (authenticated): the lifecycle event stream.
    Events,
    /// `POST /auth/sandbox/refresh` (a sandbox token): a new token while the sandbox exists.
    SandboxRefresh,
    /// `POST /auth/sandbox/token` (a ServiceAccount token): the Kubernetes pull bootstrap.
    SandboxToken,
    /// `GET /gatehouse/v1/quotas` (authenticated): the caller's quotas and use.
    QuotaMine,
    /// `PUT /gatehouse/v1/quotas/teams/{team}` (service_admin).
    QuotaPut,
    /// `DELETE /gatehouse/v1/quotas/teams/{team}` (service_admin).
    QuotaDelete,
}

impl OwnRoute {
    /// The route for a method and canonical path; `None` when the path belongs to the API.
    pub fn resolve(method: &http::Method, path: &str) -> Option<OwnRoute> {
        use http::Method;
        let route = match (method, path) {
            (_, "/healthz") => OwnRoute::Health,
            (_, "/livez") => OwnRoute::Livez,
            (_, "/readyz") => OwnRoute::Readyz,
            (&Method::GET, "/") => OwnRoute::Root,
            (&Method::GET | &Method::HEAD, p) if p == "/console" || p.starts_with("/console/") => {
                OwnRoute::Console
            }
            (&Method::GET, "/auth/config") => OwnRoute::AuthConfig,
            (&Method::GET, "/auth/login") => OwnRoute::Login,
            (&Method::GET, "/auth/callback") => OwnRoute::Callback,
            (&Method::POST, "/auth/backchannel-logout") => OwnRoute::BackchannelLogout,
            (&Method::GET, "/auth/me") => OwnRoute::Me,
            (&Method::POST, "/auth/logout") => OwnRoute::Logout,
            (&Method::POST, "/auth/sandbox-handoff") => OwnRoute::Handoff,
            (&Method::POST, "/auth/sandbox/refresh") => OwnRoute::SandboxRefresh,
            (&Method::POST, "/auth/sandbox/token") => OwnRoute::SandboxToken,
            (_, p) if p == "/auth" || p.starts_with("/auth/") => OwnRoute::UnknownAuth,
            (&Method::GET, "/.well-known/jwks.json") => OwnRoute::Jwks,
            (&Method::GET | &Method::HEAD, "/gatehouse/v1/audit") => OwnRoute::AuditQuery,
            (&Method::POST, "/gatehouse/v1/keys") => OwnRoute::KeyCreate,
            (&Method::GET, "/gatehouse/v1/keys") => OwnRoute::KeyList,
            (&Method::DELETE, p) if p.starts_with("/gatehouse/v1/keys/") => OwnRoute::KeyRevoke,
            (&Method::GET, "/gatehouse/v1/bindings") => OwnRoute::BindingList,
            (&Method::PUT, "/gatehouse/v1/bindings") => OwnRoute::BindingPut,
            (&Method::DELETE, p) if p.starts_with("/gatehouse/v1/bindings/") => {
                OwnRoute::BindingDelete
            }
            (&Method::GET | &Method::HEAD, "/gatehouse/v1/events") => OwnRoute::Events,
            (&Method::GET, "/gatehouse/v1/quotas") => OwnRoute::QuotaMine,
            (&Method::PUT, p) if p.starts_with(quotas::TEAM_PREFIX) => OwnRoute::QuotaPut,
            (&Method::DELETE, p) if p.starts_with(quotas::TEAM_PREFIX) => OwnRoute::QuotaDelete,
            _ => return None,
        };
        Some(route)
    }

    /// Who may call the route and what it does, for `gatehouse policy explain`.
    pub fn describe(self) -> &'static str {
        match self {
            OwnRoute::Health => "health (compatibility): anyone; 200 when the backend answers",
            OwnRoute::Livez => "liveness probe: anyone; always 200 while the process serves",
            OwnRoute::Readyz => "readiness probe: anyone; 200 when backend and IdP are ready",
            OwnRoute::Root => "redirect to the console: anyone",
            OwnRoute::Console => "the web console's files: anyone",
            OwnRoute::AuthConfig | OwnRoute::Login | OwnRoute::Callback => {
                "OIDC login flow: anyone"
            }
            OwnRoute::BackchannelLogout => "OIDC back-channel logout: the IdP (signed token)",
            OwnRoute::Me => "the caller's identity and permissions: any authenticated caller",
            OwnRoute::Logout => "ends the session: any session caller (CSRF-checked)",
            OwnRoute::Jwks => "the signing key ring's public keys (JWKS): anyone",
            OwnRoute::SandboxRefresh => {
                "sandbox token refresh: a sandbox token, while its sandbox exists"
            }
            OwnRoute::SandboxToken => {
                "sandbox token for a pod-bound ServiceAccount token (TokenReview): anyone"
            }
            OwnRoute::Handoff => {
                "hand-off to a sandbox origin: callers with sandbox:proxy on that sandbox"
            }
            OwnRoute::AuditQuery => "audit query: the role table's audit:read",
            OwnRoute::KeyCreate | OwnRoute::KeyList | OwnRoute::KeyRevoke => {
                "personal API keys: the role table's apikey:manage (one's own keys)"
            }
            OwnRoute::BindingList | OwnRoute::BindingPut | OwnRoute::BindingDelete => {
                "RBAC bindings: the role table's binding:read / binding:write"
            }
            OwnRoute::Events => {
                "lifecycle event stream (SSE): the role table's events:read, scoped like lists"
            }
            OwnRoute::QuotaMine => "one's own quotas and use: the role table's quota:read",
            OwnRoute::QuotaPut | OwnRoute::QuotaDelete => {
                "a team's quota override: the role table's quota:write"
            }
            OwnRoute::UnknownAuth => "no such gateway route: 404",
        }
    }

    /// Whether the gateway answers the route (every caller allowed to reach it gets an
    /// answer); `false` only for [`OwnRoute::UnknownAuth`].
    pub fn exists(self) -> bool {
        self != OwnRoute::UnknownAuth
    }

    /// Whether the role table decides who may call the route: it needs an entry in
    /// `policies/roles.toml` with a gateway action (`audit:read`, `apikey:manage`,
    /// `binding:read`, `binding:write`); without one it answers 404.
    pub fn governed(self) -> bool {
        matches!(
            self,
            OwnRoute::AuditQuery
                | OwnRoute::KeyCreate
                | OwnRoute::KeyList
                | OwnRoute::KeyRevoke
                | OwnRoute::BindingList
                | OwnRoute::BindingPut
                | OwnRoute::BindingDelete
                | OwnRoute::Events
                | OwnRoute::QuotaMine
                | OwnRoute::QuotaPut
                | OwnRoute::QuotaDelete
        )
    }

    /// Whether the route is answered only after authentication (and the CSRF check):
    /// every governed route, and the caller's own session and sandbox-token routes.
    pub fn needs_caller(self) -> bool {
        self.governed()
            || matches!(
                self,
                OwnRoute::Me | OwnRoute::Logout | OwnRoute::Handoff | OwnRoute::SandboxRefresh
            )
    }
}

/// Answers `route`. Errors are answered in the API's error shape by the caller.
pub async fn serve(
    gw: &Gateway,
    route: OwnRoute,
    req: &mut Inbound,
    ctx: &mut RequestCtx,
) -> Result<Reply, GatewayError> {
    match route {
        OwnRoute::Health => Ok(health::healthz(gw, ctx).await),
        OwnRoute::Livez => Ok(health::livez()),
        OwnRoute::Readyz => Ok(health::readyz(gw, ctx).await),
        OwnRoute::Root => Ok(Reply::redirect("/console/")),
        OwnRoute::Console => console::serve(gw, req, ctx),
        OwnRoute::AuthConfig => Ok(auth::config(gw)),
        OwnRoute::Login => auth::login(gw, req, ctx).await,
        OwnRoute::Callback => auth::callback(gw, req, ctx).await,
        OwnRoute::BackchannelLogout => auth::backchannel_logout(gw, req, ctx).await,
        OwnRoute::Me => auth::me(gw, req, ctx).await,
        OwnRoute::Logout => auth::logout(gw, req, ctx).await,
        OwnRoute::Handoff => handoff::handoff(gw, req, ctx).await,
        OwnRoute::SandboxRefresh => sandbox_auth::refresh(gw, req, ctx).await,
        OwnRoute::SandboxToken => sandbox_auth::exchange(gw, req, ctx).await,
        OwnRoute::Jwks => Ok(Reply {
            status: 200,
            headers: vec![
                ("content-type", "application/jwk-set+json".into()),
                ("cache-control", "max-age=60".into()),
            ],
            body: gw.caller.key().jwks(),
        }),
        OwnRoute::AuditQuery => audit_api::query(gw, req, ctx).await,
        OwnRoute::KeyCreate => keys::create(gw, req, ctx).await,
        OwnRoute::KeyList => keys::list(gw, req, ctx).await,
        OwnRoute::KeyRevoke => {
            let id = ctx
                .path
                .strip_prefix("/gatehouse/v1/keys/")
                .unwrap_or_default()
                .to_owned();
            keys::revoke(gw, &id, ctx).await
        }
        OwnRoute::BindingList => bindings::list(gw).await,
        OwnRoute::BindingPut => bindings::put(gw, req, ctx).await,
        OwnRoute::BindingDelete => {
            let rest = ctx
                .path
                .strip_prefix("/gatehouse/v1/bindings/")
                .unwrap_or_default()
                .to_owned();
            bindings::delete(gw, &rest, ctx).await
        }
        OwnRoute::Events => events::stream(gw, req, ctx).await,
        OwnRoute::QuotaMine => quotas::mine(gw, ctx).await,
        OwnRoute::QuotaPut => quotas::put(gw, req, ctx).await,
        OwnRoute::QuotaDelete => quotas::delete(gw, ctx).await,
        OwnRoute::UnknownAuth => Err(GatewayError::new(
            404,
            "GATEWAY::UNKNOWN_ROUTE",
            format!("No route {} {}.", req.method(), ctx.path),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn routes_resolve_once_with_their_caller_requirement() {
        let r = |m: Method, p: &str| OwnRoute::resolve(&m, p);
        assert_eq!(r(Method::POST, "/healthz"), Some(OwnRoute::Health));
        assert_eq!(r(Method::GET, "/livez"), Some(OwnRoute::Livez));
        assert_eq!(r(Method::GET, "/readyz"), Some(OwnRoute::Readyz));
        assert_eq!(r(Method::HEAD, "/console/x.js"), Some(OwnRoute::Console));
        assert_eq!(r(Method::POST, "/console/x.js"), None);
        assert_eq!(r(Method::GET, "/consoles"), None);
        assert_eq!(r(Method::GET, "/auth/me"), Some(OwnRoute::Me));
        assert_eq!(r(Method::GET, "/auth/logout"), Some(OwnRoute::UnknownAuth));
        assert_eq!(r(Method::GET, "/v1/sandboxes"), None);
        assert!(OwnRoute::Me.needs_caller() && OwnRoute::Logout.needs_caller());
        assert!(!OwnRoute::Login.needs_caller());
    }

    /// Every governed gateway endpoint has exactly one entry with a gateway action in the
    /// default role table, and every gateway entry of the table is a governed endpoint.
    #[test]
    fn governed_routes_and_the_default_table_agree() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/roles.toml");
        let table = gatehouse_authz::RoleTable::load(std::path::Path::new(path)).unwrap();
        let governed = [
            (Method::GET, "/gatehouse/v1/audit"),
            (Method::HEAD, "/gatehouse/v1/audit"),
            (Method::GET, "/gatehouse/v1/keys"),
            (Method::POST, "/gatehouse/v1/keys"),
            (Method::DELETE, "/gatehouse/v1/keys/k-1"),
            (Method::GET, "/gatehouse/v1/bindings"),
            (Method::PUT, "/gatehouse/v1/bindings"),
            (Method::DELETE, "/gatehouse/v1/bindings/subject/alice"),
            (Method::GET, "/gatehouse/v1/events"),
            (Method::HEAD, "/gatehouse/v1/events"),
            (Method::GET, "/gatehouse/v1/quotas"),
            (Method::PUT, "/gatehouse/v1/quotas/teams/team-a"),
            (Method::DELETE, "/gatehouse/v1/quotas/teams/team-a"),
        ];
        for (m, p) in &governed {
            let route = OwnRoute::resolve(m, p).unwrap();
            assert!(route.governed() && route.needs_caller(), "{m} {p}");
            let hit = table
                .route(m.as_str(), p)
                .unwrap_or_else(|| panic!("{m} {p}"));
            assert_eq!(
                hit.action.target(),
                gatehouse_authz::Target::Gateway,
                "{m} {p}"
            );
        }
        let sa = table.authorize("service_admin", "PUT", "/gatehouse/v1/bindings");
        assert!(sa.is_ok());
        let op = table.authorize("operator", "PUT", "/gatehouse/v1/bindings");
        assert!(op.is_err(), "operators do not manage bindings");
        assert!(table
            .authorize("operator", "GET", "/gatehouse/v1/audit")
            .is_ok());
        assert!(table
            .authorize("read_only", "GET", "/gatehouse/v1/audit")
            .is_err());
        assert!(table
            .authorize("read_only", "POST", "/gatehouse/v1/keys")
            .is_ok());
        assert!(table
            .authorize("read_only", "GET", "/gatehouse/v1/events")
            .is_ok());
        assert!(table
            .authorize("read_only", "GET", "/gatehouse/v1/quotas")
            .is_ok());
        let quota = "/gatehouse/v1/quotas/teams/team-a";
        assert!(table.authorize("operator", "PUT", quota).is_err());
        assert!(table.authorize("service_admin", "DELETE", quota).is_ok());
    }
}
