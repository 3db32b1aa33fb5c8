//! `/metrics` and `/metrics/watch`.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::Json;

use crate::metrics::{self, Metrics};

/// CPU sampling window of a one-shot `/metrics`.
const WINDOW: Duration = Duration::from_millis(100);

/// `GET /metrics`.
pub async fn get_metrics() -> Json<Metrics> {
    Json(metrics::snapshot(WINDOW).await)
}

/// `GET /metrics/watch`: one `Metrics` JSON object per second, each followed by a blank
/// line (the framing of execd's event streams) until the client disconnects.
pub async fn watch() -> Response {
    let first = metrics::sample();
    let stream = futures_util::stream::unfold(first, |prev| async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (m, next) = metrics::collect(prev);
        let mut frame = serde_json::to_vec(&m).unwrap_or_default();
        frame.extend_from_slice(b"\n\n");
        Some((Ok::<_, Infallible>(bytes::Bytes::from(frame)), next))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
