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
    let local = std_listener.local_addr().map_err(err)?;
    serve(std_listener, metrics, rt).map_err(err)?;
    Ok(local)
}

/// During a graceful upgrade the old process still holds the admin port: binds it as soon
/// as it is free (retrying every 200 ms in the background) and serves metrics from then.
pub fn spawn_when_free(addr: SocketAddr, metrics: Arc<Metrics>, rt: &tokio::runtime::Runtime) {
    rt.spawn(async move {
        let mut waited = false;
        loop {
            match std::net::TcpListener::bind(addr) {
                Ok(l) => {
                    match listen(l, metrics) {
                        Ok(()) => tracing::info!(admin = %addr, "admin listener: GET /metrics"),
                        Err(e) => tracing::warn!(admin = %addr, error = %e, "admin listener failed"),
                    }
                    return;
                }
                Err(_) => {
                    if !waited {
                        tracing::info!(admin = %addr, "admin port still held by the old process; binding it once free");
                        waited = true;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
}

fn serve(
    std_listener: std::net::TcpListener,
    metrics: Arc<Metrics>,
    rt: &tokio::runtime::Runtime,
) -> std::io::Result<()> {
    let _guard = rt.enter();
    listen(std_listener, metrics)
}

/// Serves `GET /metrics` on `std_listener`; must run inside the Tokio runtime.
fn listen(std_listener: std::net::TcpListener, metrics: Arc<Metrics>) -> std::io::Result<()> {
    std_listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    tokio::spawn(async move {
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
    Ok(())
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
