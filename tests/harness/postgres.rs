//! A throwaway PostgreSQL cluster: `initdb` into a temp dir, `pg_ctl start` on a free
//! 127.0.0.1 port with its unix socket in the same dir, removed on drop. PostgreSQL
//! refuses to run as root, so as root the server runs as `nobody` (via `setpriv`) and
//! the dir is handed to it.
//!
//! The binaries come from `GATEHOUSE_PG_BIN` if set, else `PATH`, else Debian's
//! `/usr/lib/postgresql/15/bin` (`dev/scripts/install-deps.sh` installs `postgresql-15`
//! when none is found).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The uid and gid the server runs as when the tests run as root (`nobody`/`nogroup`).
const UNPRIVILEGED: u32 = 65534;

/// A running (or stopped) cluster.
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    as_root: bool,
    running: bool,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub url: String,
}

/// The directory holding `initdb` and `pg_ctl`.
pub fn pg_bin_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("GATEHOUSE_PG_BIN").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if d.join("initdb").is_file() && d.join("pg_ctl").is_file() {
                return Ok(d);
            }
        }
    }
    let debian = PathBuf::from("/usr/lib/postgresql/15/bin");
    if debian.join("initdb").is_file() {
        return Ok(debian);
    }
    bail!("initdb/pg_ctl not found: run dev/scripts/install-deps.sh (postgresql-15) or set GATEHOUSE_PG_BIN")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Postgres {
    /// Creates and starts a fresh cluster.
    pub fn start() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "gh-pg-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ));
        std::fs::create_dir_all(&dir)?;
        let as_root = is_root();
        if as_root {
            std::os::unix::fs::chown(&dir, Some(UNPRIVILEGED), Some(UNPRIVILEGED))
                .with_context(|| format!("chown {}", dir.display()))?;
        }
        let port = crate::free_port();
        let mut pg = Self {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            bin: pg_bin_dir()?,
            dir,
            as_root,
            running: false,
            port,
        };
        let data = pg.data_dir();
        pg.run(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-locale",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        pg.resume()?;
        Ok(pg)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Its directory (data, socket, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }

    /// Runs `bin/<tool> args` as the unprivileged user when root; fails with its output.
    fn run(&self, tool: &str, args: &[&str]) -> Result<()> {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_root {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid",
                &UNPRIVILEGED.to_string(),
                "--regid",
                &UNPRIVILEGED.to_string(),
                "--clear-groups",
                "--",
            ])
            .arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", exe.display()))?;
        if !out.status.success() {
            bail!(
                "{tool} {args:?} failed: {}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log()
            );
        }
        Ok(())
    }

    /// Starts the server (again) on the same port and data, and waits until it accepts
    /// connections.
    pub fn resume(&mut self) -> Result<()> {
        let opts = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.dir.display(),
            self.port
        );
        let data = self.data_dir();
        let log = self.dir.join("postgres.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-l",
                &log.to_string_lossy(),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        self.running = true;
        Ok(())
    }

    /// Stops the server (fast shutdown: connections are cut) and waits for it.
    pub fn pause(&mut self) -> Result<()> {
        if !self.running {
            return Ok(());
        }
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "stop",
            ],
        )?;
        self.running = false;
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.data_dir();
            let _ = self.run(
                "pg_ctl",
                &[
                    "-D",
                    &data.to_string_lossy(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
