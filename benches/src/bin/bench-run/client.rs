//! HTTP/1.1 client pieces on hyper's connection API: single requests (readiness and
//! preflight checks), idle keep-alive connections (memory), and the built-in closed-loop
//! load generator used when `wrk` is missing and by the smoke run.

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// One request, as every load generator sends it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Bytes>,
}

impl Req {
    /// `GET path`, without headers.
    pub fn get(path: &str) -> Req {
        Req {
            method: "GET".into(),
            path: path.into(),
            headers: vec![],
            body: None,
        }
    }
}

/// A response, read in full.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// The server ended the body by closing the connection (no `Content-Length`, not
    /// chunked) or said `Connection: close`: the connection cannot be reused.
    pub closes: bool,
}

/// A keep-alive connection.
pub struct Conn {
    send: SendRequest<Full<Bytes>>,
    port: u16,
}

impl Conn {
    /// Connects to `127.0.0.1:port`.
    pub async fn open(port: u16) -> Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
        let _ = stream.set_nodelay(true);
        let (send, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { send, port })
    }

    /// Sends `req` and reads the whole response.
    pub async fn send(&mut self, req: &Req) -> Result<Resp> {
        self.send.ready().await?;
        let mut b = http::Request::builder()
            .method(req.method.as_str())
            .uri(req.path.as_str())
            .header(http::header::HOST, format!("127.0.0.1:{}", self.port));
        for (k, v) in &req.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        let r = b.body(Full::new(req.body.clone().unwrap_or_default()))?;
        let resp = self.send.send_request(r).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        let closes = !headers.contains_key(http::header::CONTENT_LENGTH)
            && !headers.contains_key(http::header::TRANSFER_ENCODING)
            || headers
                .get(http::header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        Ok(Resp {
            status,
            headers,
            body,
            closes,
        })
    }
}

/// One request on a fresh connection, with a timeout.
pub async fn once(port: u16, req: &Req, timeout: Duration) -> Result<Resp> {
    tokio::time::timeout(timeout, async {
        let mut c = Conn::open(port).await?;
        c.send(req).await
    })
    .await
    .map_err(|_| anyhow!("request to port {port} timed out"))?
}

/// Result of one load run (any generator).
#[derive(Debug, Clone)]
pub struct Sample {
    pub requests: u64,
    pub duration_s: f64,
    pub bytes: u64,
    /// Non-2xx/3xx answers.
    pub status_errors: u64,
    /// Connect and write errors, and timeouts.
    pub io_errors: u64,
    /// Responses after which the server closed the connection (wrk counts them as read
    /// errors): keep-alive did not hold.
    pub reconnects: u64,
    /// Latency, microseconds.
    pub hist: Histogram<u64>,
}

/// A latency histogram covering 1 µs .. 100 s at 3 significant digits.
pub fn new_hist() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 100_000_000, 3).map_err(|e| anyhow!("histogram: {e}"))
}

/// Closed-loop load: `connections` keep-alive connections, each sending `req` back to
/// back for `duration`.
pub async fn builtin_load(
    port: u16,
    req: &Req,
    connections: usize,
    duration: Duration,
) -> Result<Sample> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let req = req.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = new_hist()?;
            let (mut n, mut bytes, mut bad, mut io, mut closed) = (0u64, 0u64, 0u64, 0u64, 0u64);
            let mut conn: Option<Conn> = None;
            while Instant::now() < deadline {
                if conn.is_none() {
                    match Conn::open(port).await {
                        Ok(c) => conn = Some(c),
                        Err(_) => {
                            io += 1;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            continue;
                        }
                    }
                }
                let Some(c) = conn.as_mut() else { continue };
                let t = Instant::now();
                match c.send(&req).await {
                    Ok(r) => {
                        let us = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
                        hist.saturating_record(us.max(1));
                        n += 1;
                        bytes += r.body.len() as u64;
                        if r.status >= 400 {
                            bad += 1;
                        }
                        if r.closes {
                            closed += 1;
                            conn = None;
                        }
                    }
                    Err(_) => {
                        io += 1;
                        conn = None;
                    }
                }
            }
            Ok::<_, anyhow::Error>((hist, n, bytes, bad, io, closed))
        }));
    }
    let mut total = Sample {
        requests: 0,
        duration_s: 0.0,
        bytes: 0,
        status_errors: 0,
        io_errors: 0,
        reconnects: 0,
        hist: new_hist()?,
    };
    for t in tasks {
        let (h, n, bytes, bad, io, closed) = t.await.map_err(|e| anyhow!("load task: {e}"))??;
        total.hist.add(&h).map_err(|e| anyhow!("histogram: {e}"))?;
        total.requests += n;
        total.bytes += bytes;
        total.status_errors += bad;
        total.io_errors += io;
        total.reconnects += closed;
    }
    total.duration_s = start.elapsed().as_secs_f64();
    Ok(total)
}

/// Opens `n` connections, each with one completed request, and keeps them open.
pub async fn idle_connections(port: u16, req: &Req, n: usize) -> Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = Conn::open(port)
            .await
            .with_context(|| format!("idle connection {i}"))?;
        let r = c.send(req).await?;
        if r.closes {
            anyhow::bail!(
                "idle connection {i}: the server closes the connection after each response"
            );
        }
        if r.status >= 400 {
            anyhow::bail!("idle connection {i}: status {}", r.status);
        }
        conns.push(c);
    }
    Ok(conns)
}
