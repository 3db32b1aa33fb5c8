//! Running `/command` requests: foreground (streamed) and background (logged).

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustix::process::Signal;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::registry::CommandRecord;
use crate::accounts::Accounts;
use crate::error::ApiError;
use crate::output::{spawn_line_reader, spawn_raw_reader, Output, Stream};
use crate::process::{signal_group, ExitStatus, Processes};
use crate::sse::{EventSink, StreamEvent};
use crate::state::Shared;

/// Error name used in `error` events (upstream's).
pub const EXEC_ERROR: &str = "CommandExecError";
/// How long output is still collected after the process exits (pipes may be held open by
/// processes it left behind).
const DRAIN_GRACE: Duration = Duration::from_millis(200);

/// `RunCommandRequest` of the execd contract (plus the SDK's `argv`).
#[derive(Debug, Clone, Deserialize)]
pub struct RunCommandRequest {
    /// Shell command text (run with `<shell> -c`).
    #[serde(default)]
    pub command: Option<String>,
    /// Program and arguments, executed without a shell (the SDK sends this for lists).
    #[serde(default)]
    pub argv: Option<Vec<String>>,
    /// Working directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Detach and keep logs instead of streaming.
    #[serde(default)]
    pub background: bool,
    /// Kill the command after this many milliseconds (0 or absent: never).
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Run as this uid.
    #[serde(default)]
    pub uid: Option<u32>,
    /// Run as this gid (requires `uid`).
    #[serde(default)]
    pub gid: Option<u32>,
    /// Extra environment variables.
    #[serde(default)]
    pub envs: Option<BTreeMap<String, String>>,
}

impl RunCommandRequest {
    /// Contract checks done before any stream starts.
    pub fn validate(&self) -> Result<(), ApiError> {
        match (&self.command, &self.argv) {
            (Some(c), None) if !c.trim().is_empty() => {}
            (None, Some(a)) if a.first().is_some_and(|p| !p.is_empty()) => {}
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "give either 'command' or 'argv', not both",
                ))
            }
            _ => {
                return Err(ApiError::bad_request(
                    "'command' must be a non-empty string",
                ))
            }
        }
        if self.gid.is_some() && self.uid.is_none() {
            return Err(ApiError::bad_request("'gid' requires 'uid'"));
        }
        if let Some(envs) = &self.envs {
            if envs
                .keys()
                .any(|k| k.is_empty() || k.contains('=') || k.contains('\0'))
            {
                return Err(ApiError::bad_request(
                    "invalid environment variable name in 'envs'",
                ));
            }
        }
        Ok(())
    }

    fn content(&self) -> String {
        match (&self.command, &self.argv) {
            (Some(c), _) => c.clone(),
            (None, Some(a)) => a.join(" "),
            _ => String::new(),
        }
    }

    fn timeout(&self) -> Option<Duration> {
        self.timeout.filter(|&t| t > 0).map(Duration::from_millis)
    }
}

/// Expand a leading `~` with the snapshot's `HOME`.
pub fn expand_home(state: &Shared, p: &str) -> String {
    let home = || {
        state
            .env
            .get("HOME")
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".to_owned())
    };
    if p == "~" {
        home()
    } else if let Some(rest) = p.strip_prefix("~/") {
        format!("{}/{rest}", home().trim_end_matches('/'))
    } else {
        p.to_owned()
    }
}

