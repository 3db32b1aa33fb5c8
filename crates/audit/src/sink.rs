//! The [`AuditSink`] trait and its implementations.
//!
//! [`FileSink`] and [`StdoutSink`] hand events to a bounded queue read by a writer task,
//! so [`AuditSink::record`] never blocks or awaits; [`MemorySink`] keeps events for tests.

mod channel;
mod file;
mod memory;
mod stdout;
mod tee;

use crate::event::AuditEvent;

pub use channel::{DEFAULT_CAPACITY, GATHER};
pub use file::FileSink;
pub use memory::MemorySink;
pub use stdout::StdoutSink;
pub use tee::TeeSink;

/// Where audit events go. Called from the proxy's logging phase: implementations must
/// never block the caller (no I/O, no awaiting, no unbounded waiting on locks).
pub trait AuditSink: Send + Sync {
    /// Records one event. Never blocks; an event that cannot be queued is dropped and
    /// counted in [`AuditSink::dropped`].
    fn record(&self, event: AuditEvent);

    /// How many events were lost so far (queue full, writer stopped, write failed).
    fn dropped(&self) -> u64 {
        0
    }
}
