//! The request pipeline, on Pingora's `ProxyHttp` phases. Each phase is a few lines that
//! run one step module inside the request's span:
//!
//! - `request_filter` → [`admit`]: request id, path normalization, the gateway's own
//!   routes, authentication (the chain), CSRF, authorization (the role table's
//!   [`Permit`](gatehouse_authz::Permit)) and [`scope`]. Anything refused is answered
//!   here and never reaches the backend.
//! - `upstream_peer` / `upstream_request_filter` → [`forward`]: header hygiene, the
//!   upstream key, the canonical path, the scoped query.
//! - `request_body_filter`: the rewritten create body.
//! - `response_filter` / `response_body_filter` → [`rewrite`]: list filter, endpoint
//!   rewrite, created id.
//! - `fail_to_proxy`: backend failures in the API's error shape.
//! - `logging` → [`audit`]: the log line and one audit event per mutation and denial.

mod admit;
mod audit;
mod forward;
mod rewrite;
mod scope;

use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::reply;
use crate::state::Gateway;
use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType};
use std::time::Duration;
use tracing::Instrument;

/// The announced `Content-Length` of a request or response, when it is a number.
pub(crate) fn content_length(headers: &http::HeaderMap) -> Option<usize> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
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
        self.begin(session, ctx);
        let span = ctx.span.clone();
        async {
            let admitted = self.admit(session, ctx).await;
            admit::finish(session, ctx, admitted).await
        }
        .instrument(span)
        .await
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
        Ok(self.peer())
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        up: &mut RequestHeader,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<()> {
        let _entered = ctx.span.enter();
        self.upstream_request(session, up, ctx)
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<()> {
        let span = ctx.span.clone();
        let _entered = span.enter();
        self.response_head(resp, ctx)
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<Option<Duration>> {
        let span = ctx.span.clone();
        let _entered = span.enter();
        self.response_body(session, body, end_of_stream, ctx)?;
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut Self::CTX,
    ) -> FailToProxy {
        let span = ctx.span.clone();
        async {
            let code = status_for(e);
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
                tracing::warn!(error = %e, status = code, "proxying failed");
                ctx.reason = Some(err.code().to_owned());
                if let Err(we) = reply::send(session, ctx, err.reply()).await {
                    tracing::debug!(error = %we, "could not write the error response");
                }
            }
            FailToProxy {
                error_code: code,
                can_reuse_downstream: false,
            }
        }
        .instrument(span)
        .await
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Self::CTX) {
        let span = std::mem::replace(&mut ctx.span, tracing::Span::none());
        self.finish_request(session, e, ctx).instrument(span).await;
    }
}

/// The status a proxying error answers with (Pingora's default mapping); 0 when the
/// client is gone and nothing can be answered.
fn status_for(e: &Error) -> u16 {
    match e.etype() {
        ErrorType::HTTPStatus(c) => *c,
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}
