//! [`TeeSink`]: every event to several sinks (e.g. the log file and the durable store).

use super::AuditSink;
use crate::event::AuditEvent;
use std::sync::Arc;

/// Records each event in every sink, in order; `dropped` is the sum.
pub struct TeeSink {
    sinks: Vec<Arc<dyn AuditSink>>,
}

impl TeeSink {
    /// A sink feeding `sinks`.
    pub fn new(sinks: Vec<Arc<dyn AuditSink>>) -> Self {
        Self { sinks }
    }
}

impl AuditSink for TeeSink {
    fn record(&self, event: AuditEvent) {
        if let Some((last, rest)) = self.sinks.split_last() {
            for s in rest {
                s.record(event.clone());
            }
            last.record(event);
        }
    }

    fn dropped(&self) -> u64 {
        self.sinks.iter().map(|s| s.dropped()).sum()
    }

    fn flush(&self) -> super::Flushing<'_> {
        Box::pin(async {
            for s in &self.sinks {
                s.flush().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::MemorySink;

    #[test]
    fn every_sink_gets_every_event() {
        let a = Arc::new(MemorySink::new());
        let b = Arc::new(MemorySink::new());
        let t = TeeSink::new(vec![a.clone(), b.clone()]);
        t.record(crate::event::sample(1));
        t.record(crate::event::sample(2));
        assert_eq!((a.len(), b.len()), (2, 2));
        assert_eq!(t.dropped(), 0);
    }
}
