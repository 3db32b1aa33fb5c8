//! The queue and writer task shared by [`super::FileSink`] and [`super::StdoutSink`].
//!
//! `record` does a non-blocking `try_send` on a bounded Tokio channel. One writer task
//! drains it, serializes each event to one JSON line, writes batches of complete lines
//! with a single `write_all` and flushes after each batch. Because only the task writes,
//! lines never interleave, however many threads record concurrently.

use crate::error::AuditError;
use crate::event::AuditEvent;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

/// Default queue capacity of the file and stdout sinks, in events.
pub const DEFAULT_CAPACITY: usize = 65536;

/// A batch is written once it reaches this many bytes (or the queue is empty).
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// How long an audit writer waits after the first event of a batch for more to arrive:
/// it then wakes at most once per `GATHER`, not once per event (each wake-up is a
/// cross-thread wake paid by the request's thread). The store's durable writer uses it
/// too.
pub const GATHER: std::time::Duration = std::time::Duration::from_millis(5);

enum Msg {
    Event(Box<AuditEvent>),
    Flush(oneshot::Sender<()>),
}

/// The sending side: a bounded queue and the lost-event counter.
pub(crate) struct ChannelSink {
    tx: mpsc::Sender<Msg>,
    dropped: Arc<AtomicU64>,
    target: String,
}

impl ChannelSink {
    /// Spawns the writer task for `writer` on the current Tokio runtime.
    pub(crate) fn spawn<W>(writer: W, capacity: usize, target: String) -> Result<Self, AuditError>
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| AuditError::NoRuntime)?;
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        handle.spawn(write_loop(writer, rx, dropped.clone(), target.clone()));
        Ok(Self {
            tx,
            dropped,
            target,
        })
    }

    /// Queues an event without blocking; counts and logs it when it must be dropped.
    pub(crate) fn record(&self, event: AuditEvent) {
        match self.tx.try_send(Msg::Event(Box::new(event))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.lost(1, "the audit queue is full"),
            Err(TrySendError::Closed(_)) => self.lost(1, "the audit writer has stopped"),
        }
    }

    /// Events lost so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every event queued before this call has been written and flushed.
    pub(crate) async fn flush(&self) -> Result<(), AuditError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Flush(tx))
            .await
            .map_err(|_| AuditError::WriterStopped)?;
        rx.await.map_err(|_| AuditError::WriterStopped)
    }

    /// [`ChannelSink::flush`] for [`super::AuditSink::flush`]: a failure is logged.
    pub(crate) fn flush_logged(&self) -> super::Flushing<'_> {
        Box::pin(async {
            if let Err(e) = self.flush().await {
                tracing::error!(sink = %self.target, error = %e, "audit sink: flushing before exit failed");
            }
        })
    }

    fn lost(&self, n: u64, why: &str) {
        lost(&self.dropped, &self.target, n, why);
    }
}

/// Counts lost events and logs an error at the 1st, 2nd, 4th, 8th, ... loss, so an
/// overloaded sink cannot also flood the log.
fn lost(counter: &AtomicU64, target: &str, n: u64, why: &str) {
    if n == 0 {
        return;
    }
    let before = counter.fetch_add(n, Ordering::Relaxed);
    let after = before.saturating_add(n);
    if before == 0 || after.ilog2() > before.ilog2() {
        tracing::error!(sink = %target, dropped_total = after, "{why}: audit events dropped");
    }
}

async fn write_loop<W>(
    mut writer: W,
    mut rx: mpsc::Receiver<Msg>,
    dropped: Arc<AtomicU64>,
    target: String,
) where
    W: AsyncWrite + Unpin,
{
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        if matches!(first, Msg::Event(_)) {
            tokio::time::sleep(GATHER).await;
        }
        let mut events = 0u64;
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Event(event) => {
                    let start = buf.len();
                    match serde_json::to_writer(&mut buf, &*event) {
                        Ok(()) => {
                            buf.push(b'\n');
                            events += 1;
                        }
                        Err(e) => {
                            buf.truncate(start);
                            tracing::error!(sink = %target, error = %e, "cannot serialize an audit event");
                            lost(&dropped, &target, 1, "serialization failed");
                        }
                    }
                }
                Msg::Flush(tx) => waiters.push(tx),
            }
            if buf.len() >= MAX_BATCH_BYTES {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !buf.is_empty() {
            let written = async {
                writer.write_all(&buf).await?;
                writer.flush().await
            }
            .await;
            if let Err(e) = written {
                tracing::error!(sink = %target, error = %e, events, "cannot write audit events");
                lost(&dropped, &target, events, "write failed");
            }
            buf.clear();
        }
        for tx in waiters.drain(..) {
            let _ = tx.send(());
        }
    }
    if let Err(e) = writer.flush().await {
        tracing::error!(sink = %target, error = %e, "cannot flush the audit sink");
    }
}
