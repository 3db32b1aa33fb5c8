//! [`StdoutSink`]: JSON lines on standard output.

use super::channel::{ChannelSink, DEFAULT_CAPACITY};
use super::AuditSink;
use crate::error::AuditError;
use crate::event::AuditEvent;

/// Writes one JSON object per line to standard output, from a writer task. Same queue and
/// drop behaviour as [`super::FileSink`].
pub struct StdoutSink {
    inner: ChannelSink,
}

impl StdoutSink {
    /// Starts the writer task on the current Tokio runtime.
    pub fn new() -> Result<StdoutSink, AuditError> {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// Like [`StdoutSink::new`], with a queue of `capacity` events (at least 1).
    pub fn with_capacity(capacity: usize) -> Result<StdoutSink, AuditError> {
        let inner = ChannelSink::spawn(tokio::io::stdout(), capacity, "stdout".to_string())?;
        Ok(StdoutSink { inner })
    }

    /// Events lost so far.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped()
    }

    /// Waits until every event recorded before this call is written and flushed.
    pub async fn flush(&self) -> Result<(), AuditError> {
        self.inner.flush().await
    }
}

impl AuditSink for StdoutSink {
    fn record(&self, event: AuditEvent) {
        self.inner.record(event);
    }

    fn dropped(&self) -> u64 {
        self.inner.dropped()
    }

    fn flush(&self) -> super::Flushing<'_> {
        self.inner.flush_logged()
    }
}

impl std::fmt::Debug for StdoutSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdoutSink")
            .field("dropped", &self.dropped())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_and_flushes() {
        let s = StdoutSink::new().unwrap();
        s.record(crate::event::sample(1));
        s.flush().await.unwrap();
        assert_eq!(s.dropped(), 0);
        assert!(format!("{s:?}").contains("StdoutSink"));
    }

    #[test]
    fn needs_a_runtime() {
        assert!(matches!(StdoutSink::new(), Err(AuditError::NoRuntime)));
    }
}
