//! `response_filter` and `response_body_filter`: lists are filtered to the caller's
//! scope, server-proxy endpoints point at the gateway, and a create's new id is read for
//! the audit event. Bodies to rewrite are buffered (up to `max_response`) and emitted at
//! end of stream; everything else streams through untouched.

use crate::ctx::{RequestCtx, ResponseRewrite};
use crate::state::Gateway;
use bytes::Bytes;
use gatehouse_lifecycle::wire::{self, REQUEST_ID_HEADER};
use gatehouse_scope::body as scope_body;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorType};

impl Gateway {
    /// Decides, from the status, whether the planned rewrite applies.
    pub(crate) fn response_head(
        &self,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let status = resp.status.as_u16();
        ctx.upstream_status = Some(status);
        resp.insert_header(REQUEST_ID_HEADER, &ctx.request_id)?;
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
            if let Some(n) = super::content_length(&resp.headers) {
                ctx.response_buf.reserve_exact(n.min(self.max_response));
            }
            // The rewritten body has a new length: chunk it, so the connection stays alive.
            resp.remove_header("content-length");
            resp.insert_header("transfer-encoding", "chunked")?;
        }
        Ok(())
    }

    /// Buffers and rewrites the body when the head said so.
    pub(crate) fn response_body(
        &self,
        session: &Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        match ctx.rewrite {
            ResponseRewrite::None => {}
            ResponseRewrite::CaptureCreatedId => {
                if let Some(b) = body {
                    if ctx.response_buf.len() + b.len() <= self.max_response {
                        ctx.response_buf.extend_from_slice(b);
                    }
                }
                if end_of_stream {
                    ctx.created_id = scope_body::created_id(&ctx.response_buf);
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
        Ok(())
    }

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

    /// Points a server-proxy endpoint at the gateway's own proxy route.
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
            Some(u) => u.trim_end_matches('/'),
            None => wire::request_host(
                session
                    .req_header()
                    .headers
                    .get(http::header::HOST)
                    .map(|h| h.as_bytes()),
            ),
        };
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
