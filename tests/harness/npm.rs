//! `npm ci` for the Node.js helpers the tests run (the dev IdP), once per lock file
//! change, safely from parallel tests and test binaries.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn packages_current(dir: &Path, marker: &str) -> bool {
    let installed = dir.join("node_modules/.package-lock.json");
    if !dir
        .join(format!("node_modules/{marker}/package.json"))
        .is_file()
    {
        return false;
    }
    match (mtime(&installed), mtime(&dir.join("package-lock.json"))) {
        (Some(i), Some(l)) => i >= l,
        _ => false,
    }
}

/// Runs `npm ci --no-audit --no-fund` in `dir` unless `dir/node_modules` holds the
/// `marker` package and is newer than `dir/package-lock.json`. Calls are serialized within
/// this process by a mutex and across processes by a lock directory in the temporary
/// directory.
pub fn ensure_packages(dir: &Path, marker: &str) -> Result<()> {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if packages_current(dir, marker) {
        return Ok(());
    }
    let _lock = DirLock::acquire(dir, Duration::from_secs(300))?;
    if packages_current(dir, marker) {
        return Ok(());
    }
    let started = Instant::now();
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .with_context(|| {
            format!(
                "running `npm ci` in {} (is Node.js 20+ with npm on PATH?)",
                dir.display()
            )
        })?;
    if !out.status.success() {
        bail!(
            "`npm ci --no-audit --no-fund` in {} failed ({}):\n{}{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!(
        "npm: `npm ci` in {} took {:?}",
        dir.display(),
        started.elapsed()
    );
    Ok(())
}

/// A cross-process lock: a directory created atomically, removed on drop; one older than
/// 10 minutes is taken as left behind by a dead process and removed.
struct DirLock(PathBuf);

impl DirLock {
    fn acquire(key: &Path, timeout: Duration) -> Result<Self> {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(key.to_string_lossy().as_bytes());
        let path =
            std::env::temp_dir().join(format!("gatehouse-npm-{}.lock", hex::encode(&digest[..8])));
        let deadline = Instant::now() + timeout;
        loop {
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(Self(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = mtime(&path)
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > Duration::from_secs(600));
                    if stale {
                        let _ = std::fs::remove_dir(&path);
                        continue;
                    }
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("creating {}", path.display()));
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "waited {timeout:?} for {} (another `npm ci` in {}?)",
                    path.display(),
                    key.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}