fn build(state: &Shared, req: &RunCommandRequest) -> Command {
    let mut cmd = match (&req.command, &req.argv) {
        (Some(c), _) => {
            let mut cmd = Command::new(&state.shell);
            cmd.arg("-c").arg(c);
            cmd
        }
        (None, Some(a)) => {
            let mut cmd = Command::new(a.first().map(String::as_str).unwrap_or_default());
            cmd.args(a.iter().skip(1));
            cmd
        }
        (None, None) => Command::new(&state.shell),
    };
    state.env.apply(&mut cmd, req.envs.as_ref());
    if let Some(cwd) = req.cwd.as_deref().filter(|c| !c.is_empty()) {
        cmd.current_dir(expand_home(state, cwd));
    }
    if let Some(uid) = req.uid {
        let gid = req
            .gid
            .or_else(|| Accounts::load().primary_gid(uid))
            .unwrap_or(uid);
        cmd.uid(uid).gid(gid);
    }
    cmd.stdin(Stdio::null()).process_group(0);
    cmd
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

async fn report_spawn_failure(
    sink: &EventSink,
    state: &Shared,
    id: &str,
    content: String,
    e: &std::io::Error,
) {
    let msg = format!("cannot start command: {e}");
    let rec = Arc::new(CommandRecord::new(id.to_owned(), content, false, 0));
    rec.finish(127, Some(msg.clone()));
    state.commands.insert(rec);
    sink.send(StreamEvent::init(id)).await;
    sink.send(StreamEvent::error(EXEC_ERROR, e.to_string(), vec![msg]))
        .await;
}

/// Run a foreground command, streaming its output to `sink` until it ends.
pub async fn run_foreground(state: Shared, req: RunCommandRequest, sink: EventSink) {
    let id = new_id();
    let mut cmd = build(&state, &req);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut spawned = match Processes::global().spawn(&mut cmd) {
        Ok(s) => s,
        Err(e) => return report_spawn_failure(&sink, &state, &id, req.content(), &e).await,
    };
    drop(cmd);
    let pgid = spawned.pid;
    let rec = Arc::new(CommandRecord::new(id.clone(), req.content(), false, pgid));
    state.commands.insert(rec.clone());
    let (tx, mut rx) = mpsc::channel(256);
    if let Some(out) = spawned.child.stdout.take() {
        spawn_line_reader(OwnedFd::from(out), Stream::Stdout, tx.clone());
    }
    if let Some(err) = spawned.child.stderr.take() {
        spawn_line_reader(OwnedFd::from(err), Stream::Stderr, tx);
    }
    sink.send(StreamEvent::init(&id)).await;

    let start = Instant::now();
    let far = start + Duration::from_secs(10 * 365 * 86_400);
    let deadline = req.timeout().map(|t| start + t).unwrap_or(far);
    let mut drain_until = far;
    let mut status: Option<ExitStatus> = None;
    let mut open_pipes = 2u8;
    let (mut timed_out, mut client_gone) = (false, false);
    while status.is_none() || open_pipes > 0 {
        tokio::select! {
            msg = rx.recv(), if open_pipes > 0 => match msg {
                Some(Output::Line(Stream::Stdout, l)) => { sink.send(StreamEvent::stdout(l)).await; }
                Some(Output::Line(Stream::Stderr, l)) => { sink.send(StreamEvent::stderr(l)).await; }
                Some(Output::Eof(_)) => open_pipes -= 1,
                None => open_pipes = 0,
            },
            st = &mut spawned.exit, if status.is_none() => {
                status = Some(st.unwrap_or(ExitStatus::Exited(-1)));
                drain_until = Instant::now() + DRAIN_GRACE;
            }
            _ = tokio::time::sleep_until(drain_until), if status.is_some() => break,
            _ = tokio::time::sleep_until(deadline), if !timed_out => {
                timed_out = true;
                let _ = signal_group(pgid, Signal::KILL);
            }
            _ = sink.closed(), if !client_gone => {
                client_gone = true;
                tracing::info!(command = %id, "client disconnected; killing the command");
                let _ = signal_group(pgid, Signal::KILL);
            }
        }
    }
    let status = status.unwrap_or(ExitStatus::Exited(-1));
    let code = status.code();
    if timed_out {
        let ms = req.timeout.unwrap_or_default();
        let msg = format!("command timed out after {ms} ms and was killed");
        rec.finish(code, Some(msg.clone()));
        sink.send(StreamEvent::error(EXEC_ERROR, code.to_string(), vec![msg]))
            .await;
    } else if code == 0 {
        rec.finish(0, None);
        sink.send(StreamEvent::complete(start.elapsed())).await;
    } else {
        let msg = status.describe();
        rec.finish(code, Some(msg.clone()));
        sink.send(StreamEvent::error(EXEC_ERROR, code.to_string(), vec![msg]))
            .await;
    }
}

/// Start a background command: `init` and `execution_complete` are sent at once; output
/// goes to the command's log buffer (stdout and stderr interleaved).
pub async fn run_background(state: Shared, req: RunCommandRequest, sink: EventSink) {
    let id = new_id();
    let start = Instant::now();
    let pipe = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC);
    let (read, write) = match pipe {
        Ok(p) => p,
        Err(e) => {
            let e = std::io::Error::from(e);
            return report_spawn_failure(&sink, &state, &id, req.content(), &e).await;
        }
    };
    let mut cmd = build(&state, &req);
    match write.try_clone() {
        Ok(w2) => {
            cmd.stdout(Stdio::from(write)).stderr(Stdio::from(w2));
        }
        Err(e) => return report_spawn_failure(&sink, &state, &id, req.content(), &e).await,
    }
    let spawned = match Processes::global().spawn(&mut cmd) {
        Ok(s) => s,
        Err(e) => return report_spawn_failure(&sink, &state, &id, req.content(), &e).await,
    };
    drop(cmd); // close our copies of the write end
    let pgid = spawned.pid;
    let rec = Arc::new(CommandRecord::new(id.clone(), req.content(), true, pgid));
    state.commands.insert(rec.clone());
    let log_rec = rec.clone();
    spawn_raw_reader(read, move |b| log_rec.append_log(b));
    let timeout = req.timeout();
    tokio::spawn(async move {
        let exit = spawned.exit;
        let (status, timed_out) = match timeout {
            None => (exit.await, false),
            Some(t) => {
                tokio::pin!(exit);
                tokio::select! {
                    st = &mut exit => (st, false),
                    _ = tokio::time::sleep(t) => {
                        let _ = signal_group(pgid, Signal::KILL);
                        (exit.await, true)
                    }
                }
            }
        };
        let status = status.unwrap_or(ExitStatus::Exited(-1));
        let err = if timed_out {
            Some(format!(
                "command timed out after {} ms and was killed",
                t_ms(timeout)
            ))
        } else {
            (status.code() != 0).then(|| status.describe())
        };
        rec.finish(status.code(), err);
    });
    sink.send(StreamEvent::init(&id)).await;
    sink.send(StreamEvent::complete(start.elapsed())).await;
}

