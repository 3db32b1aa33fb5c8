//! The Docker bootstrap (push): the gateway hands a sandbox its token through an
//! authenticated backend extension,
//!
//! ```text
//! PUT /gatehouse/ext/v1/sandboxes/{id}/identity     OPEN-SANDBOX-API-KEY: <backend key>
//! {"token": "<jwt>", "expiresAt": "2026-01-01T00:00:00Z"}
//! ```
//!
//! Our backend writes the token into the sandbox (a file only the sandbox's run directory
//! holds; `GATEHOUSE_SANDBOX_TOKEN_FILE` names it) and answers 204. The token travels only
//! in this request's body: never in a create response, metadata, environment or log.
//!
//! A push loop runs per sandbox created through this gateway: it pushes at once and again
//! when two thirds of the token's lifetime have passed, and ends when the backend answers
//! 404 (the sandbox is gone; the unchanged upstream server, which has no such route, also
//! answers 404, so nothing is retried there) or 501 (the runtime cannot deliver files).
//! Loops do not survive a gateway restart; the sandbox keeps its identity by calling
//! `POST /auth/sandbox/refresh` itself.

use super::SandboxIdentity;
use crate::config::Upstream;
use bytes::Bytes;
use gatehouse_lifecycle::wire::API_KEY_HEADER;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;

/// The backend extension's path for sandbox `id`.
pub fn identity_path(id: &str) -> String {
    format!("/gatehouse/ext/v1/sandboxes/{id}/identity")
}

/// What a push achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// The backend took the token.
    Delivered,
    /// The sandbox is gone, or the backend has no such extension: stop pushing.
    Gone,
    /// The backend's runtime cannot deliver a token (501): stop pushing.
    Unsupported,
    /// Failed for now (backend down, 5xx): try again later.
    Retry,
}

/// The HTTP client of the push.
pub struct Pusher {
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: Upstream,
    timeout: Duration,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher")
            .field("backend", &self.upstream.authority)
            .finish_non_exhaustive()
    }
}

impl Pusher {
    /// A pusher to `upstream` (which must carry the backend key), each call bounded by
    /// `timeout`.
    pub fn new(upstream: Upstream, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            upstream,
            timeout,
        }
    }

    /// Pushes one token.
    pub async fn push(&self, id: &str, token: &str, expires_at: &str) -> Pushed {
        let body = serde_json::json!({"token": token, "expiresAt": expires_at}).to_string();
        let uri = format!("http://{}{}", self.upstream.authority, identity_path(id));
        let mut req =
            http::Request::put(uri).header(http::header::CONTENT_TYPE, "application/json");
        if let Some(k) = &self.upstream.api_key {
            req = req.header(API_KEY_HEADER, k);
        }
        let Ok(req) = req.body(Full::new(Bytes::from(body))) else {
            return Pushed::Gone;
        };
        let call = async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let _ = resp.into_body().collect().await;
            Ok::<u16, String>(status)
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(s)) if (200..300).contains(&s) => Pushed::Delivered,
            Ok(Ok(404 | 405)) => Pushed::Gone,
            Ok(Ok(501)) => Pushed::Unsupported,
            Ok(Ok(s)) => {
                tracing::warn!(
                    sandbox.id = id,
                    http.status = s,
                    "sandbox token push refused"
                );
                Pushed::Retry
            }
            Ok(Err(e)) => {
                tracing::warn!(sandbox.id = id, error = %e, "sandbox token push failed");
                Pushed::Retry
            }
            Err(_) => {
                tracing::warn!(sandbox.id = id, "sandbox token push timed out");
                Pushed::Retry
            }
        }
    }
}

/// Spawns the push loop of sandbox `id`.
pub fn spawn_loop(si: Arc<SandboxIdentity>, id: String) {
    tokio::spawn(async move {
        let lifetime = si.cfg.token_lifetime();
        let mut failures = 0u32;
        loop {
            let Some(pusher) = &si.pusher else { return };
            let minted = match si.mint(&id, "push") {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(sandbox.id = %id, error = %e, "sandbox token not minted");
                    return;
                }
            };
            let wait = match pusher
                .push(&id, &minted.token, &minted.expires_rfc3339())
                .await
            {
                Pushed::Delivered => {
                    failures = 0;
                    lifetime * 2 / 3
                }
                Pushed::Gone => {
                    tracing::info!(sandbox.id = %id, "sandbox gone (or no identity extension); token push ends");
                    return;
                }
                Pushed::Unsupported => {
                    tracing::info!(sandbox.id = %id, "the backend's runtime cannot deliver sandbox tokens; push ends");
                    return;
                }
                Pushed::Retry => {
                    failures += 1;
                    if failures > 10 {
                        tracing::warn!(sandbox.id = %id, "sandbox token push gave up after 10 attempts");
                        return;
                    }
                    Duration::from_secs(2u64.saturating_pow(failures.min(6)))
                }
            };
            tokio::time::sleep(wait).await;
        }
    });
}
