//! Following the backend's event feed (`GET /gatehouse/ext/v1/events`) with the backend
//! key: one connection per gateway, resumed with `Last-Event-ID` after a break, with
//! exponential backoff (0.5 s doubling to 30 s, reset once a connection is up). A
//! connection silent for three heartbeats (45 s) is considered dead and replaced.

use super::sse::SseReader;
use super::{EventHub, Incoming};
use crate::config::Upstream;
use bytes::Bytes;
use gatehouse_lifecycle::events::{FeedEvent, FEED_PATH};
use gatehouse_lifecycle::wire::API_KEY_HEADER;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client as Hyper};
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Silence after which the feed connection is replaced (the backend sends a comment
/// every 15 s).
const SILENCE: Duration = Duration::from_secs(45);
/// First and longest wait between attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(30));

/// The HTTP client of the event sources (feed and poll).
pub struct Client {
    http: Hyper<HttpConnector, Empty<Bytes>>,
    upstream: Upstream,
}

/// Why following the feed stopped.
pub enum Ended {
    /// `source = "auto"` and the backend answers 404 (no feed: the upstream server).
    Unsupported,
}

impl Client {
    /// A client for `upstream`.
    pub fn new(upstream: Upstream) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        Self {
            http: Hyper::builder(TokioExecutor::new()).build(connector),
            upstream,
        }
    }

    /// `GET path` with the backend key (and `Last-Event-ID` when given).
    pub async fn get(
        &self,
        path: &str,
        last_id: Option<&str>,
    ) -> Result<http::Response<hyper::body::Incoming>, String> {
        let uri = format!("http://{}{path}", self.upstream.authority);
        let mut req = http::Request::get(uri);
        if let Some(k) = &self.upstream.api_key {
            req = req.header(API_KEY_HEADER, k);
        }
        if let Some(id) = last_id {
            req = req.header("last-event-id", id);
        }
        let req = req.body(Empty::new()).map_err(|e| e.to_string())?;
        tokio::time::timeout(Duration::from_secs(10), self.http.request(req))
            .await
            .map_err(|_| "no response within 10 s".to_string())?
            .map_err(|e| e.to_string())
    }
}

fn incoming(e: FeedEvent) -> Incoming {
    Incoming {
        kind: e.kind,
        sandbox_id: e.sandbox_id,
        state: e.state.map(|s| s.to_string()),
        reason: e.reason,
        message: e.message,
        time: e.time,
        expires_at: e.expires_at,
        metadata: e.metadata,
        request_id: e.request_id,
    }
}

/// Follows the feed until the process ends, or returns [`Ended::Unsupported`] when
/// `auto` and the backend has no feed.
pub async fn follow(hub: &EventHub, client: &Client, auto: bool) -> Ended {
    let mut last_id: Option<String> = None;
    let mut wait = BACKOFF.0;
    let mut ever_up = false;
    let mut failures = 0u32;
    loop {
        match client.get(FEED_PATH, last_id.as_deref()).await {
            Ok(resp) if resp.status() == http::StatusCode::OK => {
                if !ever_up || failures > 0 {
                    tracing::info!("following the backend's lifecycle event feed");
                }
                ever_up = true;
                failures = 0;
                wait = BACKOFF.0;
                let why = read(hub, resp.into_body(), &mut last_id).await;
                tracing::warn!(reason = %why, "backend event feed broke off; reconnecting");
            }
            Ok(resp) if auto && !ever_up && matches!(resp.status().as_u16(), 404 | 405 | 501) => {
                return Ended::Unsupported;
            }
            Ok(resp) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(
                        status = resp.status().as_u16(),
                        "backend refused the event feed; retrying"
                    );
                }
            }
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(error = %e, "backend event feed unreachable; retrying with backoff");
                }
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(BACKOFF.1);
    }
}

/// Reads one connection's events into the hub until it ends; returns why it ended.
async fn read(
    hub: &EventHub,
    mut body: hyper::body::Incoming,
    last_id: &mut Option<String>,
) -> String {
    let mut reader = SseReader::default();
    loop {
        let frame = match tokio::time::timeout(SILENCE, body.frame()).await {
            Err(_) => return format!("silent for {} s", SILENCE.as_secs()),
            Ok(None) => return "the backend closed it".into(),
            Ok(Some(Err(e))) => return e.to_string(),
            Ok(Some(Ok(f))) => f,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let events = match reader.push(&data) {
            Ok(ev) => ev,
            Err(e) => return e.to_string(),
        };
        for ev in events {
            if let Some(id) = ev.id.filter(|i| !i.is_empty()) {
                *last_id = Some(id);
            }
            if ev.event == "reset" {
                // The backend no longer has what we missed (it restarted, or we were
                // away longer than its ring): tell clients to re-list.
                hub.publish_reset("the backend's feed lost events");
                *last_id = None;
                continue;
            }
            match serde_json::from_str::<FeedEvent>(&ev.data) {
                Ok(e) => hub.publish(incoming(e), "backend"),
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable event on the backend feed; skipped")
                }
            }
        }
    }
}
