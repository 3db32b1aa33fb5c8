//! The spool: an append-only JSON-lines file of events waiting for the store.

use crate::store::GovernanceStore;
use crate::StoreError;
use gatehouse_audit::AuditEvent;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// `<dir>/audit.spool`, opened for appending.
pub(super) struct Spool {
    path: PathBuf,
    file: tokio::fs::File,
    /// Events in the file not yet known to be in the store.
    pending: u64,
    /// Bytes at the start of the file already replayed in this process (skipped by the
    /// next replay attempt; a new process starts from 0, which inserts idempotently).
    replayed: usize,
}

impl Spool {
    /// Opens (creating) the spool file in `dir` and counts the events it holds.
    pub(super) async fn open(dir: &Path) -> Result<Self, StoreError> {
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Spool { path, source }
        };
        tokio::fs::create_dir_all(dir).await.map_err(err(dir))?;
        let path = dir.join("audit.spool");
        let mut options = tokio::fs::OpenOptions::new();
        options.create(true).append(true).read(true);
        #[cfg(unix)]
        options.mode(0o600);
        let file = options.open(&path).await.map_err(err(&path))?;
        let data = tokio::fs::read(&path).await.map_err(err(&path))?;
        let pending = data
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count() as u64;
        if pending > 0 {
            tracing::info!(events = pending, path = %path.display(), "audit spool holds events from a previous run; replaying");
        }
        Ok(Self {
            path,
            file,
            pending,
            replayed: 0,
        })
    }

    /// Events waiting.
    pub(super) fn pending(&self) -> u64 {
        self.pending
    }

    fn io(&self, source: std::io::Error) -> StoreError {
        StoreError::Spool {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends `events` as JSON lines with one write and one `fsync`.
    pub(super) async fn append(&mut self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let mut buf = Vec::with_capacity(events.len() * 512);
        let mut n = 0;
        for e in events {
            if serde_json::to_writer(&mut buf, e).is_ok() {
                buf.push(b'\n');
                n += 1;
            }
        }
        self.file.write_all(&buf).await.map_err(|e| self.io(e))?;
        self.file.sync_data().await.map_err(|e| self.io(e))?;
        self.pending += n;
        Ok(())
    }

    /// Inserts the spooled events into `store` in file order, `batch` at a time; when all
    /// are in, truncates the file. Returns how many rows were new. On error the events
    /// stay spooled (those already inserted are skipped by id on the next attempt).
    pub(super) async fn replay(
        &mut self,
        store: &dyn GovernanceStore,
        batch: usize,
    ) -> Result<u64, StoreError> {
        let data = tokio::fs::read(&self.path).await.map_err(|e| self.io(e))?;
        let mut offset = self.replayed.min(data.len());
        let mut events = Vec::with_capacity(batch);
        let mut new = 0;
        while offset < data.len() {
            let end = data[offset..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(data.len(), |i| offset + i + 1);
            let line = &data[offset..end];
            offset = end;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<AuditEvent>(line) {
                Ok(e) => events.push(e),
                // A line torn by a crash mid-write: nothing can be recovered from it.
                Err(e) => tracing::warn!(error = %e, "skipping an unreadable audit spool line"),
            }
            if events.len() >= batch || offset >= data.len() {
                new += store.insert_audit(&events).await?;
                self.pending = self.pending.saturating_sub(events.len() as u64);
                events.clear();
                self.replayed = offset;
            }
        }
        if !events.is_empty() {
            new += store.insert_audit(&events).await?;
        }
        // Everything is in the store: start the file afresh.
        self.file.set_len(0).await.map_err(|e| self.io(e))?;
        self.file.sync_data().await.map_err(|e| self.io(e))?;
        self.pending = 0;
        self.replayed = 0;
        Ok(new)
    }
}
