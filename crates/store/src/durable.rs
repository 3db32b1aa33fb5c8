//! [`DurableAuditSink`]: audit events to the governance store, never blocking a request.
//!
//! `record` does a non-blocking `try_send` into a bounded queue. One writer task takes
//! batches from it and inserts each in one transaction. When the store fails, the batch
//! is appended to the spool file (`<spool_dir>/audit.spool`, JSON lines, `fsync`ed once
//! per batch) and every later batch goes behind it, so order is kept. Every `retry` the
//! writer replays the spool from its start; once all of it is in the store, the file is
//! truncated. A spool left by a killed process is replayed at start. Inserts skip event
//! ids already stored, so a replay that is interrupted and repeated never duplicates.
//!
//! Guarantee: an event is *at least once* in the spool or the table once the writer has
//! taken it from the queue, and *exactly once* in the table after replay. Events still in
//! the memory queue when the process is killed with `SIGKILL` are lost (on any other exit
//! the gateway waits for [`DurableAuditSink::flush`]); events are dropped (and counted)
//! only when the queue is full.

mod spool;

use crate::store::GovernanceStore;
use gatehouse_audit::{AuditEvent, AuditSink};
use spool::Spool;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How the writer behaves.
#[derive(Debug, Clone)]
pub struct DurableOptions {
    /// Events queued in memory (at least 1).
    pub capacity: usize,
    /// Largest batch per transaction.
    pub batch_size: usize,
    /// How often an unreachable store is retried.
    pub retry: Duration,
    /// Directory of the spool file (created if missing).
    pub spool_dir: PathBuf,
}

impl DurableOptions {
    /// The options of a `[store]` section.
    pub fn from_config(c: &crate::StoreConfig) -> Self {
        Self {
            capacity: c.queue_capacity,
            batch_size: c.batch_size,
            retry: Duration::from_millis(c.retry_ms),
            spool_dir: c.spool_dir.clone(),
        }
    }
}

enum Msg {
    Event(Box<AuditEvent>),
    Flush(oneshot::Sender<()>),
}

/// Counters shared by the sink and its writer.
#[derive(Debug, Default)]
struct Counters {
    spooled: AtomicU64,
    dropped: AtomicU64,
    stored: AtomicU64,
}

/// The durable audit sink. Build it inside a Tokio runtime (the writer runs there).
pub struct DurableAuditSink {
    tx: mpsc::Sender<Msg>,
    capacity: usize,
    counters: Arc<Counters>,
}

impl DurableAuditSink {
    /// Opens the spool (replaying whatever a previous process left there) and starts the
    /// writer task on the current Tokio runtime.
    pub async fn start(
        store: Arc<dyn GovernanceStore>,
        opts: DurableOptions,
    ) -> Result<Self, crate::StoreError> {
        let capacity = opts.capacity.max(1);
        let spool = Spool::open(&opts.spool_dir).await?;
        let counters = Arc::new(Counters::default());
        counters.spooled.store(spool.pending(), Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(capacity);
        tokio::spawn(write_loop(store, opts, spool, rx, counters.clone()));
        Ok(Self {
            tx,
            capacity,
            counters,
        })
    }

    /// Events waiting in the memory queue.
    pub fn queue_depth(&self) -> u64 {
        (self.capacity - self.tx.capacity()) as u64
    }

    /// Events in the spool file, waiting for the store.
    pub fn spool_depth(&self) -> u64 {
        self.counters.spooled.load(Ordering::Relaxed)
    }

    /// Events inserted into the store by this process (new rows).
    pub fn stored(&self) -> u64 {
        self.counters.stored.load(Ordering::Relaxed)
    }

    /// Events lost (queue full, or the writer stopped).
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every event recorded before this call is in the store or the spool.
    pub async fn flush(&self) -> Result<(), crate::StoreError> {
        let (tx, rx) = oneshot::channel();
        let stopped = || crate::StoreError::Invalid("the audit writer has stopped".into());
        self.tx.send(Msg::Flush(tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())
    }

    fn lost(&self, why: &str) {
        let before = self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        let after = before.saturating_add(1);
        if before == 0 || after.ilog2() > before.ilog2() {
            tracing::error!(dropped_total = after, "{why}: audit events dropped");
        }
    }
}

impl AuditSink for DurableAuditSink {
    fn record(&self, event: AuditEvent) {
        match self.tx.try_send(Msg::Event(Box::new(event))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.lost("the audit store queue is full"),
            Err(mpsc::error::TrySendError::Closed(_)) => self.lost("the audit writer has stopped"),
        }
    }

    fn dropped(&self) -> u64 {
        DurableAuditSink::dropped(self)
    }

    fn flush(&self) -> gatehouse_audit::Flushing<'_> {
        Box::pin(async {
            if let Err(e) = DurableAuditSink::flush(self).await {
                tracing::error!(error = %e, "durable audit: flushing before exit failed");
            }
        })
    }
}

impl std::fmt::Debug for DurableAuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableAuditSink")
            .field("queue_depth", &self.queue_depth())
            .field("spool_depth", &self.spool_depth())
            .field("dropped", &self.dropped())
            .finish()
    }
}