fn t_ms(t: Option<Duration>) -> u128 {
    t.map(|d| d.as_millis()).unwrap_or_default()
}

/// Stop a running command: SIGTERM to its process group, SIGKILL after 3 s.
pub async fn interrupt(rec: &CommandRecord) -> Result<(), ApiError> {
    let Some(pgid) = rec.running_pgid() else {
        return Ok(()); // already finished: nothing to do
    };
    signal_group(pgid, Signal::TERM).map_err(|e| ApiError::internal("SIGTERM", e))?;
    let mut done = rec.finished();
    let waited = tokio::time::timeout(Duration::from_secs(3), done.wait_for(|f| *f)).await;
    if waited.is_err() {
        signal_group(pgid, Signal::KILL).map_err(|e| ApiError::internal("SIGKILL", e))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn req(json: &str) -> RunCommandRequest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn validation_follows_the_contract() {
        assert!(req(r#"{"command":"echo hi"}"#).validate().is_ok());
        assert!(req(r#"{"argv":["echo","hi"]}"#).validate().is_ok());
        assert!(req(r#"{"command":"  "}"#).validate().is_err());
        assert!(req(r#"{"command":"x","gid":5}"#).validate().is_err());
        assert!(req(r#"{"command":"x","argv":["y"]}"#).validate().is_err());
        assert!(req(r#"{"command":"x","envs":{"A=B":"1"}}"#)
            .validate()
            .is_err());
        assert_eq!(req(r#"{"command":"x","timeout":0}"#).timeout(), None);
    }
}
