//! `GET /gatehouse/ext/v1/events`: the lifecycle event feed as Server-Sent Events (an
//! extension; the gateway subscribes to it). Authenticated with the backend's API key
//! like every other route.
//!
//! Each event is `id: {boot}-{seq}`, `event: {type}` and one `data:` line of JSON
//! ([`gatehouse_lifecycle::events::FeedEvent`]). A client that sends `Last-Event-ID`
//! first gets the events after it from the ring ([`crate::events`]), or, when that id is
//! unknown or too old, one `reset` event (events were lost; re-list). Comment lines keep
//! the connection alive every 15 s. A subscriber that falls more than the channel's
//! capacity behind is dropped; it reconnects with `Last-Event-ID` and loses nothing. At
//! shutdown every stream ends, so the server's graceful shutdown is not held open.

use super::State;
use crate::events::Resume;
use axum::extract::State as AxState;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use gatehouse_lifecycle::events::FeedEvent;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

fn to_sse(e: &FeedEvent) -> Event {
    let data = serde_json::to_string(e).unwrap_or_else(|_| "{}".into());
    Event::default()
        .id(e.id.clone())
        .event(e.kind.as_str())
        .data(data)
}

/// The feed handler.
pub async fn feed(AxState(st): AxState<State>, headers: HeaderMap) -> Response {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    let (rx, resume) = st.service.feed().subscribe(last);
    let head: Vec<Event> = match resume {
        Resume::Replay(events) => events.iter().map(|e| to_sse(e)).collect(),
        Resume::Reset => vec![Event::default()
            .event("reset")
            .data(r#"{"reason":"events since the given Last-Event-ID are no longer kept"}"#)],
    };
    let closed = Box::pin(st.service.feed().closed());
    let live = futures_util::stream::unfold((rx, closed), |(mut rx, mut closed)| async move {
        tokio::select! {
            got = rx.recv() => match got {
                Ok(e) => Some((to_sse(&e), (rx, closed))),
                // Too slow: dropped; it resumes with Last-Event-ID.
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => None,
            },
            // Shutting down: the stream ends so the server can drain.
            () = &mut closed => None,
        }
    });
    let stream = futures_util::stream::iter(head)
        .chain(live)
        .map(Ok::<_, Infallible>);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

#[cfg(test)]
mod tests {
    use crate::api::{router, AppState};
    use crate::service::Service;
    use crate::store::Store;
    use crate::test_support::FakeRuntime;
    use axum::body::Body;
    use gatehouse_lifecycle::validate::TimeoutLimits;
    use http_body_util::BodyExt;
    use std::sync::Arc;
    use tower::ServiceExt;

    const KEY: &str = "test-key";

    async fn app() -> (axum::Router, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let limits = TimeoutLimits {
            min_seconds: 60,
            max_seconds: None,
        };
        let service = Arc::new(Service::new(
            store,
            Arc::new(FakeRuntime::default()),
            limits,
        ));
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(hyper_util::client::legacy::connect::HttpConnector::new());
        let state = Arc::new(AppState {
            service,
            api_key: Some(KEY.into()).into(),
            eip: None,
            endpoint_host: None,
            max_body_bytes: 4096,
            proxy_client: client,
        });
        (router(state), dir)
    }

    fn feed(key: Option<&str>, last: Option<&str>) -> http::Request<Body> {
        let mut r = http::Request::get(gatehouse_lifecycle::events::FEED_PATH);
        if let Some(k) = key {
            r = r.header("OPEN-SANDBOX-API-KEY", k);
        }
        if let Some(l) = last {
            r = r.header("last-event-id", l);
        }
        r.body(Body::empty()).unwrap()
    }

    /// The next non-comment SSE block of a streaming body.
    async fn next_block(body: &mut Body) -> String {
        loop {
            let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
                .await
                .expect("an event within 5 s")
                .expect("the stream goes on")
                .unwrap();
            let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
            if !text.starts_with(':') {
                return text;
            }
        }
    }

    #[tokio::test]
    async fn the_feed_needs_the_key_and_carries_the_request_id_of_each_change() {
        let (app, _dir) = app().await;
        let resp = app.clone().oneshot(feed(None, None)).await.unwrap();
        assert_eq!(resp.status(), 401);
        let resp = app.clone().oneshot(feed(Some(KEY), None)).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut body = resp.into_body();
        let create = http::Request::post("/v1/sandboxes")
            .header("OPEN-SANDBOX-API-KEY", KEY)
            .header("content-type", "application/json")
            .header("X-Request-ID", "req-42")
            .body(Body::from(
                r#"{"image":{"uri":"busybox"},"entrypoint":["sleep","9"],"timeout":600,"metadata":{"project":"apollo"}}"#,
            ))
            .unwrap();
        assert_eq!(app.clone().oneshot(create).await.unwrap().status(), 202);
        let block = next_block(&mut body).await;
        assert!(block.contains("event: created\n"), "{block}");
        assert!(block.contains(r#""requestId":"req-42""#), "{block}");
        assert!(block.contains(r#""project":"apollo""#), "{block}");
        let id = block
            .lines()
            .find_map(|l| l.strip_prefix("id: "))
            .unwrap()
            .to_string();
        // Resuming after the created event replays what followed it; an unknown id resets.
        let running = next_block(&mut body).await;
        let resumed = app
            .clone()
            .oneshot(feed(Some(KEY), Some(&id)))
            .await
            .unwrap();
        assert_eq!(next_block(&mut resumed.into_body()).await, running);
        let stale = app.oneshot(feed(Some(KEY), Some("1-1"))).await.unwrap();
        assert!(next_block(&mut stale.into_body())
            .await
            .starts_with("event: reset\n"));
    }
}
