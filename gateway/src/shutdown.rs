//! How the process ends: which signal does what, and what is written before it exits.
//!
//! - `SIGTERM`: graceful. The listener stops accepting, open connections drain for
//!   `server.grace_period_seconds` ([`crate::http::service`]), then the process exits.
//! - `SIGQUIT`: graceful upgrade ([`crate::upgrade`]): the listening socket goes to the
//!   new process first.
//! - `SIGINT`: immediate exit; requests in flight are cut.
//!
//! In every case the audit events recorded so far are written to their sinks (the store
//! or its spool, the audit file), bounded by [`AUDIT_FLUSH`], and the pending access-log
//! lines are written ([`LastWords::say`]).
//!
//! `SIGINT` does not use Pingora's fast shutdown, which stops every worker thread's
//! runtime at once: a listener's accept task on one thread can then poll a socket whose
//! I/O driver, on another thread, is already gone. `accept` fails at once, the task
//! retries without yielding, and the thread (so the process) never ends. Seen in the
//! upgrade drill (`tests/e2e/ops_drills.rs`): about one `SIGINT` in twenty left the
//! gateway spinning. Exiting from the signal handler has the same effect for clients
//! and always ends.

use async_trait::async_trait;
use gatehouse_audit::AuditSink;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// The longest the process waits at exit for audit events to reach their sinks.
pub const AUDIT_FLUSH: Duration = Duration::from_secs(5);

/// What the process writes before it exits.
#[derive(Clone)]
pub struct LastWords {
    audit: Arc<dyn AuditSink>,
    background: tokio::runtime::Handle,
}

impl LastWords {
    /// Flushes `audit` on `background` (the runtime its writers run on).
    pub fn new(audit: Arc<dyn AuditSink>, background: tokio::runtime::Handle) -> Self {
        Self { audit, background }
    }

    /// Writes the audit events recorded so far (at most [`AUDIT_FLUSH`]) and the pending
    /// access-log lines. Blocks the calling thread; callable from inside a runtime.
    pub fn say(&self) {
        let (done, wait) = std::sync::mpsc::channel();
        let audit = self.audit.clone();
        self.background.spawn(async move {
            let flushed = tokio::time::timeout(AUDIT_FLUSH, audit.flush()).await;
            let _ = done.send(flushed.is_ok());
        });
        match wait.recv_timeout(AUDIT_FLUSH + Duration::from_secs(1)) {
            Ok(true) => {}
            Ok(false) | Err(_) => tracing::error!(
                timeout_s = AUDIT_FLUSH.as_secs(),
                "audit events not all written before exit"
            ),
        }
        gatehouse_telemetry::flush();
    }

    /// [`LastWords::say`], then ends the process with `code`.
    pub fn exit(&self, code: i32) -> ! {
        self.say();
        std::process::exit(code)
    }
}

/// The gateway's signal handling for Pingora's server (see the module documentation).
pub struct Signals {
    last_words: LastWords,
}

impl Signals {
    /// Handling that says `last_words` before an immediate exit.
    pub fn new(last_words: LastWords) -> Self {
        Self { last_words }
    }
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut quit), Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot handle signals; exiting");
            self.last_words.exit(1)
        };
        tokio::select! {
            _ = quit.recv() => ShutdownSignal::GracefulUpgrade,
            _ = term.recv() => ShutdownSignal::GracefulTerminate,
            _ = int.recv() => {
                tracing::info!("SIGINT received, exiting now");
                self.last_words.exit(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_audit::{AuditEvent, Flushing};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A sink that writes its queued events only when flushed, a moment later.
    #[derive(Default)]
    struct Slow {
        queued: AtomicUsize,
        written: AtomicUsize,
    }

    impl AuditSink for Slow {
        fn record(&self, _: AuditEvent) {
            self.queued.fetch_add(1, Ordering::SeqCst);
        }

        fn flush(&self) -> Flushing<'_> {
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let n = self.queued.swap(0, Ordering::SeqCst);
                self.written.fetch_add(n, Ordering::SeqCst);
            })
        }
    }

    #[test]
    fn last_words_write_the_queued_audit_events() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let sink = Arc::new(Slow::default());
        let words = LastWords::new(sink.clone(), rt.handle().clone());
        sink.queued.store(3, Ordering::SeqCst);
        words.say();
        assert_eq!(sink.written.load(Ordering::SeqCst), 3);
        // Also from a thread that runs a runtime (the signal handler's).
        sink.queued.store(1, Ordering::SeqCst);
        let other = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        other.block_on(async { words.say() });
        assert_eq!(sink.written.load(Ordering::SeqCst), 4);
    }
}
