//! [`Batched`]: the log writer, with per-request access-log lines written in batches.
//!
//! The `fmt` layer formats each event into one buffer and hands it to its writer in one
//! call. At thousands of requests per second one `write(2)` per access-log line costs more
//! than everything else the line costs (measured: 5–8 µs of a 40–50 µs request on the
//! 2-vCPU bench VM). nginx (`access_log … buffer=`) and Envoy (the access-log file flush
//! interval) batch for the same reason. So lines of the target [`ACCESS_LOG_TARGET`] are
//! appended to a buffer of the thread that logs them and written when it holds
//! [`FLUSH_BYTES`], or by a background thread at the latest every [`FLUSH_INTERVAL`].
//! Every other line is written at once, after the thread's pending access-log lines, so
//! the lines of one thread keep their order. [`flush`] writes everything pending (the
//! binaries call it before they exit); a process killed with `SIGKILL` loses at most one
//! interval of access-log lines. Audit events are not log lines: they have their own
//! durable sink.
//!
//! `tracing-appender`'s non-blocking writer is not used here: it sends every line through
//! a channel to a worker thread, which wakes that thread (a `futex` call and a context
//! switch) for nearly every line at the rates where batching matters.

use std::cell::RefCell;
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;

/// The target of the gateway's per-request access-log line (`RUST_LOG=gatehouse::access=off`
/// turns it off). Its lines are batched.
pub const ACCESS_LOG_TARGET: &str = "gatehouse::access";

/// A thread's pending access-log lines are written once they reach this size.
pub const FLUSH_BYTES: usize = 32 * 1024;

/// Pending access-log lines are written at the latest after this long.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Where batches go.
pub type Sink = Box<dyn Fn(&[u8]) + Send + Sync>;

type Buffer = Arc<Mutex<Vec<u8>>>;

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's buffers, one per [`Batched`] writer it logged through (one in a
    /// binary; tests make more).
    static LOCAL: RefCell<Vec<Local>> = const { RefCell::new(Vec::new()) };
}

/// A thread's buffer of one writer; written out when the thread ends.
struct Local {
    id: usize,
    buffer: Buffer,
    shared: Weak<Shared>,
}

impl Drop for Local {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            let pending = std::mem::take(&mut *lock(&self.buffer));
            shared.write(&pending);
        }
    }
}

struct Shared {
    id: usize,
    sink: Sink,
    /// Every thread's buffer, for the flusher and [`Batched::flush`].
    buffers: Mutex<Vec<Weak<Mutex<Vec<u8>>>>>,
    /// Serializes writes to the sink, so batches and lines never interleave.
    writing: Mutex<()>,
}

impl Shared {
    fn write(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let _one_at_a_time = lock(&self.writing);
        (self.sink)(bytes);
    }

