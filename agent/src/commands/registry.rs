//! Command records: status for every command, and the log buffer of background commands.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokio::sync::watch;

/// Finished records kept for status queries.
pub const MAX_RECORDS: usize = 1024;
/// Bytes of background output kept per command (older bytes are dropped).
pub const MAX_LOG_BYTES: usize = 16 << 20;

/// Output of a background command, addressed by absolute byte offsets.
#[derive(Debug, Default)]
pub struct LogBuffer {
    data: VecDeque<u8>,
    dropped: u64,
}

impl LogBuffer {
    /// Append output, dropping the oldest bytes beyond [`MAX_LOG_BYTES`].
    pub fn append(&mut self, bytes: &[u8]) {
        self.data.extend(bytes);
        let excess = self.data.len().saturating_sub(MAX_LOG_BYTES);
        if excess > 0 {
            self.data.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    /// Bytes from `cursor` (clamped to what is kept) to the end, and the end offset.
    pub fn read_from(&self, cursor: u64) -> (Vec<u8>, u64) {
        let end = self.dropped + self.data.len() as u64;
        let start = cursor.clamp(self.dropped, end);
        let skip = usize::try_from(start - self.dropped).unwrap_or(usize::MAX);
        (self.data.iter().skip(skip).copied().collect(), end)
    }
}

#[derive(Debug)]
struct State {
    running: bool,
    pgid: i32,
    exit_code: Option<i32>,
    error: Option<String>,
    finished_at: Option<DateTime<Utc>>,
}

/// One command started through `/command`.
#[derive(Debug)]
pub struct CommandRecord {
    /// Command id (returned in the `init` event).
    pub id: String,
    /// The command text.
    pub content: String,
    /// Started with `background: true`.
    pub background: bool,
    /// Start time.
    pub started_at: DateTime<Utc>,
    state: Mutex<State>,
    logs: Mutex<LogBuffer>,
    finished: watch::Sender<bool>,
}

/// `CommandStatusResponse` of the execd contract.
#[derive(Debug, Serialize)]
pub struct StatusBody {
    /// Command id.
    pub id: String,
    /// Command text.
    pub content: String,
    /// Still running.
    pub running: bool,
    /// Exit code once finished.
    pub exit_code: Option<i32>,
    /// Why it failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// RFC 3339 start time.
    pub started_at: String,
    /// RFC 3339 finish time, null while running.
    pub finished_at: Option<String>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl CommandRecord {
    /// A running command whose process group is `pgid`.
    pub fn new(id: String, content: String, background: bool, pgid: i32) -> Self {
        Self {
            id,
            content,
            background,
            started_at: Utc::now(),
            state: Mutex::new(State {
                running: true,
                pgid,
                exit_code: None,
                error: None,
                finished_at: None,
            }),
            logs: Mutex::new(LogBuffer::default()),
            finished: watch::channel(false).0,
        }
    }

    /// Record the end of the command.
    pub fn finish(&self, exit_code: i32, error: Option<String>) {
        let mut s = lock(&self.state);
        s.running = false;
        s.pgid = 0;
        s.exit_code = Some(exit_code);
        s.error = error;
        s.finished_at = Some(Utc::now());
        drop(s);
        self.finished.send_replace(true);
    }

    /// Process group while running.
    pub fn running_pgid(&self) -> Option<i32> {
        let s = lock(&self.state);
        (s.running && s.pgid > 0).then_some(s.pgid)
    }

    /// A receiver that turns `true` when the command finishes.
    pub fn finished(&self) -> watch::Receiver<bool> {
        self.finished.subscribe()
    }

    /// Append background output.
    pub fn append_log(&self, bytes: &[u8]) {
        lock(&self.logs).append(bytes);
    }

    /// Background output from `cursor`, and the new tail cursor.
    pub fn read_log(&self, cursor: u64) -> (Vec<u8>, u64) {
        lock(&self.logs).read_from(cursor)
    }

    /// Status as served by `/command/status/{id}`.
    pub fn status(&self) -> StatusBody {
        let s = lock(&self.state);
        StatusBody {
            id: self.id.clone(),
            content: self.content.clone(),
            running: s.running,
            exit_code: s.exit_code,
            error: s.error.clone(),
            started_at: rfc3339(self.started_at),
            finished_at: s.finished_at.map(rfc3339),
        }
    }

    fn is_running(&self) -> bool {
        lock(&self.state).running
    }
}

/// Records by id, plus insertion order for eviction.
type Records = (HashMap<String, Arc<CommandRecord>>, VecDeque<String>);

/// All known commands.
#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<Records>,
}

impl Registry {
    /// Register a record, evicting the oldest finished ones beyond [`MAX_RECORDS`].
    pub fn insert(&self, rec: Arc<CommandRecord>) {
        let mut g = lock(&self.inner);
        let (map, order) = &mut *g;
        order.push_back(rec.id.clone());
        map.insert(rec.id.clone(), rec);
        if map.len() > MAX_RECORDS {
            let victim = order
                .iter()
                .position(|id| map.get(id).is_some_and(|r| !r.is_running()));
            if let Some(i) = victim {
                if let Some(id) = order.remove(i) {
                    map.remove(&id);
                }
            }
        }
    }

    /// Look a command up.
    pub fn get(&self, id: &str) -> Option<Arc<CommandRecord>> {
        lock(&self.inner).0.get(id).cloned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn log_cursor_is_a_byte_offset() {
        let mut b = LogBuffer::default();
        b.append(b"line1\nline2\n");
        let (all, end) = b.read_from(0);
        assert_eq!(all, b"line1\nline2\n");
        assert_eq!(end, 12);
        b.append(b"line3\n");
        let (tail, end2) = b.read_from(end);
        assert_eq!(tail, b"line3\n");
        assert_eq!(end2, 18);
        let (none, end3) = b.read_from(999);
        assert!(none.is_empty());
        assert_eq!(end3, 18);
    }

    #[test]
    fn finished_records_report_exit_code() {
        let r = CommandRecord::new("id1".into(), "echo".into(), false, 42);
        assert_eq!(r.running_pgid(), Some(42));
        let mut rx = r.finished();
        r.finish(3, Some("exit status 3".into()));
        assert!(*rx.borrow_and_update());
        let s = r.status();
        assert!(!s.running);
        assert_eq!(s.exit_code, Some(3));
        assert!(s.finished_at.is_some());
        assert_eq!(r.running_pgid(), None);
    }

    #[test]
    fn registry_evicts_oldest_finished() {
        let reg = Registry::default();
        for i in 0..=MAX_RECORDS {
            let r = Arc::new(CommandRecord::new(format!("c{i}"), String::new(), false, 1));
            r.finish(0, None);
            reg.insert(r);
        }
        assert!(reg.get("c0").is_none());
        assert!(reg.get(&format!("c{MAX_RECORDS}")).is_some());
    }
}
