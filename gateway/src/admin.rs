//! The admin listener (`[admin] listen`, off unless configured): `GET /metrics` in the
//! Prometheus text format. It runs on the background runtime, apart from the data path,
//! and should be bound to an address only operators reach.

use crate::metrics::Metrics;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The admin listener could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("admin.listen: cannot listen on {addr}: {source}")]
pub struct AdminBindError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// Binds `addr` now (so a port in use fails the start) and serves metrics on `rt`.
pub fn spawn(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    rt: &tokio::runtime::Runtime,
) -> Result<SocketAddr, AdminBindError> {
    let err = |source| AdminBindError { addr, source };
    let std_listener = std::net::TcpListener::bind(addr).map_err(err)?;
    std_listener.set_nonblocking(true).map_err(err)?;
    let local = std_listener.local_addr().map_err(err)?;
    let _guard = rt.enter();
    let listener = tokio::net::TcpListener::from_std(std_listener).map_err(err)?;
    rt.spawn(async move {
        loop {
            let (io, _) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "admin listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let metrics = metrics.clone();
                    async move { Ok::<_, Infallible>(answer(&req, &metrics)) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(io), svc);
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "admin connection ended");
                }
            });
        }
    });
    Ok(local)
}

fn answer<B>(req: &http::Request<B>, metrics: &Metrics) -> http::Response<Full<Bytes>> {
    let (status, ctype, body) = match (req.method(), req.uri().path()) {
        (&http::Method::GET, "/metrics") => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            Bytes::from(metrics.render()),
        ),
        (&http::Method::GET, "/livez") => (
            200,
            "application/json",
            Bytes::from_static(br#"{"status":"alive"}"#),
        ),
        _ => (
            404,
            "application/json",
            Bytes::from_static(
                br#"{"code":"GATEWAY::UNKNOWN_ROUTE","message":"The admin listener serves GET /metrics and GET /livez."}"#,
            ),
        ),
    };
    let mut resp = http::Response::new(Full::new(body));
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(ctype),
    );
    resp
}
