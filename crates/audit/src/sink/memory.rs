//! [`MemorySink`]: events kept in memory, for tests.

use super::AuditSink;
use crate::event::AuditEvent;
use std::sync::{Mutex, MutexGuard};

/// Keeps every event in a `Vec` behind a mutex. Meant for tests (of this crate and of the
/// gateway); it grows without bound, so do not use it in production.
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the events recorded so far, in order.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.lock().clone()
    }

    /// Removes and returns the events recorded so far.
    pub fn take(&self) -> Vec<AuditEvent> {
        std::mem::take(&mut *self.lock())
    }

    /// How many events are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<AuditEvent>> {
        // A panic while holding the lock cannot leave a Vec half-pushed; keep going.
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl AuditSink for MemorySink {
    fn record(&self, event: AuditEvent) {
        self.lock().push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::sample;

    #[test]
    fn keeps_events_in_order() {
        let s = MemorySink::new();
        assert!(s.is_empty());
        for i in 0..3 {
            s.record(sample(i));
        }
        assert_eq!(s.len(), 3);
        let ids: Vec<String> = s.events().into_iter().map(|e| e.request_id).collect();
        assert_eq!(ids, ["req-0", "req-1", "req-2"]);
        assert_eq!(s.take().len(), 3);
        assert!(s.is_empty());
        assert_eq!(AuditSink::dropped(&s), 0);
    }
}
