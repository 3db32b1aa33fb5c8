//! Supervisor mode: run the container's entrypoint as a child of the agent (usually PID 1),
//! forward termination signals to it, and exit with its status.
//!
//! Zombie reaping is done by [`crate::process`]; the entrypoint's exit status arrives
//! through the same table. The child runs in its own process group and signals are sent
//! to the whole group, so helper processes of a shell entrypoint receive them too.

use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::process::Signal;
use tokio::signal::unix::{signal, SignalKind};

use crate::env::ChildEnv;
use crate::process::{signal_group, ExitStatus, Processes};

/// Exit code when the entrypoint cannot be started (shell convention for "not found").
pub const SPAWN_FAILED: i32 = 127;

/// Start `argv` and supervise it; returns the exit code the agent should exit with.
pub async fn supervise(argv: &[String], env: &ChildEnv) -> i32 {
    let Some((prog, args)) = argv.split_first() else {
        return wait_for_stop().await;
    };
    let mut cmd = Command::new(prog);
    cmd.args(args).process_group(0);
    env.apply(&mut cmd, None);
    let spawned = match Processes::global().spawn(&mut cmd) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gatehouse-execd: cannot start entrypoint {prog:?}: {e}");
            return SPAWN_FAILED;
        }
    };
    drop(cmd);
    tracing::info!(pid = spawned.pid, entrypoint = %prog, "entrypoint started");
    let pgid = spawned.pid;
    let status = match forward_until_exit(pgid, spawned.exit).await {
        Ok(st) => st,
        Err(e) => {
            eprintln!("gatehouse-execd: cannot watch signals: {e}");
            return 1;
        }
    };
    eprintln!("gatehouse-execd: entrypoint {prog:?} {}", status.describe());
    status.code()
}

async fn forward_until_exit(
    pgid: i32,
    mut exit: tokio::sync::oneshot::Receiver<ExitStatus>,
) -> std::io::Result<ExitStatus> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        let sig = tokio::select! {
            st = &mut exit => return Ok(st.unwrap_or(ExitStatus::Exited(1))),
            _ = term.recv() => Signal::TERM,
            _ = int.recv() => Signal::INT,
            _ = hup.recv() => Signal::HUP,
        };
        tracing::info!(signal = sig.as_raw(), "forwarding signal to the entrypoint");
        if let Err(e) = signal_group(pgid, sig) {
            tracing::warn!(error = %e, "cannot forward signal");
        }
    }
}

/// Without an entrypoint: serve until SIGTERM or SIGINT, then exit 0.
async fn wait_for_stop() -> i32 {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return 0;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stopping on signal");
    0
}
