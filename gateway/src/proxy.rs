//! The request pipeline, on Pingora's `ProxyHttp` phases:
//!
//! - `request_filter`: request id, path normalization, authentication (the chain),
//!   authorization (the role table's proof), scope checks, body rewrites for create and
//!   metadata patch. Anything refused is answered here and never reaches the backend.
//! - `upstream_request_filter`: strip identity headers, swap in the upstream key for users,
//!   forward the canonical path and the scoped query.
//! - `request_body_filter`: substitute the rewritten create body.
//! - `response_filter` / `response_body_filter`: filter lists to the caller's scope, point
//!   server-proxy endpoints at the gateway, capture created ids.
//! - `logging`: one audit event per mutation and per denial, errors included.

use crate::ctx::{RequestCtx, ResponseRewrite};
use crate::error::{respond, write_json, GatewayError};
use crate::lookup::{Found, Lookup};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use gatehouse_audit::{AuditEvent, AuditPrincipal, AuditSink, Outcome};
use gatehouse_auth::{Chain, PrincipalKind, RequestView};
use gatehouse_policy::{normalize, Action, Denial, Mount, PolicyStore, Target};
use gatehouse_scope::{body as scope_body, query as scope_query, Scope, ScopeKeys, ScopeMode};
use http::HeaderName;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType};
use std::sync::Arc;
use std::time::Duration;

/// Header carrying API keys (client → gateway, gateway → backend).
pub const API_KEY_HEADER: &str = "open-sandbox-api-key";

/// The role that bypasses scoping.
const SERVICE_ADMIN: &str = "service_admin";

/// The gateway: everything the pipeline needs, shared by all requests.
pub struct Gateway {
    /// Authenticator chain.
    pub chain: Chain,
    /// Role table, hot-reloaded.
    pub policy: Arc<PolicyStore>,
    /// Backend address.
    pub upstream_addr: std::net::SocketAddr,
    /// Key added for requests the gateway authenticated itself.
    pub upstream_key: Option<String>,
    /// Connect timeout to the backend.
    pub connect_timeout: Duration,
    /// Read timeout from the backend (`None`: unbounded, for streams).
    pub read_timeout: Option<Duration>,
    /// Scope lookups and health checks.
    pub lookup: Lookup,
    /// Audit sink.
    pub audit: Arc<dyn AuditSink>,
    /// Reserved metadata keys.
    pub keys: ScopeKeys,
    /// Identity headers never forwarded as sent.
    pub identity_headers: Vec<HeaderName>,
    /// Largest create/patch body parsed.
    pub max_body: usize,
    /// Largest response rewritten.
    pub max_response: usize,
    /// Public base URL for server-proxy endpoints.
    pub public_url: Option<String>,
    /// OIDC login and sessions, when configured.
    pub oidc: Option<Arc<crate::auth_routes::OidcRuntime>>,
    /// The console bundle.
    pub console: Arc<crate::console::Console>,
    /// `auth.mode` as configured (for `/auth/config`).
    pub mode_name: &'static str,
    /// The gateway's own cookie names, never forwarded.
    pub own_cookies: Vec<String>,
}

/// The announced `Content-Length` of a request or response, when it is a number.
fn content_length(headers: &http::HeaderMap) -> Option<usize> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn valid_request_id(v: &str) -> bool {
    !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic())
}

