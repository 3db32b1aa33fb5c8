//! [`AuditError`]: why a sink could not be built or flushed.

use std::path::PathBuf;

/// Why an audit sink could not be opened or flushed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The audit file could not be opened for appending.
    #[error("cannot open the audit file {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A sink's writer task needs a Tokio runtime, and none is running on this thread.
    #[error("audit sinks must be built inside a Tokio runtime")]
    NoRuntime,
    /// The writer task has stopped (its runtime shut down).
    #[error("the audit writer has stopped")]
    WriterStopped,
}
