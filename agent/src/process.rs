//! Child processes: one table, one reaper.
//!
//! The agent may run as PID 1, where orphans are re-parented to it, so it reaps with
//! `waitpid(-1)`. To avoid racing that reaper, every child is spawned here (never through
//! `tokio::process` or `Command::status`), and its exit status is delivered through the
//! table. A dedicated thread blocks in `waitid(P_ALL, WEXITED|WNOWAIT)` (which does not
//! reap) and then reaps under the table lock; spawning holds the same lock, so a child is
//! never reaped before it is registered, nor while `std` still waits on a failed `exec`.

use std::collections::HashMap;
use std::io;
use std::process::{Child, Command};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, WaitOptions};
use tokio::sync::oneshot;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Normal exit with this code.
    Exited(i32),
    /// Killed by this signal number.
    Signaled(i32),
}

impl ExitStatus {
    /// Shell-style code: the exit code, or 128 + signal number.
    pub fn code(self) -> i32 {
        match self {
            Self::Exited(c) => c,
            Self::Signaled(s) => 128 + s,
        }
    }

    /// One-line human description.
    pub fn describe(self) -> String {
        match self {
            Self::Exited(c) => format!("exited with code {c}"),
            Self::Signaled(s) => format!("killed by signal {s} ({})", signal_name(s)),
        }
    }
}

/// Name of common signals, for messages.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => "signal",
    }
}

#[derive(Default)]
struct Table {
    waiters: HashMap<i32, oneshot::Sender<ExitStatus>>,
}

/// Registry of spawned children. There is one per process (see [`Processes::global`]),
/// because `waitpid(-1)` is process-wide.
pub struct Processes {
    table: Mutex<Table>,
    spawned: Condvar,
}

/// A spawned child whose exit status will be delivered by the reaper.
pub struct Spawned {
    /// The std handle (for its pipes); never waited on directly.
    pub child: Child,
    /// Process id (also the process-group id when spawned with `process_group(0)`).
    pub pid: i32,
    /// Resolves when the reaper collects the child.
    pub exit: oneshot::Receiver<ExitStatus>,
}

static GLOBAL: OnceLock<Processes> = OnceLock::new();

impl Processes {
    /// The process-wide table; the first call starts the reaper thread.
    pub fn global() -> &'static Processes {
        GLOBAL.get_or_init(|| {
            let started = std::thread::Builder::new()
                .name("reaper".into())
                .spawn(|| Processes::global().reaper_loop());
            if let Err(e) = started {
                tracing::error!(error = %e, "cannot start the reaper thread");
            }
            Processes {
                table: Mutex::new(Table::default()),
                spawned: Condvar::new(),
            }
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A poisoned lock only means another thread panicked mid-update; the map stays usable.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawn `cmd` and register it for reaping.
    pub fn spawn(&self, cmd: &mut Command) -> io::Result<Spawned> {
        let mut table = self.lock();
        let child = cmd.spawn()?;
        let pid = i32::try_from(child.id()).map_err(io::Error::other)?;
        let (tx, rx) = oneshot::channel();
        table.waiters.insert(pid, tx);
        drop(table);
        self.spawned.notify_all();
        Ok(Spawned {
            child,
            pid,
            exit: rx,
        })
    }

    /// Collect every exited child without blocking; returns how many were reaped.
    pub fn reap_all(&self) -> usize {
        let mut table = self.lock();
        let mut count = 0;
        loop {
            match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some((pid, status))) => {
                    count += 1;
                    let st = if let Some(c) = status.exit_status() {
                        ExitStatus::Exited(c)
                    } else if let Some(s) = status.terminating_signal() {
                        ExitStatus::Signaled(s)
                    } else {
                        continue; // stopped/continued: not an exit
                    };
                    if let Some(tx) = table.waiters.remove(&pid.as_raw_nonzero().get()) {
                        let _ = tx.send(st);
                    }
                }
                Ok(None) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break, // ECHILD: no children at all
            }
        }
        count
    }

    /// Block (without reaping) until some child is exitable, then reap under the lock.
    fn reaper_loop(&self) {
        loop {
            match rustix::process::waitid(
                WaitId::All,
                WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
            ) {
                Ok(_) => {
                    self.reap_all();
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => {
                    // No children: sleep until the next spawn (or a second, for orphans
                    // re-parented to us while we are PID 1).
                    let table = self.lock();
                    let _ = self
                        .spawned
                        .wait_timeout(table, Duration::from_secs(1))
                        .map(drop);
                }
            }
        }
    }
}

/// Send `sig` to the process group `pgid`; a vanished group is not an error.
pub fn signal_group(pgid: i32, sig: Signal) -> io::Result<()> {
    let Some(pid) = Pid::from_raw(pgid) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "invalid pgid"));
    };
    match rustix::process::kill_process_group(pid, sig) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Send `sig` to the single process `pid`; a vanished process is not an error.
pub fn signal_process(pid: i32, sig: Signal) -> io::Result<()> {
    let Some(p) = Pid::from_raw(pid) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "invalid pid"));
    };
    match rustix::process::kill_process(p, sig) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// True while any process of group `pgid` exists.
pub fn group_alive(pgid: i32) -> bool {
    Pid::from_raw(pgid)
        .map(|p| rustix::process::test_kill_process_group(p).is_ok())
        .unwrap_or(false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reaper_delivers_exit_codes_and_signals() {
        let procs = Processes::global();
        let s = procs
            .spawn(Command::new("sh").args(["-c", "exit 7"]))
            .unwrap();
        assert_eq!(s.exit.await.unwrap(), ExitStatus::Exited(7));
        let mut cmd = Command::new("sleep");
        std::os::unix::process::CommandExt::process_group(cmd.arg("30"), 0);
        let s = procs.spawn(&mut cmd).unwrap();
        signal_group(s.pid, Signal::KILL).unwrap();
        let st = s.exit.await.unwrap();
        assert_eq!(st, ExitStatus::Signaled(9));
        assert_eq!(st.code(), 137);
    }

    #[test]
    fn spawn_failure_is_an_error_not_a_panic() {
        let procs = Processes::global();
        assert!(procs
            .spawn(&mut Command::new("/nonexistent/definitely-not-here"))
            .is_err());
    }
}
