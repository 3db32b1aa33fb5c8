//! The upstream side: HTTP/1.1 connections to the backend, pooled per thread.
//!
//! Each worker thread runs its own current-thread runtime, so each keeps its own idle
//! connections in a thread-local list: no lock and no cross-thread wake-up per request.
//! A connection goes back to the list as soon as the response head arrives; it is reused
//! once hyper reports it ready (its previous response body fully read). Idle connections
//! older than `idle_timeout` are dropped before a backend with a shorter keep-alive
//! (uvicorn: 5 s) closes them; a request that meets a connection closed under it anyway
//! is retried once on a fresh connection when hyper hands the unsent request back.

use super::body::Body;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Why the backend could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection within the connect timeout.
    #[error("connecting to {addr} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The backend.
        addr: SocketAddr,
        /// The limit.
        timeout: Duration,
    },
    /// The connection was refused or broke.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// The backend.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP/1.1 handshake or the exchange failed.
    #[error("backend exchange failed: {0}")]
    Http(#[from] hyper::Error),
    /// No response head within the read timeout.
    #[error("no response from the backend within {0:?}")]
    ReadTimeout(Duration),
}

impl UpstreamError {
    /// The failure's kind, a fixed label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::ConnectTimeout { .. } => "connect_timeout",
            UpstreamError::Connect { .. } => "connect",
            UpstreamError::Http(_) => "exchange",
            UpstreamError::ReadTimeout(_) => "read_timeout",
        }
    }
}

/// Connection settings for one backend.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The backend's address.
    pub addr: SocketAddr,
    /// Limit on opening a connection.
    pub connect_timeout: Duration,
    /// Limit on waiting for a response head (`None`: unbounded).
    pub read_timeout: Option<Duration>,
    /// Limit on waiting for a response head on the server-proxy route, where the
    /// sandbox answers (`None`: unbounded). A paused or stuck sandbox accepts the
    /// connection and never answers; this bounds the wait.
    pub proxy_read_timeout: Option<Duration>,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
    /// Most idle connections kept per thread.
    pub max_idle: usize,
}

struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

thread_local! {
    static POOL: RefCell<Vec<Idle>> = const { RefCell::new(Vec::new()) };
}

impl Upstream {
    /// Sends `req` and returns the response head with its streaming body; `proxy` picks
    /// the server-proxy route's read timeout.
    pub async fn send(
        &self,
        req: http::Request<Body>,
        proxy: bool,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        let limit = if proxy {
            self.proxy_read_timeout
        } else {
            self.read_timeout
        };
        let (mut sender, reused) = match self.take_idle() {
            Some(s) => (s, true),
            None => (self.connect().await?, false),
        };
        let resp = match self.exchange(&mut sender, req, limit).await {
            Ok(r) => r,
            // Closed under us before the request was written: once more, fresh.
            Err(Failure::Unsent(req, _)) if reused => {
                sender = self.connect().await?;
                self.exchange(&mut sender, *req, limit)
                    .await
                    .map_err(Failure::into_error)?
            }
            Err(f) => return Err(f.into_error()),
        };
        self.put_back(sender);
        Ok(resp)
    }

    async fn exchange(
        &self,
        sender: &mut SendRequest<Body>,
        req: http::Request<Body>,
        limit: Option<Duration>,
    ) -> Result<http::Response<Incoming>, Failure> {
        let fut = sender.try_send_request(req);
        let out = match limit {
            None => fut.await,
            Some(t) => match tokio::time::timeout(t, fut).await {
                Ok(r) => r,
                Err(_) => return Err(Failure::Timeout(t)),
            },
        };
        out.map_err(|mut e| match e.take_message() {
            Some(req) => Failure::Unsent(Box::new(req), e.into_error()),
            None => Failure::Sent(e.into_error()),
        })
    }

    fn take_idle(&self) -> Option<SendRequest<Body>> {
        POOL.with_borrow_mut(|pool| {
            let now = Instant::now();
            pool.retain(|c| {
                !c.sender.is_closed() && now.duration_since(c.since) < self.idle_timeout
            });
            let i = pool.iter().position(|c| c.sender.is_ready())?;
            Some(pool.swap_remove(i).sender)
        })
    }

    fn put_back(&self, sender: SendRequest<Body>) {
        POOL.with_borrow_mut(|pool| {
            if pool.len() < self.max_idle && !sender.is_closed() {
                pool.push(Idle {
                    sender,
                    since: Instant::now(),
                });
            }
        });
    }

    async fn connect(&self) -> Result<SendRequest<Body>, UpstreamError> {
        let addr = self.addr;
        let stream =
            tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| UpstreamError::ConnectTimeout {
                    addr,
                    timeout: self.connect_timeout,
                })?
                .map_err(|source| UpstreamError::Connect { addr, source })?;
        // Latency over throughput: requests and responses are small.
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::Builder::new()
            .preserve_header_case(true)
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "backend connection ended");
            }
        });
        Ok(sender)
    }
}

/// How one exchange failed.
enum Failure {
    /// The request was not written; hyper gives it back.
    Unsent(Box<http::Request<Body>>, hyper::Error),
    /// The request was (partly) written.
    Sent(hyper::Error),
    /// No response head in time.
    Timeout(Duration),
}

impl Failure {
    fn into_error(self) -> UpstreamError {
        match self {
            Failure::Unsent(_, e) | Failure::Sent(e) => UpstreamError::Http(e),
            Failure::Timeout(t) => UpstreamError::ReadTimeout(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend that accepts connections and never answers, as a paused sandbox's
    /// published port does.
    async fn silent_backend() -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        addr
    }

    fn request() -> http::Request<Body> {
        http::Request::get("/v1/sandboxes/s/proxy/8080/")
            .header(http::header::HOST, "127.0.0.1")
            .body(Body::Empty)
            .unwrap()
    }

    #[tokio::test]
    async fn the_proxy_route_gives_up_after_its_read_timeout_and_other_routes_wait() {
        let up = Upstream {
            addr: silent_backend().await,
            connect_timeout: Duration::from_secs(1),
            read_timeout: None,
            proxy_read_timeout: Some(Duration::from_millis(300)),
            idle_timeout: Duration::from_secs(4),
            max_idle: 4,
        };
        let started = Instant::now();
        let err = up.send(request(), true).await.unwrap_err();
        assert!(matches!(err, UpstreamError::ReadTimeout(t) if t == Duration::from_millis(300)));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        // Without a limit (the API routes by default) the request is still waiting.
        let waiting = tokio::time::timeout(Duration::from_millis(500), up.send(request(), false));
        assert!(
            waiting.await.is_err(),
            "an unlimited route must not time out"
        );
    }
}
