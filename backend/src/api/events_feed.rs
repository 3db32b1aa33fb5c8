//! `GET /gatehouse/ext/v1/events`: the lifecycle event feed as Server-Sent Events (an
//! extension; the gateway subscribes to it). Authenticated with the backend's API key
//! like every other route.
//!
//! Each event is `id: {boot}-{seq}`, `event: {type}` and one `data:` line of JSON
//! ([`gatehouse_lifecycle::events::FeedEvent`]). A client that sends `Last-Event-ID`
//! first gets the events after it from the ring ([`crate::events`]), or, when that id is
//! unknown or too old, one `reset` event (events were lost; re-list). Comment lines keep
//! the connection alive every 15 s. A subscriber that falls more than the channel's
//! capacity behind is dropped; it reconnects with `Last-Event-ID` and loses nothing.

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
    let live = futures_util::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(e) => Some((to_sse(&e), rx)),
            // Too slow: dropped; it resumes with Last-Event-ID.
            Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => None,
        }
    });
    let stream = futures_util::stream::iter(head)
        .chain(live)
        .map(Ok::<_, Infallible>);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
