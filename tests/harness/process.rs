//! Child processes the fixtures start: waiting until one is ready (or has died) and
//! stopping it, the same way for the backend, the gateway, the IdP and upstream.

use anyhow::{bail, Context, Result};
use std::future::Future;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts the workspace binary `name` (next to the test executable) with `--config
/// config`, `RUST_LOG=rust_log`, `env` set and the `unset` variables removed, stderr to
/// `log`.
pub fn spawn_binary(
    name: &str,
    config: &Path,
    rust_log: &str,
    env: &[(&str, &str)],
    unset: &[&str],
    log: std::fs::File,
) -> Result<Child> {
    let bin = crate::bin_dir().join(name);
    let mut cmd = Command::new(&bin);
    for name in unset {
        cmd.env_remove(name);
    }
    cmd.arg("--config")
        .arg(config)
        .env("RUST_LOG", rust_log)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

/// Makes `cmd` a process group leader (so [`stop`] with [`Target::Group`] reaches its
/// children) with no stdin and its stdout and stderr appended to `log`.
pub fn group_logging_to(cmd: &mut Command, log: &Path) -> Result<()> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    Ok(())
}

/// Whom [`stop`] signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The process alone.
    Process,
    /// Its whole process group (it was spawned as a group leader); stragglers that
    /// outlive the leader get SIGKILL.
    Group,
}

/// Sends `signal` (e.g. `-TERM`) to the child, waits up to `grace` for it to exit, then
/// kills it. Does nothing when `child` is `None`; leaves it `None`.
pub fn stop(child: &mut Option<Child>, signal: &str, target: Target, grace: Duration) {
    let Some(mut c) = child.take() else {
        return;
    };
    let who = match target {
        Target::Process => c.id().to_string(),
        Target::Group => format!("-{}", c.id()),
    };
    let kill = |sig: &str| {
        let _ = Command::new("kill")
            .args([sig, "--", &who])
            .stderr(Stdio::null())
            .status();
    };
    kill(signal);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            if target == Target::Group {
                kill("-KILL");
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if target == Target::Group {
        kill("-KILL");
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// Polls `probe` every 100 ms until it returns `Some`, failing early when the child
/// exits and after `timeout`; `what` names the service and `log` is appended to errors.
pub async fn wait_ready<T, F, Fut>(
    child: &mut Option<Child>,
    what: &str,
    timeout: Duration,
    log: impl Fn() -> String,
    mut probe: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(c) = child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                *child = None;
                bail!(
                    "{what} exited ({status}) before it was ready; log:\n{}",
                    log()
                );
            }
        }
        if let Some(v) = probe().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("{what} was not ready after {timeout:?}; log:\n{}", log());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
