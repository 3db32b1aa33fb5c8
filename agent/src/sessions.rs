//! Bash sessions (`/session`): one persistent shell process per session.
//!
//! Each run writes `eval '<command>' </dev/null` plus an end marker carrying `$?` to the
//! shell's stdin, so variables, functions and the working directory persist between runs.
//! The command is syntax-checked first with `<shell> -n` (a non-interactive `sh` exits on
//! a syntax error inside `eval`). A command that ends the shell (`exit`, a fatal signal,
//! timeout, interrupt) loses the session state; the next run starts a fresh shell in the
//! session's initial directory.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::Signal;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::commands::runner::{expand_home, EXEC_ERROR};
use crate::error::{code, ApiError};
use crate::output::{spawn_line_reader, Output, Stream};
use crate::process::{group_alive, signal_group, ExitStatus, Processes};
use crate::sse::{EventSink, StreamEvent};
use crate::state::Shared;

/// `RunInSessionRequest` of the execd contract.
#[derive(Debug, Clone, Deserialize)]
pub struct RunInSessionRequest {
    /// Shell command text.
    pub command: String,
    /// Change to this directory first (persists, like `cd`).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Timeout in milliseconds (0 or absent: none).
    #[serde(default)]
    pub timeout: Option<u64>,
}

struct Shell {
    stdin: tokio::net::unix::pipe::Sender,
    out: mpsc::Receiver<Output>,
    exit: oneshot::Receiver<ExitStatus>,
}

/// One session.
pub struct Session {
    /// Session id.
    pub id: String,
    cwd: Option<String>,
    pgid: AtomicI32,
    shell: tokio::sync::Mutex<Option<Shell>>,
}

/// All sessions.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn shell_args(shell: &str) -> &'static [&'static str] {
    if shell.ends_with("bash") {
        &["--noprofile", "--norc"]
    } else {
        &[]
    }
}

