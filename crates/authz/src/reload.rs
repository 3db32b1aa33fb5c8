//! Hot reload: the current role table behind a lock-free pointer, and a watcher that
//! swaps in a new table when the file changes, but only if it is valid.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::error::PolicyError;
use crate::table::RoleTable;

/// The role table in force. Readers call [`PolicyStore::current`] on every request;
/// the watcher replaces the table atomically, so a request sees one whole table.
#[derive(Debug)]
pub struct PolicyStore {
    table: ArcSwap<RoleTable>,
}

impl PolicyStore {
    /// A store holding `table`.
    pub fn new(table: RoleTable) -> PolicyStore {
        PolicyStore {
            table: ArcSwap::from_pointee(table),
        }
    }

    /// The table in force: lock-free and cheap (one reference count increment). Keep the
    /// `Arc` for the whole request so every decision uses the same table.
    pub fn current(&self) -> Arc<RoleTable> {
        self.table.load_full()
    }

    /// Replaces the table in force.
    pub fn replace(&self, table: RoleTable) {
        self.table.store(Arc::new(table));
    }

    /// Polls `path` every `every` (at least 1 ms) and reloads it when its modification
    /// time, length or content hash changes. A valid file replaces the table
    /// (`info` log "role table reloaded"); an invalid or unreadable one is logged at
    /// `error` and the previous table stays in force.
    ///
    /// The file's state when this is called is the baseline: the table given to
    /// [`PolicyStore::new`] is assumed to come from it. The task ends when the store is
    /// dropped, or when the handle is aborted. Must be called within a Tokio runtime.
    pub fn spawn_watcher(self: Arc<Self>, path: PathBuf, every: Duration) -> JoinHandle<()> {
        let store: Weak<Self> = Arc::downgrade(&self);
        drop(self);
        let mut seen = read_version(&path).ok().map(|(fp, _)| fp);
        let every = every.max(Duration::from_millis(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(store) = store.upgrade() else { return };
                let p = path.clone();
                let read = tokio::task::spawn_blocking(move || read_version(&p)).await;
                let outcome = match read {
                    Ok(Ok((fp, _))) if seen.as_ref() == Some(&fp) => continue,
                    Ok(Ok((fp, text))) => {
                        seen = Some(fp);
                        RoleTable::parse(&text)
                    }
                    Ok(Err(_)) | Err(_) if seen.is_none() => continue,
                    Ok(Err(source)) => {
                        seen = None;
                        Err(PolicyError::Io {
                            path: path.clone(),
                            source,
                        })
                    }
                    Err(join) => {
                        seen = None;
                        Err(PolicyError::Io {
                            path: path.clone(),
                            source: std::io::Error::other(join),
                        })
                    }
                };
                match outcome {
                    Ok(table) => {
                        store.replace(table);
                        tracing::info!(path = %path.display(), "role table reloaded");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "role table rejected; keeping the previous one");
                    }
                }
            }
        })
    }
}

/// What identifies one version of the file: modification time, length, content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
    hash: u64,
}

/// Reads the file once: its fingerprint and its text.
fn read_version(path: &Path) -> std::io::Result<(Fingerprint, String)> {
    let meta = std::fs::metadata(path)?;
    let bytes = std::fs::read(path)?;
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    let fp = Fingerprint {
        modified: meta.modified().ok(),
        len: meta.len(),
        hash: h.finish(),
    };
    let text = String::from_utf8(bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok((fp, text))
}

#[cfg(test)]
mod tests;
