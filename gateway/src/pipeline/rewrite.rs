//! The backend's response on its way back: lists are filtered to the caller's scope,
//! server-proxy endpoints point at the gateway, and a create's new id is read for the
//! audit event. Those bodies are read whole (up to `max_response`); every other body
//! streams through untouched.

use crate::ctx::{RequestCtx, ResponseRewrite};
use crate::error::GatewayError;
use crate::http::body::{read_to_limit, Body};
use crate::state::Gateway;
use bytes::Bytes;
use gatehouse_lifecycle::wire::{self, REQUEST_ID_HEADER};
use gatehouse_scope::body as scope_body;
use http::header::{self, HeaderMap};
use hyper::body::Incoming;

impl Gateway {
    /// The response for the client. `host` is the `Host` the client named.
    pub(crate) async fn downstream_response(
        &self,
        resp: http::Response<Incoming>,
        host: &str,
        ctx: &mut RequestCtx,
    ) -> Result<http::Response<Body>, GatewayError> {
        let (mut parts, mut body) = resp.into_parts();
        let status = parts.status.as_u16();
        ctx.upstream_status = Some(status);
        if (200..300).contains(&status) {
            self.publish_scope_change(ctx).await;
        }
        if status != 101 {
            strip_response_hop_by_hop(&mut parts.headers);
        }
        super::sandbox_headers::drop_unsafe(&mut parts.headers);
        // A sandbox's own origin needs no CSP sandbox: it cannot reach the console's.
        if !ctx.sandbox_origin
            && (ctx.action() == Some(gatehouse_authz::Action::SandboxProxy)
                || is_proxy_path(&ctx.path))
        {
            super::sandbox_headers::harden_proxied(&mut parts.headers);
        }
        if let Some(v) = ctx.request_id_value.clone() {
            parts.headers.insert(REQUEST_ID_HEADER, v);
        }
        let rewrite_ok = match ctx.rewrite {
            ResponseRewrite::None => false,
            ResponseRewrite::CaptureCreatedId => (200..300).contains(&status),
            ResponseRewrite::ListFilter
            | ResponseRewrite::EndpointViaGateway
            | ResponseRewrite::ScopeCheck => status == 200,
        };
        if !rewrite_ok {
            ctx.rewrite = ResponseRewrite::None;
            return Ok(http::Response::from_parts(parts, Body::Stream(body)));
        }
        let announced = super::content_length(&parts.headers);
        let buf = read_to_limit(&mut body, self.max_response, announced)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "backend response not rewritable");
                GatewayError::internal()
            })?;
        let out = match ctx.rewrite {
            ResponseRewrite::CaptureCreatedId => {
                ctx.created_id = scope_body::created_id(&buf);
                if let Some(id) = &ctx.created_id {
                    // A "missing" answer cached for this id must not outlive its creation.
                    self.backend.forget(id);
                    if let Some(si) = &self.sandbox_identity {
                        si.on_created(id);
                    }
                }
                if ctx.create.idempotency.is_some() {
                    ctx.create.answer = Some(buf.clone());
                }
                buf
            }
            ResponseRewrite::ListFilter => self.filter_list(buf, ctx)?,
            ResponseRewrite::ScopeCheck => {
                self.recheck_read_scope(&buf, ctx)?;
                buf
            }
            _ => self.endpoint_via_gateway(&buf, host, ctx)?,
        };
        // The body may have a new length: hyper writes the right one.
        parts.headers.remove(header::CONTENT_LENGTH);
        Ok(http::Response::from_parts(parts, Body::full(out)))
    }

    /// The list body to send: unchanged (no copy) when every item is in the caller's scope,
    /// which is the usual case since the backend filtered on the scope pair; otherwise
    /// re-serialized without the foreign items.
    fn filter_list(&self, buf: Bytes, ctx: &RequestCtx) -> Result<Bytes, GatewayError> {
        let Some(scope) = &ctx.scope else {
            return Ok(buf);
        };
        if scope_body::all_in_scope(&buf, scope, &self.keys) {
            return Ok(buf);
        }
        match scope_body::filter_list(&buf, scope, &self.keys) {
            Ok((out, dropped)) => {
                if dropped > 0 {
                    tracing::error!(
                        dropped,
                        "backend returned sandboxes outside the scope filter; dropped them"
                    );
                }
                Ok(Bytes::from(out))
            }
            Err(e) => {
                tracing::error!(error = %e, "list response not filterable");
                Err(GatewayError::internal())
            }
        }
    }

    /// Points a server-proxy endpoint at the gateway's own proxy route.
    fn endpoint_via_gateway(
        &self,
        buf: &[u8],
        host: &str,
        ctx: &RequestCtx,
    ) -> Result<Bytes, GatewayError> {
        let mut v: serde_json::Value = serde_json::from_slice(buf).map_err(|e| {
            tracing::error!(error = %e, "endpoint response not JSON");
            GatewayError::internal()
        })?;
        let host = self.hosts.base(host);
        let base = format!("{host}{}", ctx.mount);
        let id = ctx.sandbox_id().unwrap_or_default();
        let port = ctx
            .permit
            .as_ref()
            .and_then(|p| p.port())
            .unwrap_or_default();
        v["endpoint"] = serde_json::Value::String(wire::server_proxy_endpoint(&base, id, port));
        Ok(Bytes::from(v.to_string()))
    }
}

/// Whether a canonical path is a sandbox proxy route (`…/sandboxes/{id}/proxy/{port}…`),
/// also when the backend's own key forwards it without a permit.
fn is_proxy_path(path: &str) -> bool {
    let mut segs = path.split('/').filter(|s| !s.is_empty());
    while let Some(s) = segs.next() {
        if s == "sandboxes" {
            return segs.nth(1) == Some("proxy");
        }
    }
    false
}

/// Connection-level headers of the backend's response; hyper frames the response to the
/// client itself.
fn strip_response_hop_by_hop(h: &mut HeaderMap) {
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::TRAILER,
        header::UPGRADE,
    ] {
        h.remove(name);
    }
    h.remove("keep-alive");
}
