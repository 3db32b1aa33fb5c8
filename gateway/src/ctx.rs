//! The typed per-request context shared by every proxy phase.

use gatehouse_auth::Principal;
use gatehouse_policy::Action;
use gatehouse_scope::Scope;
use std::time::Instant;

/// What the gateway does to the response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseRewrite {
    /// Stream it through untouched.
    #[default]
    None,
    /// Filter a list to the caller's scope.
    ListFilter,
    /// Read the created sandbox's id (for the audit event).
    CaptureCreatedId,
    /// Point a server-proxy endpoint at the gateway.
    EndpointViaGateway,
}

/// One request's state, from `request_filter` to `logging`.
#[derive(Debug)]
pub struct RequestCtx {
    /// When the request arrived.
    pub started: Instant,
    /// Propagated or generated `X-Request-ID`.
    pub request_id: String,
    /// Who is calling (anonymous until authenticated).
    pub principal: Principal,
    /// The resolved role.
    pub role: Option<String>,
    /// The authorized action.
    pub action: Option<Action>,
    /// The sandbox the request targets (for create, filled from the response).
    pub sandbox_id: Option<String>,
    /// Canonical path to forward (without query).
    pub path: String,
    /// Mount prefix of the request (`""` or `"/v1"`).
    pub mount: &'static str,
    /// Port of an endpoint/proxy request.
    pub port: Option<String>,
    /// The caller's scope, when scoping applies.
    pub scope: Option<Scope>,
    /// Rewritten query string to forward.
    pub query: Option<String>,
    /// Request body to forward instead of the client's.
    pub body: Option<bytes::Bytes>,
    /// Response rewriting.
    pub rewrite: ResponseRewrite,
    /// Buffered response body for rewriting.
    pub response_buf: Vec<u8>,
    /// Status of the upstream response.
    pub upstream_status: Option<u16>,
    /// Status the gateway answered itself.
    pub status: Option<u16>,
    /// Denial or error code, for the audit event.
    pub reason: Option<String>,
    /// Whether the request was denied by the gateway.
    pub denied: bool,
    /// Client IP.
    pub peer: Option<std::net::IpAddr>,
}

impl RequestCtx {
    /// A fresh context.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            request_id: String::new(),
            principal: Principal::anonymous(),
            role: None,
            action: None,
            sandbox_id: None,
            path: String::new(),
            mount: "",
            port: None,
            scope: None,
            query: None,
            body: None,
            rewrite: ResponseRewrite::None,
            response_buf: Vec::new(),
            upstream_status: None,
            status: None,
            reason: None,
            denied: false,
            peer: None,
        }
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
