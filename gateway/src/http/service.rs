//! [`HttpApp`]: the Pingora application that serves each accepted connection with
//! hyper's HTTP/1.1 server and runs every request through the pipeline.
//!
//! hyper enforces the connection-level rules: ambiguous framing (`Content-Length` with
//! `Transfer-Encoding`, repeated or malformed lengths) is refused, headers are limited in
//! size and count, a client must send its request head within `header_read_timeout`
//! (also the keep-alive idle limit), keep-alive and `Connection: close` are honoured,
//! and header-name case is recorded so it can be preserved toward the backend.
//!
//! Draining (SIGTERM, or SIGQUIT during an upgrade): a connection is not cut between
//! requests, where a client may already have sent its next one. Its next response carries
//! `Connection: close`, so the client reconnects (to the new process, after an upgrade)
//! without a failed request; a connection idle for [`DRAIN_IDLE`] is then closed.

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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// How long a draining connection may stay idle before it is closed.
pub const DRAIN_IDLE: Duration = Duration::from_secs(1);

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
    /// Set once shutdown began: responses then close their connection.
    draining: AtomicBool,
}

impl HttpApp {
    /// The application for `gw`.
    pub fn new(gw: Arc<Gateway>, limits: ConnLimits) -> Self {
        Self {
            gw,
            limits,
            draining: AtomicBool::new(false),
        }
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
        if self.draining.load(Ordering::Relaxed)
            && resp.status() != http::StatusCode::SWITCHING_PROTOCOLS
        {
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
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
            // Boxed: hyper keeps a slot the size of the service's future for the whole life
            // of a connection. Boxed, that slot is a pointer, and the request's state (the
            // whole pipeline) takes memory only while a request runs.
            Box::pin(async move { Ok::<_, Infallible>(app.handle(req, peer).await) })
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
                self.draining.store(true, Ordering::Relaxed);
                // The next response closes the connection; an idle one is closed soon.
                let ended = tokio::select! {
                    r = conn.as_mut() => Some(r),
                    _ = tokio::time::sleep(DRAIN_IDLE) => None,
                };
                let r = match ended {
                    Some(r) => r,
                    None => {
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                };
                if let Err(e) = r {
                    tracing::debug!(error = %e, "client connection ended during shutdown");
                }
            }
        }
        None
    }
}
