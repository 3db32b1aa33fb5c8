//! `bench-floor-hyper`: the hyper floor of the proxy-latency benchmark (issue 19).
//!
//! A bare HTTP/1.1 reverse proxy on hyper 1, doing no auth work: one current-thread tokio
//! runtime, one task per downstream connection (`hyper::server::conn::http1`, keep-alive),
//! and its own upstream connection pool, a thread-local `Vec` of
//! `hyper::client::conn::http1::SendRequest`. A request takes the most recently returned
//! sender that is ready (`is_ready()`; one still finishing its last response is awaited,
//! a closed one is dropped) or opens a new connection; the sender goes back into the pool
//! when the response body has been forwarded to the end. Bodies stream both ways; only
//! the hop-by-hop headers are dropped. mimalloc, as the gateway.

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderMap;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use tokio::net::{TcpListener, TcpStream};

/// mimalloc, as the gateway.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A bare hyper proxy to one upstream.
#[derive(Debug, Parser)]
#[command(name = "bench-floor-hyper")]
struct Args {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:18093")]
    listen: String,
    /// The upstream (`host:port`, plain HTTP).
    #[arg(long, default_value = "127.0.0.1:18090")]
    upstream: SocketAddr,
}

/// Idle upstream connections kept per thread at most.
const POOL_MAX: usize = 256;

thread_local! {
    /// This thread's upstream connections.
    static POOL: RefCell<Vec<SendRequest<Incoming>>> = const { RefCell::new(Vec::new()) };
}

/// Headers that belong to one hop and are not forwarded: RFC 9110 §7.6.1's and the rest of
/// RFC 2616's list (`Transfer-Encoding` stays: hyper frames each side's body itself). The
/// names a `Connection` header lists are not looked at: wrk and the peers send none.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        h.remove(name);
    }
}

/// A pooled connection, or a new one to `upstream`.
async fn checkout(upstream: SocketAddr) -> anyhow::Result<SendRequest<Incoming>> {
    while let Some(mut s) = POOL.with(|p| p.borrow_mut().pop()) {
        if s.is_ready() {
            return Ok(s);
        }
        if !s.is_closed() && s.ready().await.is_ok() {
            return Ok(s);
        }
    }
    let stream = TcpStream::connect(upstream)
        .await
        .context("connecting upstream")?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("upstream handshake")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Puts `s` back into this thread's pool (unless closed or the pool is full).
fn checkin(s: SendRequest<Incoming>) {
    if s.is_closed() {
        return;
    }
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_MAX {
            p.push(s);
        }
    });
}

/// The upstream's response body, streamed; its connection goes back into the pool at the
/// end of the body (or when the downstream side drops it after the end).
struct Pooled {
    body: Incoming,
    sender: Option<SendRequest<Incoming>>,
    done: bool,
}

impl Pooled {
    fn release(&mut self) {
        if let Some(s) = self.sender.take() {
            if self.done {
                checkin(s);
            }
        }
    }
}

impl Body for Pooled {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => {
                self.done = true;
                self.release();
            }
            Poll::Ready(Some(Ok(_))) if self.body.is_end_stream() => {
                self.done = true;
                self.release();
            }
            Poll::Ready(Some(Err(_))) => {
                // The connection is broken: drop it.
                self.sender = None;
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // A body not read to the end leaves its connection mid-response: not reusable.
        self.release();
    }
}

/// The response body: the upstream's, or a short error.
type ProxyBody = http_body_util::Either<Pooled, http_body_util::Full<Bytes>>;

async fn proxy(upstream: SocketAddr, mut req: Request<Incoming>) -> Response<ProxyBody> {
    strip_hop_by_hop(req.headers_mut());
    let res = async {
        let mut sender = checkout(upstream).await?;
        let resp = sender.send_request(req).await.context("upstream request")?;
        Ok::<_, anyhow::Error>((sender, resp))
    }
    .await;
    match res {
        Ok((sender, resp)) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            let done = body.is_end_stream();
            let mut body = Pooled {
                body,
                sender: Some(sender),
                done,
            };
            if done {
                body.release();
            }
            Response::from_parts(parts, http_body_util::Either::Left(body))
        }
        Err(e) => {
            eprintln!("bench-floor-hyper: {e:#}");
            let mut r = Response::new(http_body_util::Either::Right(http_body_util::Full::new(
                Bytes::from_static(b"bad gateway\n"),
            )));
            *r.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            r
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        eprintln!(
            "bench-floor-hyper listening on {} -> {}",
            args.listen, args.upstream
        );
        let upstream = args.upstream;
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
            tokio::spawn(async move {
                let svc = service_fn(move |req| async move {
                    Ok::<_, Infallible>(proxy(upstream, req).await)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}