async fn write_loop(
    store: Arc<dyn GovernanceStore>,
    opts: DurableOptions,
    mut spool: Spool,
    mut rx: mpsc::Receiver<Msg>,
    counters: Arc<Counters>,
) {
    let mut prepared = false;
    let mut failures: u64 = 0;
    let mut batch: Vec<AuditEvent> = Vec::with_capacity(opts.batch_size);
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    let mut open = true;
    let mut next_try = tokio::time::Instant::now();
    while open {
        let backlog = !prepared || spool.pending() > 0;
        let received = if backlog {
            // Wake up every `retry` to try the store again.
            tokio::time::timeout(opts.retry, rx.recv()).await.ok()
        } else {
            Some(rx.recv().await)
        };
        let mut next = match received {
            Some(Some(m @ Msg::Event(_))) => {
                tokio::time::sleep(gatehouse_audit::GATHER).await;
                Some(m)
            }
            Some(Some(m)) => Some(m),
            Some(None) => {
                open = false;
                None
            }
            None => None,
        };
        while let Some(msg) = next {
            match msg {
                Msg::Event(e) => batch.push(*e),
                Msg::Flush(tx) => waiters.push(tx),
            }
            if batch.len() >= opts.batch_size {
                break;
            }
            next = match rx.try_recv() {
                Ok(m) => Some(m),
                Err(mpsc::error::TryRecvError::Empty) => None,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    None
                }
            };
        }
        // While the store is failing, try it at most once per `retry`; batches arriving
        // in between go straight to the spool.
        let try_store = tokio::time::Instant::now() >= next_try;
        if try_store && !prepared {
            match store.prepare().await {
                Ok(()) => prepared = true,
                Err(e) => {
                    report(&mut failures, &e, "cannot prepare the governance store");
                    next_try = tokio::time::Instant::now() + opts.retry;
                }
            }
        }
        if try_store && prepared && spool.pending() > 0 {
            match spool.replay(&*store, opts.batch_size).await {
                Ok(n) => {
                    counters.stored.fetch_add(n, Ordering::Relaxed);
                    tracing::info!(events = n, "audit spool replayed into the store");
                    failures = 0;
                }
                Err(e) => {
                    report(&mut failures, &e, "audit spool replay failed; retrying");
                    next_try = tokio::time::Instant::now() + opts.retry;
                }
            }
        }
        if !batch.is_empty() {
            let mut inserted = false;
            if try_store && prepared && spool.pending() == 0 {
                match store.insert_audit(&batch).await {
                    Ok(n) => {
                        counters.stored.fetch_add(n, Ordering::Relaxed);
                        inserted = true;
                        failures = 0;
                    }
                    Err(e) => {
                        report(&mut failures, &e, "audit store unreachable; spooling");
                        next_try = tokio::time::Instant::now() + opts.retry;
                    }
                }
            }
            if !inserted {
                if let Err(e) = spool.append(&batch).await {
                    tracing::error!(error = %e, events = batch.len(), "cannot spool audit events");
                    counters
                        .dropped
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
            }
            batch.clear();
        }
        counters.spooled.store(spool.pending(), Ordering::Relaxed);
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

/// Logs a store failure at the 1st, 2nd, 4th, 8th, ... consecutive failure.
fn report(failures: &mut u64, e: &crate::StoreError, what: &str) {
    *failures += 1;
    if failures.is_power_of_two() {
        tracing::warn!(error = %e, consecutive_failures = *failures, "{what}");
    }
}
