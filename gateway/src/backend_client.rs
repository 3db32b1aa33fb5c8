//! [`BackendClient`]: the gateway's own calls to the lifecycle backend (as opposed to the
//! requests it forwards): a sandbox's scope metadata, cached, and the health check. They
//! carry the upstream API key and the caller's request id.
//!
//! Answers are cached both ways, "missing" as well as found: a missing id and an
//! out-of-scope one then take the same path at the same speed, so response time tells a
//! caller nothing about which sandboxes exist.

use crate::config::Upstream;
use bytes::Bytes;
use gatehouse_lifecycle::wire::{API_KEY_HEADER, REQUEST_ID_HEADER};
use gatehouse_lifecycle::StringMap;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use moka::sync::Cache;
use std::time::Duration;

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The sandbox exists with this metadata (shared: a cache hit clones a pointer, not
    /// the map).
    Sandbox(std::sync::Arc<StringMap>),
    /// The backend says it does not exist.
    Missing,
}

/// A failed backend call (unreachable, timed out, or answering nonsense).
#[derive(Debug, thiserror::Error)]
#[error("backend call failed: {0}")]
pub struct LookupError(pub(crate) String);

/// HTTP client and scope cache for the gateway's own backend calls.
pub struct BackendClient {
    client: Client<HttpConnector, Empty<Bytes>>,
    upstream: Upstream,
    timeout: Duration,
    cache: Cache<String, Found>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl BackendClient {
    /// A client for `upstream`; sandbox scopes are cached for `ttl`, and cache lookups
    /// are counted in `metrics`.
    pub fn new(
        upstream: Upstream,
        timeout: Duration,
        ttl: Duration,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            upstream,
            timeout,
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
            metrics,
        }
    }

    pub(crate) async fn get(
        &self,
        path: &str,
        request_id: &str,
    ) -> Result<(u16, Bytes), LookupError> {
        let uri = format!("http://{}{}", self.upstream.authority, path);
        let mut req = http::Request::get(uri).header(REQUEST_ID_HEADER, request_id);
        if let Some(k) = &self.upstream.api_key {
            req = req.header(API_KEY_HEADER, k);
        }
        let mut req = req
            .body(Empty::new())
            .map_err(|e| LookupError(e.to_string()))?;
        gatehouse_telemetry::inject(&tracing::Span::current(), req.headers_mut());
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| LookupError(e.to_string()))?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| LookupError(e.to_string()))?
                .to_bytes();
            Ok::<_, LookupError>((status, body))
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| LookupError("timed out".into()))?
    }

    /// The metadata of sandbox `id` (cached), or `Missing`.
    pub async fn sandbox(&self, id: &str, request_id: &str) -> Result<Found, LookupError> {
        if let Some(found) = self.cache.get(id) {
            self.metrics.scope_cache(true);
            return Ok(found);
        }
        self.metrics.scope_cache(false);
        let path = format!("/v1/sandboxes/{id}");
        let (status, body) = self.get(&path, request_id).await?;
        match status {
            200 => {
                let md = gatehouse_scope::body::sandbox_metadata(&body)
                    .map_err(|e| LookupError(e.to_string()))?;
                let found = Found::Sandbox(std::sync::Arc::new(md));
                self.cache.insert(id.to_string(), found.clone());
                Ok(found)
            }
            404 => {
                self.cache.insert(id.to_string(), Found::Missing);
                Ok(Found::Missing)
            }
            other => Err(LookupError(format!(
                "backend answered {other} for a sandbox lookup"
            ))),
        }
    }

    /// The backend's JSON of sandbox `id`, uncached; `None` when it does not exist.
    pub async fn sandbox_json(
        &self,
        id: &str,
        request_id: &str,
    ) -> Result<Option<Bytes>, LookupError> {
        let (status, body) = self.get(&format!("/v1/sandboxes/{id}"), request_id).await?;
        match status {
            200 => Ok(Some(body)),
            404 => Ok(None),
            other => Err(LookupError(format!(
                "backend answered {other} for a sandbox lookup"
            ))),
        }
    }

    /// Forgets a sandbox (after it is deleted, or created under an id looked up before). Callable from synchronous code: the
    /// removal is immediate for later lookups.
    pub fn forget(&self, id: &str) {
        self.cache.invalidate(id);
    }

    /// Forgets every sandbox (changes may have been missed).
    pub fn forget_all(&self) {
        self.cache.invalidate_all();
    }

    /// Whether the backend's `/health` answers 200.
    pub async fn upstream_healthy(&self, request_id: &str) -> bool {
        matches!(self.get("/health", request_id).await, Ok((200, _)))
    }
}
