//! Execution event stream (`ServerStreamEvent`) in upstream execd's framing.
//!
//! Upstream writes each event as one bare JSON object followed by a blank line
//! (`{...}\n\n`); every OpenSandbox SDK parses that (the Python SDK also accepts standard
//! `data:` frames). We keep the upstream framing so all SDKs work. A `ping` event is sent
//! every 3 s while a stream is open, as upstream does.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

/// Interval between keep-alive `ping` events.
pub const PING_INTERVAL: Duration = Duration::from_secs(3);

/// Error details inside an `error` event (Jupyter-style names, as the SDK expects).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EventError {
    /// Error name, e.g. `CommandExecError`.
    pub ename: String,
    /// Error value; for commands, the exit code as a decimal string.
    pub evalue: String,
    /// Extra lines.
    pub traceback: Vec<String>,
}

/// One `ServerStreamEvent`.
#[derive(Debug, Clone, Serialize)]
pub struct StreamEvent {
    /// Event type: init, stdout, stderr, error, execution_complete, ping.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Text payload (command id for `init`, a line for stdout/stderr).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Execution duration in ms (`execution_complete`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_time: Option<u64>,
    /// Unix milliseconds.
    pub timestamp: i64,
    /// Error details (`error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<EventError>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl StreamEvent {
    fn new(kind: &'static str) -> Self {
        Self {
            kind,
            text: None,
            execution_time: None,
            timestamp: now_ms(),
            error: None,
        }
    }

    fn with_text(kind: &'static str, text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::new(kind)
        }
    }

    /// `init` carrying the command (or session) id.
    pub fn init(id: &str) -> Self {
        Self::with_text("init", id)
    }

    /// One stdout line (without its terminator).
    pub fn stdout(text: impl Into<String>) -> Self {
        Self::with_text("stdout", text)
    }

    /// One stderr line (without its terminator).
    pub fn stderr(text: impl Into<String>) -> Self {
        Self::with_text("stderr", text)
    }

    /// Successful completion.
    pub fn complete(elapsed: Duration) -> Self {
        Self {
            execution_time: Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)),
            ..Self::new("execution_complete")
        }
    }

    /// Failure: `evalue` is the exit code for commands (the SDK parses it as an int).
    pub fn error(ename: &str, evalue: impl Into<String>, traceback: Vec<String>) -> Self {
        Self {
            error: Some(EventError {
                ename: ename.to_owned(),
                evalue: evalue.into(),
                traceback,
            }),
            ..Self::new("error")
        }
    }

    /// Keep-alive.
    pub fn ping() -> Self {
        Self::with_text("ping", "pong")
    }

    /// Wire frame: JSON followed by a blank line.
    pub fn encode(&self) -> Bytes {
        let mut v = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        v.extend_from_slice(b"\n\n");
        Bytes::from(v)
    }
}

/// Producer side of an event stream.
pub struct EventSink {
    tx: mpsc::Sender<Bytes>,
    _stop_ping: oneshot::Sender<()>,
}

impl EventSink {
    /// Send one event; `false` once the client has gone away.
    pub async fn send(&self, ev: StreamEvent) -> bool {
        self.tx.send(ev.encode()).await.is_ok()
    }

    /// Resolves when the client has disconnected.
    pub async fn closed(&self) {
        self.tx.closed().await;
    }

    /// True once the client has disconnected.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Create a stream: the sink for the producer, and the streaming 200 response.
pub fn channel() -> (EventSink, Response) {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let ping_tx = tx.clone();
    tokio::spawn(async move {
        let mut stop = stop_rx;
        let mut tick = tokio::time::interval(PING_INTERVAL);
        tick.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tick.tick() => {
                    if ping_tx.send(StreamEvent::ping().encode()).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    (
        EventSink {
            tx,
            _stop_ping: stop_tx,
        },
        resp,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_bare_json_plus_blank_line() {
        let f = StreamEvent::stdout("hi").encode();
        let s = std::str::from_utf8(&f).unwrap();
        assert!(s.ends_with("}\n\n"));
        let v: serde_json::Value = serde_json::from_str(s.trim()).unwrap();
        assert_eq!(v["type"], "stdout");
        assert_eq!(v["text"], "hi");
        assert!(v["timestamp"].as_i64().unwrap() > 0);
        assert!(v.get("error").is_none());
    }

    #[test]
    fn error_event_carries_exit_code_as_evalue() {
        let f = StreamEvent::error("CommandExecError", "3", vec!["exit status 3".into()]).encode();
        let v: serde_json::Value = serde_json::from_slice(&f).unwrap();
        assert_eq!(v["error"]["ename"], "CommandExecError");
        assert_eq!(v["error"]["evalue"], "3");
    }

    #[tokio::test]
    async fn stream_ends_when_sink_is_dropped() {
        let (sink, resp) = channel();
        assert!(sink.send(StreamEvent::init("x")).await);
        drop(sink);
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert!(std::str::from_utf8(&body).unwrap().contains("\"init\""));
    }
}
