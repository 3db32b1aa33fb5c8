//! A minimal HTTP/1.1 keep-alive server: one accept loop, one task per connection, on the
//! caller's (single-threaded) tokio runtime. Handlers answer from precomputed bytes, so the
//! server's cost per request is fixed and small.

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The body type every benchmark server answers with.
pub type Body = Full<Bytes>;

/// The main loop of a benchmark server: binds `listen` on a new single-threaded runtime,
/// says so on stderr as `name`, and serves `handler` there forever.
pub fn listen_and_serve<H, F>(name: &str, listen: &str, handler: H) -> anyhow::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        eprintln!("{name} listening on {listen}");
        run(listener, handler).await
    })
}

/// Serves `handler` on `listener` forever (until the process is killed).
pub async fn run<H, F>(listener: TcpListener, handler: H) -> anyhow::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let handler = Arc::new(handler);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                eprintln!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let fut = handler(req);
                async move { Ok::<_, Infallible>(fut.await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// A response with `status`, a JSON content type when `json`, extra headers and `body`.
pub fn respond(status: u16, json: bool, headers: &[(&str, &str)], body: Bytes) -> Response<Body> {
    let mut b = Response::builder().status(status);
    if json {
        b = b.header(http::header::CONTENT_TYPE, "application/json");
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(body)).unwrap_or_else(|_| {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}
