//! [`FileSink`]: JSON lines appended to a file.

use super::channel::{ChannelSink, DEFAULT_CAPACITY};
use super::AuditSink;
use crate::error::AuditError;
use crate::event::AuditEvent;
use std::path::{Path, PathBuf};

#[cfg(test)]
mod tests;

/// Appends one JSON object per line to a file, from a writer task.
///
/// The file is created if missing (mode `0640` on Unix) and never truncated. When the
/// queue (65536 events) is full, events are dropped, counted in [`FileSink::dropped`],
/// and an error is logged.
pub struct FileSink {
    inner: ChannelSink,
    path: PathBuf,
}

impl FileSink {
    /// Opens `path` for appending and starts the writer task on the current Tokio runtime.
    pub fn open(path: impl AsRef<Path>) -> Result<FileSink, AuditError> {
        Self::open_with_capacity(path, DEFAULT_CAPACITY)
    }

    /// Like [`FileSink::open`], with a queue of `capacity` events (at least 1).
    pub fn open_with_capacity(
        path: impl AsRef<Path>,
        capacity: usize,
    ) -> Result<FileSink, AuditError> {
        let path = path.as_ref().to_path_buf();
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
        let file = options.open(&path).map_err(|source| AuditError::Open {
            path: path.clone(),
            source,
        })?;
        let inner = ChannelSink::spawn(
            tokio::fs::File::from_std(file),
            capacity,
            path.display().to_string(),
        )?;
        Ok(FileSink { inner, path })
    }

    /// The audit file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Events lost so far (queue full, writer stopped, write failed).
    pub fn dropped(&self) -> u64 {
        self.inner.dropped()
    }

    /// Waits until every event recorded before this call is written and flushed.
    pub async fn flush(&self) -> Result<(), AuditError> {
        self.inner.flush().await
    }
}

impl AuditSink for FileSink {
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

impl std::fmt::Debug for FileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSink")
            .field("path", &self.path)
            .field("dropped", &self.dropped())
            .finish()
    }
}
