//! Server processes: spawning them pinned to a CPU, finding their pids, and reading their
//! CPU time and memory from `/proc`.

use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process we started (and must stop).
pub struct Proc {
    pub name: String,
    pub child: Option<Child>,
    pub pid: u32,
    /// Signal that stops it gracefully.
    pub stop_signal: &'static str,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `program args` with stdout/stderr appended to `log`, pinned to `cpu` when
    /// given (through `taskset`).
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
        cpu: Option<u32>,
        log: PathBuf,
        stop_signal: &'static str,
    ) -> Result<Proc> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = pinned(program, cpu);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} ({})", name, program.display()))?;
        // taskset execs the program, so the pid is the program's.
        let pid = child.id();
        Ok(Proc {
            name: name.to_string(),
            child: Some(child),
            pid,
            stop_signal,
            log,
        })
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The last lines of its log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Stops it: the graceful signal, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg(format!("-{}", self.stop_signal))
            .arg(self.pid.to_string())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
    }
}

/// A command running `program`, pinned to `cpu` when given (through `taskset`, which
/// execs the program: the child's pid is the program's).
pub fn pinned(program: impl AsRef<OsStr>, cpu: Option<u32>) -> Command {
    match cpu {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c.to_string()).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 when unknown).
pub fn clk_tck() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n: &u64| n > 0)
        .unwrap_or(100)
}

/// `utime + stime` of a process (all its threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Sum of [`cpu_ticks`] over `pids`.
pub fn cpu_ticks_all(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|&p| cpu_ticks(p)).sum()
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        v.split_whitespace().next()?.parse().ok()
    })
}

/// Sum of a `kB` field over `pids`.
pub fn status_kb_all(pids: &[u32], field: &str) -> u64 {
    pids.iter().filter_map(|&p| status_kb(p, field)).sum()
}

/// Direct children of `pid` (nginx workers of a master).
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(p);
        }
    }
    out.sort_unstable();
    out
}

/// A column of this process's open-file limits: 3 the soft limit, 4 the hard one.
fn nofile_field(column: usize) -> Option<String> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(column).map(str::to_owned)
}

/// The soft limit on open files of this process.
pub fn nofile_limit() -> Option<u64> {
    nofile_field(3)?.parse().ok()
}

/// Raises this process's open-file limit (inherited by the servers it starts) with
/// `prlimit`; returns the limit in force afterwards.
pub fn raise_nofile(want: u64) -> Option<u64> {
    if nofile_limit().is_some_and(|n| n >= want) {
        return nofile_limit();
    }
    let pid = std::process::id().to_string();
    let _ = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={want}:{want}")])
        .stderr(Stdio::null())
        .status();
    if nofile_limit().is_some_and(|n| n < want) {
        // Not root: raise the soft limit up to the hard one.
        if let Some(h) = nofile_field(4) {
            let _ = Command::new("prlimit")
                .args(["--pid", &pid, &format!("--nofile={h}:{h}")])
                .stderr(Stdio::null())
                .status();
        }
    }
    nofile_limit()
}

/// Whether a program is on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// First line of `program args` (stdout or stderr), for version strings.
pub fn version_of(program: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(program).args(args).output().ok()?;
    let text = if o.stdout.is_empty() {
        o.stderr
    } else {
        o.stdout
    };
    String::from_utf8(text)
        .ok()?
        .lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
}

/// Truncates a log file that grew past `max` bytes (servers append to it).
pub fn cap_log(path: &Path, max: u64) {
    if std::fs::metadata(path).is_ok_and(|m| m.len() > max) {
        if let Ok(f) = File::options().write(true).open(path) {
            let _ = f.set_len(0);
        }
    }
}

/// Fails unless `pid` is running.
pub fn ensure_running(p: &mut Proc) -> Result<()> {
    if !p.alive() {
        bail!("{} exited; log:\n{}", p.name, p.log_tail());
    }
    Ok(())
}
