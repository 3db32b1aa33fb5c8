//! The request pipeline, in the phases of Pingora's `ProxyHttp`, run on the hyper data
//! path ([`crate::http`]) with one typed [`RequestCtx`] per request:
//!
//! - request filter → [`admit`]: request id, path normalization, the gateway's own
//!   routes, authentication (the chain), CSRF, authorization (the role table's
//!   [`Permit`](gatehouse_authz::Permit)) and [`scope`]. Anything refused is answered
//!   here and never reaches the backend.
//! - upstream request filter → [`forward`]: header hygiene, the upstream key, the
//!   canonical path, the scoped query, the rewritten body, and on the sandbox proxy the
//!   [`caller`] assertion.
//! - response filters → [`rewrite`]: list filter, endpoint rewrite, created id; and
//!   [`sandbox_headers`]: no cookies, CORS or storage clearing from the backend or a
//!   sandbox, a CSP `sandbox` policy on proxied content.
//! - fail to proxy → [`Gateway::upstream_failed`]: backend failures in the API's shape.
//! - logging → [`audit`]: the log line and one audit event per mutation and denial, when
//!   the response has ended (errors included).

/// A phase's span under the request's (`authn`, `authz`, `scope`, `upstream`): at `info`
/// when spans are exported, else at `debug`, so with the default filter and no exporter
/// it is disabled and costs nothing (log lines still carry the request's span).
macro_rules! phase_span {
    ($name:literal) => {
        if gatehouse_telemetry::exporting() {
            tracing::info_span!($name)
        } else {
            tracing::debug_span!($name)
        }
    };
}

mod admit;
pub mod audit;
pub mod caller;
mod forward;
mod origin;
mod platform;
mod rewrite;
pub mod sandbox_headers;
mod sandbox_scope;
mod scope;

use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::http::body::Body;
use crate::http::inbound::Inbound;
use crate::http::upstream::UpstreamError;
use crate::state::Gateway;
use admit::Admitted;

/// The announced `Content-Length` of a request or response, when it is a number.
pub(crate) fn content_length(headers: &http::HeaderMap) -> Option<usize> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

impl Gateway {
    /// Runs one request through the pipeline up to the response head; the caller streams
    /// the body and calls [`Gateway::finish_request`] when it ends.
    pub async fn process(&self, mut req: Inbound, ctx: &mut RequestCtx) -> http::Response<Body> {
        let admitted = self.admit(&mut req, ctx).await;
        match admitted {
            Ok(Admitted::Forward) => self.proxy(req, ctx).await,
            Ok(Admitted::Answer(reply)) => reply.into_response(ctx),
            Err(e) => {
                ctx.denied = true;
                ctx.reason.get_or_insert_with(|| e.code().to_owned());
                e.reply().into_response(ctx)
            }
        }
    }

    /// Forwards an admitted request and shapes the backend's response; a held create
    /// (idempotency key, quota) is settled once the answer is known.
    async fn proxy(&self, req: Inbound, ctx: &mut RequestCtx) -> http::Response<Body> {
        let resp = self.forward(req, ctx).await;
        if ctx.create.is_held() {
            let status = ctx.upstream_status.filter(|_| ctx.status.is_none());
            self.finish_create(ctx, status).await;
        }
        resp
    }

    /// Sends the request to the backend and shapes its response.
    async fn forward(&self, mut req: Inbound, ctx: &mut RequestCtx) -> http::Response<Body> {
        // The client's `Host` is only needed to rewrite a server-proxy endpoint.
        let host = match ctx.rewrite {
            crate::ctx::ResponseRewrite::EndpointViaGateway => req.host().to_owned(),
            _ => String::new(),
        };
        let client_upgrade = req.parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        let mut up = match self.upstream_request(req, ctx) {
            Ok(r) => r,
            Err(e) => return self.answer_error(e, ctx),
        };
        let proxy = ctx
            .permit
            .as_ref()
            .is_some_and(|p| p.action() == gatehouse_authz::Action::SandboxProxy);
        if let Some(events) = &self.events {
            events.before_forward(ctx);
        }
        let span = phase_span!("upstream");
        gatehouse_telemetry::inject(&span, up.headers_mut());
        let sent = std::time::Instant::now();
        let sending = tracing::Instrument::instrument(self.upstream.send(up, proxy), span).await;
        ctx.upstream_elapsed = sent.elapsed();
        let mut resp = match sending {
            Ok(r) => r,
            Err(e) => return self.upstream_failed(&e, ctx),
        };
        if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS {
            match client_upgrade {
                Some(client) => crate::http::tunnel::spawn(client, hyper::upgrade::on(&mut resp)),
                None => tracing::warn!("backend switched protocols without being asked"),
            }
        }
        match self.downstream_response(resp, &host, ctx).await {
            Ok(r) => r,
            Err(e) => self.answer_error(e, ctx),
        }
    }

    /// A backend failure in the API's shape: 504 when the server-proxy route's sandbox
    /// does not answer in time, else 502; details go to the log.
    pub(crate) fn upstream_failed(
        &self,
        e: &UpstreamError,
        ctx: &mut RequestCtx,
    ) -> http::Response<Body> {
        tracing::warn!(error = %e, "proxying failed");
        self.metrics.upstream_error(e.kind());
        let proxied = ctx
            .permit
            .as_ref()
            .is_some_and(|p| p.action() == gatehouse_authz::Action::SandboxProxy);
        let err = match e {
            UpstreamError::ReadTimeout(t) if proxied => GatewayError::sandbox_timeout(*t),
            _ => GatewayError::upstream_unavailable(),
        };
        self.answer_error(err, ctx)
    }

    fn answer_error(&self, e: GatewayError, ctx: &mut RequestCtx) -> http::Response<Body> {
        ctx.reason = Some(e.code().to_owned());
        e.reply().into_response(ctx)
    }
}
