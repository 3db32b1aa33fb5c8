//! The typed per-request context shared by every proxy phase, from `request_filter` to
//! `logging`.

use gatehouse_authn::Principal;
use gatehouse_authz::{Action, Permit};
use gatehouse_scope::Scope;
use std::time::Instant;

/// What the gateway does to the response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseRewrite {
    /// Stream it through untouched.
    #[default]
    None,
    /// A scoped sandbox read: check the returned metadata against the caller's scope too
    /// (the cached scope may predate a change made through another replica).
    ScopeCheck,
    /// Filter a list to the caller's scope.
    ListFilter,
    /// Read the created sandbox's id (for the audit event).
    CaptureCreatedId,
    /// Point a server-proxy endpoint at the gateway.
    EndpointViaGateway,
}

/// One request's state.
#[derive(Debug)]
pub struct RequestCtx {
    /// When the request arrived.
    pub started: Instant,
    /// The request's span: opened in the first phase, closed when `logging` drops the
    /// context. Every phase runs inside it, so log lines carry `request.id`.
    pub span: tracing::Span,
    /// Propagated or generated `X-Request-ID`.
    pub request_id: String,
    /// [`Self::request_id`] as a header value, made once and sent both ways.
    pub request_id_value: Option<http::HeaderValue>,
    /// Who is calling (anonymous until authenticated).
    pub principal: Principal,
    /// The resolved role.
    pub role: Option<String>,
    /// The role table's proof that this request may be forwarded (`None` for requests the
    /// gateway answers itself, denials and backend-key passthrough).
    pub permit: Option<Permit>,
    /// The action a refused request asked for (for the audit event).
    pub denied_action: Option<Action>,
    /// The id of the sandbox a create made (read from the response).
    pub created_id: Option<String>,
    /// Canonical path to forward (without query).
    pub path: String,
    /// Mount prefix of the request (`""` or `"/v1"`).
    pub mount: &'static str,
    /// The caller's scope, when scoping applies.
    pub scope: Option<Scope>,
    /// For a platform controller's request, the tenant it acts for (audited).
    pub on_behalf_of: Option<gatehouse_audit::OnBehalfOf>,
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
    /// Whether the request came to a sandbox's own origin (`{id}-{port}.{domain}`).
    pub sandbox_origin: bool,
    /// Time the backend took to answer with a response head (for the gateway-added
    /// latency metric).
    pub upstream_elapsed: std::time::Duration,
    /// A streamed body for a reply the gateway answers itself (the event stream);
    /// [`crate::reply::Reply::into_response`] sends it instead of the reply's bytes.
    pub stream: Option<crate::http::body::Body>,
    /// What a create holds while it runs (idempotency claim, quota admission).
    pub create: crate::limits::CreateHold,
}

impl RequestCtx {
    /// A fresh context.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            span: tracing::Span::none(),
            request_id: String::new(),
            request_id_value: None,
            principal: Principal::anonymous(),
            role: None,
            permit: None,
            denied_action: None,
            created_id: None,
            path: String::new(),
            mount: "",
            scope: None,
            on_behalf_of: None,
            query: None,
            body: None,
            rewrite: ResponseRewrite::None,
            response_buf: Vec::new(),
            upstream_status: None,
            status: None,
            reason: None,
            denied: false,
            peer: None,
            sandbox_origin: false,
            upstream_elapsed: std::time::Duration::ZERO,
            stream: None,
            create: crate::limits::CreateHold::default(),
        }
    }

    /// The action of the request: permitted, or asked for and refused.
    pub fn action(&self) -> Option<Action> {
        self.permit
            .as_ref()
            .map(Permit::action)
            .or(self.denied_action)
    }

    /// The sandbox the request is about: named in the path, or made by a create.
    pub fn sandbox_id(&self) -> Option<&str> {
        self.permit
            .as_ref()
            .and_then(Permit::sandbox_id)
            .or(self.created_id.as_deref())
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