    fn flush_all(&self) {
        let buffers: Vec<Buffer> = {
            let mut all = lock(&self.buffers);
            all.retain(|b| b.strong_count() > 0);
            all.iter().filter_map(Weak::upgrade).collect()
        };
        for b in buffers {
            // Taken and written under `writing`, so a line the thread writes at once
            // meanwhile cannot overtake these.
            let _one_at_a_time = lock(&self.writing);
            let pending = std::mem::take(&mut *lock(&b));
            if !pending.is_empty() {
                (self.sink)(&pending);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A `MakeWriter` for the `fmt` layer: access-log lines batched per thread, the rest
/// written at once (see the module documentation).
#[derive(Clone)]
pub struct Batched {
    shared: Arc<Shared>,
}

impl Batched {
    /// Writes to `sink`, with a background thread writing pending access-log lines every
    /// `interval`. The thread ends when the last clone of the writer is dropped.
    pub fn new(sink: Sink, interval: Duration) -> Self {
        let shared = Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            sink,
            buffers: Mutex::new(Vec::new()),
            writing: Mutex::new(()),
        });
        let weak = Arc::downgrade(&shared);
        let spawned = std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(move || loop {
                std::thread::sleep(interval);
                match weak.upgrade() {
                    Some(shared) => shared.flush_all(),
                    None => return,
                }
            });
        if let Err(e) = spawned {
            // Lines are then written at FLUSH_BYTES, at the next non-batched line of the
            // same thread, and by `flush`.
            eprintln!("log flush thread not started: {e}");
        }
        Self { shared }
    }

    /// Standard error, flushed every [`FLUSH_INTERVAL`].
    pub fn stderr() -> Self {
        Self::new(
            Box::new(|bytes| {
                let _ = io::stderr().lock().write_all(bytes);
            }),
            FLUSH_INTERVAL,
        )
    }

    /// Writes every thread's pending lines now.
    pub fn flush(&self) {
        self.shared.flush_all();
    }

    /// Appends `line` to this thread's buffer; writes the buffer when it is full.
    fn append(&self, line: &[u8]) {
        let full = LOCAL.try_with(|local| {
            let mut local = local.borrow_mut();
            let i = match local.iter().position(|l| l.id == self.shared.id) {
                Some(i) => i,
                None => {
                    let buffer = Arc::new(Mutex::new(Vec::with_capacity(FLUSH_BYTES)));
                    lock(&self.shared.buffers).push(Arc::downgrade(&buffer));
                    local.push(Local {
                        id: self.shared.id,
                        buffer,
                        shared: Arc::downgrade(&self.shared),
                    });
                    local.len() - 1
                }
            };
            let mut b = lock(&local[i].buffer);
            b.extend_from_slice(line);
            (b.len() >= FLUSH_BYTES).then(|| std::mem::take(&mut *b))
        });
        match full {
            Ok(Some(batch)) => self.shared.write(&batch),
            Ok(None) => {}
            // The thread is ending: no buffer any more.
            Err(_) => self.shared.write(line),
        }
    }

    /// Writes `line` now, after this thread's pending lines.
    fn write_now(&self, line: &[u8]) {
        let _one_at_a_time = lock(&self.shared.writing);
        let pending = LOCAL
            .try_with(|local| {
                local
                    .borrow()
                    .iter()
                    .find(|l| l.id == self.shared.id)
                    .map(|l| std::mem::take(&mut *lock(&l.buffer)))
            })
            .ok()
            .flatten()
            .unwrap_or_default();
        if !pending.is_empty() {
            (self.shared.sink)(&pending);
        }
        (self.shared.sink)(line);
    }
}

/// One event's writer.
pub struct Line<'a> {
    writer: &'a Batched,
    batched: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.batched {
            self.writer.append(buf);
        } else {
            self.writer.write_now(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Batched {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            writer: self,
            batched: false,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        Line {
            writer: self,
            batched: meta.target() == ACCESS_LOG_TARGET,
        }
    }
}

static PROCESS: OnceLock<Batched> = OnceLock::new();

/// The process's log writer (standard error), made once.
pub(crate) fn process() -> Batched {
    PROCESS.get_or_init(Batched::stderr).clone()
}

/// Writes the pending access-log lines of every thread; call before the process exits.
pub fn flush() {
    if let Some(w) = PROCESS.get() {
        w.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    fn capture(interval: Duration) -> (Batched, Arc<Mutex<Vec<u8>>>) {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let w = Batched::new(
            Box::new(move |b| lock(&sink).extend_from_slice(b)),
            interval,
        );
        (w, out)
    }

    fn text(out: &Arc<Mutex<Vec<u8>>>) -> String {
        String::from_utf8(lock(out).clone()).unwrap()
    }

    fn subscriber(w: Batched) -> impl tracing::Subscriber {
        tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(w)
                .with_ansi(false)
                .without_time(),
        )
    }

    #[test]
    fn access_lines_wait_for_the_flush_and_other_lines_keep_their_order() {
        let (w, out) = capture(Duration::from_secs(3600));
        tracing::subscriber::with_default(subscriber(w.clone()), || {
            tracing::info!(target: ACCESS_LOG_TARGET, n = 1, "request");
            tracing::info!(target: ACCESS_LOG_TARGET, n = 2, "request");
            assert_eq!(text(&out), "", "access lines are held");
            tracing::warn!("something else");
        });
        let t = text(&out);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].contains("n=1") && lines[1].contains("n=2"), "{t}");
        assert!(lines[2].contains("WARN") && lines[2].contains("something else"));
    }

    #[test]
    fn the_background_thread_writes_pending_lines() {
        let (w, out) = capture(Duration::from_millis(20));
        tracing::subscriber::with_default(subscriber(w.clone()), || {
            tracing::info!(target: ACCESS_LOG_TARGET, "request");
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while text(&out).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(text(&out).contains("request"));
    }

    #[test]
    fn a_full_buffer_is_written_at_once_and_flush_writes_the_rest() {
        let (w, out) = capture(Duration::from_secs(3600));
        let pad = "x".repeat(1000);
        tracing::subscriber::with_default(subscriber(w.clone()), || {
            for n in 0..40 {
                tracing::info!(target: ACCESS_LOG_TARGET, n, pad = %pad, "request");
            }
        });
        let written = text(&out).lines().count();
        // About 1 KB a line: the first 32 KiB went out as one batch, the rest waits.
        assert!(
            (FLUSH_BYTES / 1100..40).contains(&written),
            "{written} lines written before the flush"
        );
        w.flush();
        assert_eq!(text(&out).lines().count(), 40);
    }

    #[test]
    fn lines_of_a_thread_that_ends_are_written() {
        let (w, out) = capture(Duration::from_secs(3600));
        let w2 = w.clone();
        std::thread::spawn(move || {
            tracing::subscriber::with_default(subscriber(w2), || {
                tracing::info!(target: ACCESS_LOG_TARGET, "from a worker");
            });
        })
        .join()
        .unwrap();
        assert!(text(&out).contains("from a worker"));
    }
}
