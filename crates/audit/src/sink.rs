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
use std::future::Future;
use std::pin::Pin;

pub use channel::{DEFAULT_CAPACITY, GATHER};
pub use file::FileSink;
pub use memory::MemorySink;
pub use stdout::StdoutSink;
pub use tee::TeeSink;

/// What [`AuditSink::flush`] returns.
pub type Flushing<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

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

    /// Resolves once every event recorded before the call is written (the process is
    /// about to exit). A failure is logged by the sink. Default: nothing is buffered.
    fn flush(&self) -> Flushing<'_> {
        Box::pin(async {})
    }
}
