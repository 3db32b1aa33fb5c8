//! [`HttpApp`]: the Pingora application that serves each accepted connection with
//! hyper's HTTP/1.1 server and runs every request through the pipeline.
//!
//! hyper enforces the connection-level rules: ambiguous framing (`Content-Length` with
//! `Transfer-Encoding`, repeated or malformed lengths) is refused, headers are limited in
//! size and count, a client must send its request head within `header_read_timeout`
//! (also the keep-alive idle limit), keep-alive and `Connection: close` are honoured,
//! and header-name case is recorded so it can be preserved toward the backend.

use super::inbound::Inbound;
use super::Logged;
use crate::ctx::RequestCtx;
use crate::state::Gateway;
use async_trait::async_trait;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Per-connection limits.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Time a client has to send a request head, and the idle keep-alive limit.
    pub header_read_timeout: Duration,
    /// Largest request head (and read buffer), bytes; at least 8192.
    pub max_head_bytes: usize,
    /// Most request headers.
    pub max_headers: usize,
}

/// The gateway as a Pingora server application.
pub struct HttpApp {
    gw: Arc<Gateway>,
    limits: ConnLimits,
}

impl HttpApp {
    /// The application for `gw`.
    pub fn new(gw: Arc<Gateway>, limits: ConnLimits) -> Self {
        Self { gw, limits }
    }

    /// One request, from head to response head; the body's end runs the logging phase.
    async fn handle(
        &self,
        req: http::Request<Incoming>,
        peer: Option<IpAddr>,
    ) -> http::Response<Logged> {
        let (parts, body) = req.into_parts();
        let method = parts.method.clone();
        let inbound = Inbound {
            parts,
            body: Some(body),
            read: None,
            peer,
        };
        let mut ctx = RequestCtx::new();
        self.gw.begin(&inbound, &mut ctx);
        let span = ctx.span.clone();
        let cors = self.gw.cors.allowed_origin(inbound.headers());
        let detach = method == http::Method::POST
            && inbound
                .headers()
                .contains_key(crate::limits::idempotency::HEADER);
        let mut resp = if detach {
            // A create with an Idempotency-Key runs to its end even when the client hangs
            // up, so its answer is recorded for the retry (never a second sandbox).
            let gw = self.gw.clone();
            let run = async move {
                let resp = gw.process(inbound, &mut ctx).await;
                (resp, ctx)
            };
            match tokio::spawn(run.instrument(span)).await {
                Ok((resp, done)) => {
                    ctx = done;
                    resp
                }
                Err(e) => {
                    tracing::error!(error = %e, "idempotent request task failed");
                    ctx = RequestCtx::new();
                    crate::error::GatewayError::internal()
                        .reply()
                        .into_response(&mut ctx)
                }
            }
        } else {
            self.gw.process(inbound, &mut ctx).instrument(span).await
        };
        self.gw
            .metrics
            .gateway_added(ctx.started.elapsed().saturating_sub(ctx.upstream_elapsed));
        if let Some(origin) = cors {
            crate::cors::Cors::decorate(origin, resp.headers_mut());
        }
        resp.map(|b| Logged::new(b, self.gw.clone(), method, ctx))
    }
}

#[async_trait]
impl ServerApp for HttpApp {
    async fn process_new(self: &Arc<Self>, io: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        let peer = io
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        let app = self.clone();
        let svc = hyper::service::service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(app.handle(req, peer).await) }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .preserve_header_case(true)
            .header_read_timeout(self.limits.header_read_timeout)
            .max_buf_size(self.limits.max_head_bytes.max(8192))
            .max_headers(self.limits.max_headers);
        let conn = builder
            .serve_connection(TokioIo::new(io), svc)
            .with_upgrades();
        tokio::pin!(conn);
        let mut shutdown = shutdown.clone();
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "client connection ended");
                }
            }
            _ = shutdown.changed() => {
                conn.as_mut().graceful_shutdown();
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "client connection ended during shutdown");
                }
            }
        }
        None
    }
}