impl Gateway {
    async fn read_body(&self, session: &mut Session) -> Result<Bytes, GatewayError> {
        let declared = content_length(&session.req_header().headers);
        let too_large = || {
            GatewayError::new(
                413,
                "GATEWAY::PAYLOAD_TOO_LARGE",
                format!(
                    "Request body exceeds the gateway's limit of {} bytes.",
                    self.max_body
                ),
            )
        };
        if declared.is_some_and(|n| n > self.max_body) {
            return Err(too_large());
        }
        session.enable_retry_buffering();
        let mut buf = BytesMut::new();
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) => {
                    if buf.len() + chunk.len() > self.max_body {
                        return Err(too_large());
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(_) => {
                    return Err(GatewayError::new(
                        400,
                        "GATEWAY::INVALID_BODY",
                        "The request body could not be read.",
                    ))
                }
            }
        }
        Ok(buf.freeze())
    }

    async fn healthz(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<bool> {
        let up = self.lookup.upstream_healthy(&ctx.request_id).await;
        let body = serde_json::json!({
            "status": if up { "healthy" } else { "degraded" },
            "gateway": "healthy",
            "upstream": if up { "healthy" } else { "unreachable" },
        });
        let status = if up { 200 } else { 503 };
        ctx.status = Some(status);
        write_json(session, ctx, status, Bytes::from(body.to_string())).await?;
        Ok(true)
    }

    /// Scope checks and body rewrites for a scoped (non-admin) caller.
    async fn apply_scope(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        target: Target,
        mode: ScopeMode,
    ) -> Result<(), GatewayError> {
        let p = &ctx.principal;
        let scope = Scope::for_principal(&p.subject, p.team.as_deref(), mode);
        match target {
            Target::Public => {}
            Target::Collection => {
                let q = scope_query::scoped_list_query(
                    session.req_header().uri.query(),
                    &scope,
                    &self.keys,
                );
                ctx.query = Some(q);
                ctx.rewrite = ResponseRewrite::ListFilter;
            }
            Target::Create => {
                let body = self.read_body(session).await?;
                let out = scope_body::inject_create(&body, &scope, &self.keys)
                    .map_err(|e| GatewayError::new(400, "GATEWAY::INVALID_BODY", e.to_string()))?;
                ctx.body = Some(Bytes::from(out));
            }
            Target::Sandbox => {
                let id = ctx.sandbox_id.clone().unwrap_or_default();
                match self.lookup.sandbox(&id, &ctx.request_id).await {
                    Ok(Found::Sandbox(md)) if scope.allows(&md, &self.keys) => {}
                    Ok(_) => {
                        ctx.reason = Some("GATEWAY::OUT_OF_SCOPE".into());
                        return Err(GatewayError::sandbox_not_found(&id));
                    }
                    Err(e) => {
                        tracing::warn!(request.id = %ctx.request_id, error = %e, "scope lookup failed");
                        return Err(GatewayError::upstream_unavailable());
                    }
                }
                if ctx.action == Some(Action::SandboxMetadata) {
                    let body = self.read_body(session).await?;
                    scope_body::check_patch(&body, &self.keys).map_err(|e| match e {
                        gatehouse_scope::ScopeError::Reserved(_) => {
                            GatewayError::new(400, "GATEWAY::RESERVED_METADATA", e.to_string())
                        }
                        other => GatewayError::new(400, "GATEWAY::INVALID_BODY", other.to_string()),
                    })?;
                }
            }
            Target::Unscoped => {
                return Err(GatewayError::new(
                    403,
                    "GATEWAY::FORBIDDEN",
                    "This route cannot be scoped to a team; only service_admin may use it.",
                ));
            }
        }
        ctx.scope = Some(scope);
        Ok(())
    }

    async fn deny(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        err: GatewayError,
    ) -> pingora::Result<bool> {
        ctx.denied = true;
        respond(session, ctx, err).await
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> Self::CTX {
        RequestCtx::new()
    }

    /// No downstream modules. Pingora's default installs a response-compression module
    /// (switched off, but still run on every request); the gateway never compresses, it
    /// forwards what the backend sends.
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<bool> {
        let req = session.req_header();
        ctx.request_id = req
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| valid_request_id(v))
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        ctx.peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());

        let np = match normalize(session.req_header().uri.path()) {
            Ok(p) => p,
            Err(e) => {
                return self
                    .deny(session, ctx, GatewayError::bad_path(e.to_string()))
                    .await
            }
        };
        ctx.path = np.path.clone();
        ctx.mount = if np.mount == Mount::V1 { "/v1" } else { "" };
        if np.path == "/healthz" {
            return self.healthz(session, ctx).await;
        }
        if let Some(done) = self.own_route(session, ctx).await? {
            return Ok(done);
        }

        let view = RequestView {
            peer: ctx.peer,
            headers: &session.req_header().headers,
        };
        match self.chain.authenticate(&view).await {
            Ok(p) => ctx.principal = p,
            Err(e) => {
                ctx.reason = Some(e.code().to_string());
                return self
                    .deny(session, ctx, GatewayError::new(401, e.code(), e.message()))
                    .await;
            }
        }

        let table = self.policy.current();
        let method = session.req_header().method.as_str().to_owned();
        let anonymous = ctx.principal.kind == PrincipalKind::Anonymous;
        let role = match (&ctx.principal.role, anonymous) {
            (_, true) => String::new(),
            (Some(r), false) => r.clone(),
            (None, false) => table.resolve_role(&ctx.principal.subject, &ctx.principal.groups),
        };
        if !anonymous {
            ctx.role = Some(role.clone());
        }
        if ctx.principal.method == gatehouse_auth::AuthMethod::Session {
            if let Err(e) = self.check_csrf(session).await {
                ctx.reason = Some(e.code.to_string());
                return self.deny(session, ctx, e).await;
            }
        }
        match (method.as_str(), np.path.as_str()) {
            ("GET", "/auth/me") => return self.me(session, ctx).await,
            ("POST", "/auth/logout") => {
                if ctx.principal.method != gatehouse_auth::AuthMethod::Session {
                    return self
                        .deny(session, ctx, GatewayError::unauthenticated())
                        .await;
                }
                return self.logout(session, ctx).await;
            }
            _ => {}
        }

        let permit = match table.authorize(&role, &method, &np.api_path) {
            Ok(p) => p,
            Err(Denial::UnknownRoute) if ctx.principal.passthrough() => {
                // The backend's own key: forwarded unchanged, the backend answers.
                return Ok(false);
            }
            Err(Denial::UnknownRoute) => {
                ctx.reason = Some("GATEWAY::UNKNOWN_ROUTE".into());
                let err = GatewayError::new(
                    404,
                    "GATEWAY::UNKNOWN_ROUTE",
                    format!("No route {method} {}.", np.path),
                );
                return self.deny(session, ctx, err).await;
            }
            Err(Denial::Forbidden { action, .. }) => {
                let public = table
                    .route(&method, &np.api_path)
                    .is_some_and(|r| r.action.target() == Target::Public);
                if anonymous && public {
                    // Public routes (health, version) need no identity.
                    return Ok(false);
                }
                if anonymous {
                    return self
                        .deny(session, ctx, GatewayError::unauthenticated())
                        .await;
                }
                ctx.action = Some(action);
                let err = GatewayError::new(
                    403,
                    "GATEWAY::FORBIDDEN",
                    format!("Role '{role}' does not allow '{}'.", action.as_str()),
                );
                return self.deny(session, ctx, err).await;
            }
        };
        ctx.action = Some(permit.action());
        let route = permit.route();
        ctx.sandbox_id = route.sandbox_id.clone();
        ctx.port = route.port.clone();
        let target = permit.target();

        if permit.action() == Action::SandboxEndpoint
            && gatehouse_lifecycle::query::flag(
                session.req_header().uri.query(),
                "use_server_proxy",
            )
        {
            ctx.rewrite = ResponseRewrite::EndpointViaGateway;
        }
        if target == Target::Create {
            ctx.rewrite = ResponseRewrite::CaptureCreatedId;
        }
        if role != SERVICE_ADMIN {
            let mode = match table.scope() {
                gatehouse_policy::ScopeMode::Owner => ScopeMode::Owner,
                gatehouse_policy::ScopeMode::Team => ScopeMode::Team,
            };
            if let Err(e) = self.apply_scope(session, ctx, target, mode).await {
                return self.deny(session, ctx, e).await;
            }
            if target == Target::Create {
                ctx.rewrite = ResponseRewrite::CaptureCreatedId;
            }
        }
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<()> {
        if ctx.body.is_some() {
            *body = if end_of_stream { ctx.body.take() } else { None };
        }
        Ok(())
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> pingora::Result<Box<HttpPeer>> {
        let mut peer = HttpPeer::new(self.upstream_addr, false, String::new());
        peer.options.connection_timeout = Some(self.connect_timeout);
        peer.options.read_timeout = self.read_timeout;
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        up: &mut RequestHeader,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<()> {
        for h in &self.identity_headers {
            up.remove_header(h);
        }
        // The gateway's credentials never reach a backend or a sandbox.
        up.remove_header("authorization");
        let cookies: Vec<String> = up
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        if !cookies.is_empty() {
            up.remove_header("cookie");
            let own: Vec<&str> = self.own_cookies.iter().map(String::as_str).collect();
            if let Some(kept) = crate::auth_routes::strip_own_cookies(&cookies.join("; "), &own) {
                up.insert_header("cookie", kept)?;
            }
        }
        if !ctx.principal.passthrough() {
            up.remove_header(API_KEY_HEADER);
            if let Some(k) = &self.upstream_key {
                up.insert_header(API_KEY_HEADER, k)?;
            }
        }
        up.insert_header("x-request-id", &ctx.request_id)?;
        let query = ctx.query.as_deref().or(session.req_header().uri.query());
        let pq = match query {
            Some(q) if !q.is_empty() => format!("{}?{q}", ctx.path),
            _ => ctx.path.clone(),
        };
        let uri = pq.parse::<http::Uri>().map_err(|e| {
            Error::explain(
                ErrorType::InternalError,
                format!("rewritten URI invalid: {e}"),
            )
        })?;
        up.set_uri(uri);
        if let Some(b) = &ctx.body {
            up.remove_header("transfer-encoding");
            up.insert_header("content-length", b.len().to_string())?;
        }
        if ctx.rewrite != ResponseRewrite::None {
            up.insert_header("accept-encoding", "identity")?;
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<()> {
        let status = resp.status.as_u16();
        ctx.upstream_status = Some(status);
        resp.insert_header("x-request-id", &ctx.request_id)?;
        let rewrite_ok = match ctx.rewrite {
            ResponseRewrite::None => false,
            ResponseRewrite::CaptureCreatedId => (200..300).contains(&status),
            ResponseRewrite::ListFilter | ResponseRewrite::EndpointViaGateway => status == 200,
        };
        if !rewrite_ok {
            ctx.rewrite = ResponseRewrite::None;
        } else if matches!(
            ctx.rewrite,
            ResponseRewrite::ListFilter | ResponseRewrite::EndpointViaGateway
        ) {
            // Buffer the whole body in one allocation when its length is announced.
            if let Some(n) = content_length(&resp.headers) {
                ctx.response_buf.reserve_exact(n.min(self.max_response));
            }
            // The rewritten body has a new length: chunk it, so the connection stays alive.
            resp.remove_header("content-length");
            resp.insert_header("transfer-encoding", "chunked")?;
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<Option<Duration>> {
        match ctx.rewrite {
            ResponseRewrite::None => {}
            ResponseRewrite::CaptureCreatedId => {
                if let Some(b) = body {
                    if ctx.response_buf.len() + b.len() <= self.max_response {
                        ctx.response_buf.extend_from_slice(b);
                    }
                }
                if end_of_stream {
                    ctx.sandbox_id = scope_body::created_id(&ctx.response_buf);
                }
            }
            ResponseRewrite::ListFilter | ResponseRewrite::EndpointViaGateway => {
                if let Some(b) = body.take() {
                    if ctx.response_buf.len() + b.len() > self.max_response {
                        return Err(Error::explain(
                            ErrorType::InternalError,
                            "response too large to rewrite",
                        ));
                    }
                    ctx.response_buf.extend_from_slice(&b);
                }
                if end_of_stream {
                    let buf = std::mem::take(&mut ctx.response_buf);
                    let out = match ctx.rewrite {
                        ResponseRewrite::ListFilter => self.filter_list(buf, ctx)?,
                        _ => self.endpoint_via_gateway(session, &buf, ctx)?,
                    };
                    *body = Some(out);
                }
            }
        }
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut Self::CTX,
    ) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(c) => *c,
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if code > 0 && session.response_written().is_none() {
            let err = match code {
                502..=504 => GatewayError::upstream_unavailable(),
                400 => GatewayError::new(
                    400,
                    "GATEWAY::BAD_REQUEST",
                    "The request could not be read.",
                ),
                c if c >= 500 => GatewayError::internal(),
                c => GatewayError::new(c, "GATEWAY::ERROR", "The request failed."),
            };
            tracing::warn!(request.id = %ctx.request_id, error = %e, status = code, "proxying failed");
            ctx.status = Some(err.status);
            ctx.reason = Some(err.code.to_string());
            if let Err(we) = write_json(session, ctx, err.status, err.body()).await {
                tracing::debug!(error = %we, "could not write the error response");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Self::CTX) {
        let status = ctx
            .status
            .or_else(|| session.response_written().map(|r| r.status.as_u16()))
            .unwrap_or(if e.is_some() { 502 } else { 0 });
        let elapsed = ctx.started.elapsed().as_secs_f64() * 1000.0;
        tracing::debug!(
            request.id = %ctx.request_id,
            http.method = session.req_header().method.as_str(),
            http.path = %ctx.path,
            http.status = status,
            principal.subject = %ctx.principal.subject,
            principal.method = ctx.principal.method.as_str(),
            action = ctx.action.map(|a| a.as_str()).unwrap_or("-"),
            duration_ms = elapsed,
            "request"
        );
        if ctx.action == Some(Action::SandboxDelete) && (200..300).contains(&status) {
            if let Some(id) = &ctx.sandbox_id {
                self.lookup.forget(id).await;
            }
        }
        let mutation = ctx.action.is_some_and(|a| a.is_mutation());
        if !(ctx.denied || mutation) {
            return;
        }
        let outcome = if ctx.denied {
            Outcome::Denied
        } else if status >= 400 || e.is_some() || status == 0 {
            Outcome::Error
        } else {
            Outcome::Allowed
        };
        let method = session.req_header().method.as_str().to_owned();
        let p = &ctx.principal;
        self.audit.record(AuditEvent {
            time: gatehouse_lifecycle::time::format(&chrono::Utc::now()),
            request_id: ctx.request_id.clone(),
            principal: AuditPrincipal {
                subject: p.subject.clone(),
                team: p.team.clone(),
                role: ctx.role.clone(),
                auth_method: p.method.as_str().to_string(),
                key_name: p.key_name.clone(),
            },
            action: ctx.action.map(|a| a.as_str().to_string()),
            sandbox_id: ctx.sandbox_id.clone(),
            method,
            path: ctx.path.clone(),
            status,
            outcome,
            reason: ctx.reason.clone(),
            duration_ms: elapsed,
            peer: ctx.peer.map(|ip| ip.to_string()),
        });
    }
}

impl Gateway {
    /// The list body to send: unchanged (no copy) when every item is in the caller's scope,
    /// which is the usual case since the backend filtered on the scope pair; otherwise
    /// re-serialized without the foreign items.
    fn filter_list(&self, buf: Vec<u8>, ctx: &RequestCtx) -> pingora::Result<Bytes> {
        let Some(scope) = &ctx.scope else {
            return Ok(Bytes::from(buf));
        };
        if scope_body::all_in_scope(&buf, scope, &self.keys) {
            return Ok(Bytes::from(buf));
        }
        match scope_body::filter_list(&buf, scope, &self.keys) {
            Ok((out, dropped)) => {
                if dropped > 0 {
                    tracing::error!(
                        request.id = %ctx.request_id,
                        dropped,
                        "backend returned sandboxes outside the scope filter; dropped them"
                    );
                }
                Ok(Bytes::from(out))
            }
            Err(e) => Err(Error::explain(
                ErrorType::InternalError,
                format!("list response not filterable: {e}"),
            )),
        }
    }

    fn endpoint_via_gateway(
        &self,
        session: &Session,
        buf: &[u8],
        ctx: &RequestCtx,
    ) -> pingora::Result<Bytes> {
        let mut v: serde_json::Value = serde_json::from_slice(buf).map_err(|e| {
            Error::explain(
                ErrorType::InternalError,
                format!("endpoint response not JSON: {e}"),
            )
        })?;
        let host = match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => session
                .req_header()
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost")
                .to_string(),
        };
        let host = host
            .trim_start_matches("http://")
            .trim_start_matches("https://");
        let id = ctx.sandbox_id.as_deref().unwrap_or_default();
        let port = ctx.port.as_deref().unwrap_or_default();
        v["endpoint"] =
            serde_json::Value::String(format!("{host}{}/sandboxes/{id}/proxy/{port}", ctx.mount));
        Ok(Bytes::from(v.to_string()))
    }
}
