//! A Server-Sent Events client for the event-stream tests: it reads a stream in the
//! background and hands over whole events, the way a browser's `EventSource` does.

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::mpsc;

/// One received event.
#[derive(Debug, Clone)]
pub struct Received {
    /// `id:`.
    pub id: Option<String>,
    /// `event:`.
    pub event: String,
    /// `data:` as JSON (null when it is not JSON).
    pub data: Value,
}

/// An open stream.
pub struct EventStream {
    rx: mpsc::UnboundedReceiver<Received>,
    /// Heartbeat comments seen so far (`: ...` lines).
    comments: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A client for streams: no overall timeout (a stream never ends on its own).
pub fn client(headers: &[(&str, &str)]) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            reqwest::header::HeaderName::from_bytes(k.as_bytes()),
            reqwest::header::HeaderValue::from_str(v),
        ) {
            h.insert(k, v);
        }
    }
    reqwest::Client::builder()
        .default_headers(h)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

impl EventStream {
    /// Opens `GET url` as `c` (with `Last-Event-ID` when given); fails unless it answers
    /// 200 with `text/event-stream`.
    pub async fn open(c: &reqwest::Client, url: &str, last_id: Option<&str>) -> Result<Self> {
        let mut rb = c.get(url).header("accept", "text/event-stream");
        if let Some(id) = last_id {
            rb = rb.header("last-event-id", id);
        }
        let resp = rb.send().await.context("opening the event stream")?;
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if status != 200 || !ct.starts_with("text/event-stream") {
            let body = resp.text().await.unwrap_or_default();
            bail!("event stream answered {status} ({ct}): {body}");
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let comments = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = comments.clone();
        let task = tokio::spawn(async move {
            let mut body = resp.bytes_stream();
            let mut buf = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    let mut ev = Received {
                        id: None,
                        event: "message".into(),
                        data: Value::Null,
                    };
                    let mut data = String::new();
                    let mut any = false;
                    for line in block.lines() {
                        if line.starts_with(':') {
                            seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        } else if let Some(v) = line.strip_prefix("id: ") {
                            ev.id = Some(v.to_string());
                        } else if let Some(v) = line.strip_prefix("event: ") {
                            ev.event = v.to_string();
                            any = true;
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data.push_str(v);
                            any = true;
                        }
                    }
                    if any {
                        ev.data = serde_json::from_str(&data).unwrap_or(Value::Null);
                        if tx.send(ev).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(Self { rx, comments, task })
    }

    /// The next event, waiting at most `wait`.
    pub async fn next(&mut self, wait: Duration) -> Result<Received> {
        match tokio::time::timeout(wait, self.rx.recv()).await {
            Ok(Some(e)) => Ok(e),
            Ok(None) => bail!("the event stream ended"),
            Err(_) => bail!("no event within {wait:?}"),
        }
    }

    /// Every event up to and including the first that `stop` accepts (at most `wait`
    /// in all).
    pub async fn until(
        &mut self,
        wait: Duration,
        stop: impl Fn(&Received) -> bool,
    ) -> Result<Vec<Received>> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let e = self.next(left).await.with_context(|| {
                let seen: Vec<String> = got
                    .iter()
                    .map(|e: &Received| format!("{} {}", e.event, e.data["sandboxId"]))
                    .collect();
                format!("after {seen:?}")
            })?;
            let last = stop(&e);
            got.push(e);
            if last {
                return Ok(got);
            }
        }
    }

    /// Events received within `wait` (without blocking longer).
    pub async fn drain(&mut self, wait: Duration) -> Vec<Received> {
        let mut got = Vec::new();
        while let Ok(e) = self.next(wait).await {
            got.push(e);
        }
        got
    }

    /// Heartbeat comments seen so far.
    pub fn comments(&self) -> usize {
        self.comments.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The `(type, sandboxId)` pairs of `events`.
pub fn kinds_of(events: &[Received], sandbox: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.data["sandboxId"] == sandbox)
        .map(|e| e.event.clone())
        .collect()
}