impl Sessions {
    /// Create a session (starting its shell) with an optional initial directory.
    pub async fn create(&self, state: &Shared, cwd: Option<String>) -> Result<String, ApiError> {
        let cwd = cwd
            .filter(|c| !c.is_empty())
            .map(|c| expand_home(state, &c));
        if let Some(dir) = &cwd {
            std::fs::create_dir_all(dir)
                .map_err(|e| ApiError::io("create session cwd", dir.as_ref(), e))?;
        }
        let session = Arc::new(Session {
            id: uuid::Uuid::new_v4().to_string(),
            cwd,
            pgid: AtomicI32::new(0),
            shell: tokio::sync::Mutex::new(None),
        });
        let shell = session.spawn_shell(state)?;
        *session.shell.lock().await = Some(shell);
        let id = session.id.clone();
        self.lock().insert(id.clone(), session);
        Ok(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Look a session up.
    pub fn get(&self, id: &str) -> Result<Arc<Session>, ApiError> {
        self.lock().get(id).cloned().ok_or_else(|| {
            ApiError::not_found(code::SESSION_NOT_FOUND, format!("session {id} not found"))
        })
    }

    /// Delete a session, killing its shell.
    pub fn delete(&self, id: &str) -> Result<(), ApiError> {
        let s = self.lock().remove(id);
        let s = s.ok_or_else(|| {
            ApiError::not_found(code::SESSION_NOT_FOUND, format!("session {id} not found"))
        })?;
        s.kill();
        Ok(())
    }
}

impl Session {
    fn spawn_shell(&self, state: &Shared) -> Result<Shell, ApiError> {
        let mut cmd = Command::new(&state.shell);
        cmd.args(shell_args(&state.shell));
        state.env.apply(&mut cmd, None);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut sp = Processes::global()
            .spawn(&mut cmd)
            .map_err(|e| ApiError::internal("start session shell", e))?;
        let stdin = sp
            .child
            .stdin
            .take()
            .ok_or_else(|| ApiError::internal("session shell", "no stdin"))?;
        let stdin = tokio::net::unix::pipe::Sender::from_owned_fd(OwnedFd::from(stdin))
            .map_err(|e| ApiError::internal("session shell stdin", e))?;
        let (tx, rx) = mpsc::channel(1024);
        if let Some(o) = sp.child.stdout.take() {
            spawn_line_reader(OwnedFd::from(o), Stream::Stdout, tx.clone());
        }
        if let Some(e) = sp.child.stderr.take() {
            spawn_line_reader(OwnedFd::from(e), Stream::Stderr, tx);
        }
        self.pgid.store(sp.pid, Ordering::SeqCst);
        Ok(Shell {
            stdin,
            out: rx,
            exit: sp.exit,
        })
    }

    /// Kill the session's shell (and whatever it runs) right away.
    pub fn kill(&self) {
        let pgid = self.pgid.swap(0, Ordering::SeqCst);
        if pgid > 0 {
            let _ = signal_group(pgid, Signal::KILL);
        }
    }

    /// Interrupt the current run: SIGTERM to the shell's group, SIGKILL after 3 s.
    pub async fn interrupt(&self) {
        let pgid = self.pgid.load(Ordering::SeqCst);
        if pgid <= 0 {
            return;
        }
        let _ = signal_group(pgid, Signal::TERM);
        let until = Instant::now() + Duration::from_secs(3);
        while group_alive(pgid) && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = signal_group(pgid, Signal::KILL);
    }

    /// Run one command in the session, streaming events to `sink`.
    pub async fn run(self: Arc<Self>, state: Shared, req: RunInSessionRequest, sink: EventSink) {
        let mut guard = self.shell.lock().await;
        sink.send(StreamEvent::init(&self.id)).await;
        if let Some(code) = syntax_check(&state, &req.command, &sink).await {
            let msg = format!("syntax error (exit code {code}); the command was not run");
            sink.send(StreamEvent::error(EXEC_ERROR, code.to_string(), vec![msg]))
                .await;
            return;
        }
        if guard.is_none() {
            match self.spawn_shell(&state) {
                Ok(s) => *guard = Some(s),
                Err(e) => {
                    tracing::error!(error = %e, "cannot restart session shell");
                    let msg = "cannot start the session shell".to_owned();
                    sink.send(StreamEvent::error(EXEC_ERROR, "127", vec![msg]))
                        .await;
                    return;
                }
            }
        }
        let Some(shell) = guard.as_mut() else { return };
        while shell.out.try_recv().is_ok() {} // output of background jobs between runs
        let marker = format!("__GATEHOUSE_EXECD_DONE_{}__", uuid::Uuid::new_v4().simple());
        let cd = match req.cwd.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => format!("cd {} && ", quote(&expand_home(&state, c))),
            None => String::new(),
        };
        let script = format!(
            "{cd}eval {} </dev/null\n__gh_rc=$?\nprintf '%s:%s\\n' '{marker}' \"$__gh_rc\"\nprintf '%s\\n' '{marker}' >&2\n",
            quote(&req.command)
        );
        let outcome = if shell.stdin.write_all(script.as_bytes()).await.is_err() {
            Outcome::ShellDied(ExitStatus::Exited(-1))
        } else {
            pump(shell, &marker, &sink, req.timeout.filter(|t| *t > 0), &self).await
        };
        match outcome {
            Outcome::Done(0, elapsed) => {
                sink.send(StreamEvent::complete(elapsed)).await;
            }
            Outcome::Done(rc, _) => {
                let msg = format!("command exited with code {rc}");
                sink.send(StreamEvent::error(EXEC_ERROR, rc.to_string(), vec![msg]))
                    .await;
            }
            Outcome::ShellDied(st) => {
                *guard = None;
                self.pgid.store(0, Ordering::SeqCst);
                let msg = format!("session shell {}; session state was reset", st.describe());
                sink.send(StreamEvent::error(
                    EXEC_ERROR,
                    st.code().to_string(),
                    vec![msg],
                ))
                .await;
            }
            Outcome::TimedOut(ms) => {
                *guard = None;
                self.kill();
                let msg = format!("command timed out after {ms} ms; session state was reset");
                sink.send(StreamEvent::error(EXEC_ERROR, "137", vec![msg]))
                    .await;
            }
            Outcome::ClientGone => {
                *guard = None;
                self.kill();
            }
        }
    }
}

enum Outcome {
    Done(i32, Duration),
    ShellDied(ExitStatus),
    TimedOut(u64),
    ClientGone,
}

async fn pump(
    shell: &mut Shell,
    marker: &str,
    sink: &EventSink,
    timeout_ms: Option<u64>,
    session: &Session,
) -> Outcome {
    let start = Instant::now();
    let far = start + Duration::from_secs(10 * 365 * 86_400);
    let deadline = timeout_ms
        .map(|t| start + Duration::from_millis(t))
        .unwrap_or(far);
    let (mut rc, mut err_done) = (None::<i32>, false);
    let mut died: Option<ExitStatus> = None;
    let mut drain_until = far;
    let mut out_open = true;
    loop {
        if rc.is_some() && err_done {
            return Outcome::Done(rc.unwrap_or(0), start.elapsed());
        }
        tokio::select! {
            msg = shell.out.recv(), if out_open => match msg {
                Some(Output::Line(stream, line)) => {
                    let (text, found) = match line.find(marker) {
                        Some(pos) => (line[..pos].to_owned(), Some(line[pos + marker.len()..].to_owned())),
                        None => (line, None),
                    };
                    if !text.is_empty() {
                        let ev = match stream {
                            Stream::Stdout => StreamEvent::stdout(text),
                            Stream::Stderr => StreamEvent::stderr(text),
                        };
                        sink.send(ev).await;
                    }
                    match (stream, found) {
                        (Stream::Stdout, Some(rest)) => {
                            rc = Some(rest.trim_start_matches(':').trim().parse().unwrap_or(-1));
                        }
                        (Stream::Stderr, Some(_)) => err_done = true,
                        _ => {}
                    }
                }
                Some(Output::Eof(_)) => {}
                None => {
                    // Both pipes closed: the shell is exiting; its status comes from the
                    // reaper (give up waiting for it after 2 s).
                    out_open = false;
                    if died.is_none() {
                        drain_until = Instant::now() + Duration::from_secs(2);
                    }
                }
            },
            st = &mut shell.exit, if died.is_none() => {
                died = Some(st.unwrap_or(ExitStatus::Exited(-1)));
                drain_until = if out_open {
                    Instant::now() + Duration::from_millis(200)
                } else {
                    Instant::now()
                };
            }
            _ = tokio::time::sleep_until(drain_until), if died.is_some() || !out_open => {
                return Outcome::ShellDied(died.unwrap_or(ExitStatus::Exited(-1)));
            }
            _ = tokio::time::sleep_until(deadline) => {
                session.kill();
                return Outcome::TimedOut(timeout_ms.unwrap_or_default());
            }
            _ = sink.closed() => {
                session.kill();
                return Outcome::ClientGone;
            }
        }
    }
}

/// `<shell> -n` on the command text; on failure its diagnostics are streamed as stderr and
/// its exit code returned.
async fn syntax_check(state: &Shared, command: &str, sink: &EventSink) -> Option<i32> {
    let mut cmd = Command::new(&state.shell);
    cmd.args(shell_args(&state.shell)).arg("-n");
    state.env.apply(&mut cmd, None);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut sp = match Processes::global().spawn(&mut cmd) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "syntax check unavailable");
            return None;
        }
    };
    drop(cmd);
    let (tx, mut rx) = mpsc::channel(64);
    if let Some(e) = sp.child.stderr.take() {
        spawn_line_reader(OwnedFd::from(e), Stream::Stderr, tx);
    }
    if let Some(i) = sp.child.stdin.take() {
        if let Ok(mut w) = tokio::net::unix::pipe::Sender::from_owned_fd(OwnedFd::from(i)) {
            let _ = w.write_all(command.as_bytes()).await;
            let _ = w.write_all(b"\n").await;
        }
    }
    let mut diag = Vec::new();
    while let Some(Output::Line(_, l)) = rx.recv().await {
        diag.push(l);
    }
    let code = sp.exit.await.unwrap_or(ExitStatus::Exited(0)).code();
    if code == 0 {
        return None;
    }
    for l in diag {
        sink.send(StreamEvent::stderr(l)).await;
    }
    Some(code)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("a b"), "'a b'");
    }
}
