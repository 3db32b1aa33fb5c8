//! Delivery of the in-sandbox agent (`gatehouse-execd`, see `agent/README.md`).
//!
//! When configured, every sandbox container runs
//! `/opt/gatehouse/execd --token-file /run/gatehouse/execd-token -- <entrypoint...>`:
//!
//! - the static binary is bind-mounted read-only from the host at [`BINARY_PATH`] (no
//!   image pull; works with any image, busybox included);
//! - a per-sandbox host directory `<state_dir>/<id>` (mode 0700) holds the access token
//!   (`execd-token`, mode 0600) and is mounted read-write at [`RUN_DIR`]; the agent reads
//!   the token and unlinks it before it starts the entrypoint, so processes in the sandbox
//!   cannot read it. The directory is removed when the sandbox is deleted;
//! - ports [`EXECD_PORT`] and [`EGRESS_PORT`] are published like the other exposed ports.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

/// Where the binary is mounted in the container.
pub const BINARY_PATH: &str = "/opt/gatehouse/execd";
/// Where the per-sandbox directory is mounted in the container.
pub const RUN_DIR: &str = "/run/gatehouse";
/// The token file the agent reads (and unlinks) at start.
pub const TOKEN_FILE: &str = "/run/gatehouse/execd-token";
/// The `EXECD_ENVS` file (`commands.set_env` of the SDK appends to it).
pub const ENVS_FILE: &str = "/run/gatehouse/envs";
/// The sandbox's gateway identity token, pushed by the gateway through the backend
/// (`PUT /gatehouse/ext/v1/sandboxes/{id}/identity`), replaced atomically on refresh.
pub const SANDBOX_TOKEN_FILE: &str = "/run/gatehouse/sandbox-token";
/// The environment variable naming [`SANDBOX_TOKEN_FILE`] (the path, never the token).
pub const SANDBOX_TOKEN_ENV: &str = "GATEHOUSE_SANDBOX_TOKEN_FILE";
/// The execd API port.
pub const EXECD_PORT: u16 = 44772;
/// The egress API port.
pub const EGRESS_PORT: u16 = 18080;
/// Header carrying the token on both ports.
pub const TOKEN_HEADER: &str = "X-EXECD-ACCESS-TOKEN";
/// Prefix of the agent's stderr line reporting how the entrypoint ended.
pub const EXIT_LINE_PREFIX: &str = "gatehouse-execd:";

/// How the agent is delivered into Docker sandboxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecdDelivery {
    /// Host path of the static `gatehouse-execd` binary.
    pub binary: PathBuf,
    /// Host directory holding one private directory per sandbox (the Docker engine must
    /// see the same path: it runs on this host).
    pub state_dir: PathBuf,
}

impl ExecdDelivery {
    /// Checks the binary exists and is a file; creates the state directory (0700).
    pub fn prepare(&self) -> Result<(), String> {
        if !self.binary.is_absolute() {
            return Err(format!(
                "execd_binary \"{}\" must be an absolute path",
                self.binary.display()
            ));
        }
        match std::fs::metadata(&self.binary) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err(format!(
                    "execd_binary \"{}\" is not a file",
                    self.binary.display()
                ))
            }
            Err(e) => {
                return Err(format!(
                    "execd_binary \"{}\" cannot be read: {e}",
                    self.binary.display()
                ))
            }
        }
        if !self.state_dir.is_absolute() {
            return Err(format!(
                "execd_state_dir \"{}\" must be an absolute path",
                self.state_dir.display()
            ));
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.state_dir)
            .map_err(|e| {
                format!(
                    "execd_state_dir \"{}\" cannot be created: {e}",
                    self.state_dir.display()
                )
            })
    }

    /// The host directory of sandbox `id` (ids are checked to name a container first).
    pub fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.state_dir.join(id)
    }

    /// Creates the sandbox's directory (0700) with its token file (0600) and an empty
    /// `envs` file.
    ///
    /// `owner` is the uid the image runs as, when it is not root: the agent runs as that
    /// user and must read the token, so the directory and the file are chowned to it.
    pub fn write_token(
        &self,
        id: &str,
        token: &str,
        owner: Option<u32>,
    ) -> std::io::Result<PathBuf> {
        let dir = self.sandbox_dir(id);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join("execd-token"))?;
        f.write_all(token.as_bytes())?;
        f.sync_all()?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join("envs"))?;
        if let Some(uid) = owner {
            for p in [dir.join("execd-token"), dir.join("envs"), dir.clone()] {
                std::os::unix::fs::chown(&p, Some(uid), None)?;
            }
        }
        Ok(dir)
    }

    /// Writes (or replaces, atomically) the sandbox's identity token in its directory
    /// (mode 0600, owned like the directory, so the agent's user reads it). `NotFound`
    /// when the sandbox has no directory (it is gone).
    pub fn write_sandbox_token(&self, id: &str, token: &str) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let dir = self.sandbox_dir(id);
        let owner = std::fs::metadata(&dir)?.uid();
        let tmp = dir.join(".sandbox-token.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(token.as_bytes())?;
        f.sync_all()?;
        std::os::unix::fs::chown(&tmp, Some(owner), None)?;
        std::fs::rename(&tmp, dir.join("sandbox-token"))
    }

    /// Removes the sandbox's directory; a missing one is fine.
    pub fn remove(&self, id: &str) {
        let dir = self.sandbox_dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove a sandbox's execd directory")
            }
        }
    }

    /// The bind mounts of sandbox `id`.
    pub fn binds(&self, id: &str) -> Vec<String> {
        vec![
            format!("{}:{BINARY_PATH}:ro", self.binary.display()),
            format!("{}:{RUN_DIR}:rw", self.sandbox_dir(id).display()),
        ]
    }

    /// The container's `Entrypoint`: the agent, wrapping the `Cmd` (the user's entrypoint),
    /// listening on `port` when given (host network mode), else on [`EXECD_PORT`].
    pub fn entrypoint(port: Option<u16>) -> Vec<String> {
        let mut args = vec![BINARY_PATH.to_string()];
        if let Some(p) = port.filter(|p| *p != EXECD_PORT) {
            args.extend(["--listen".to_string(), format!("0.0.0.0:{p}")]);
        }
        args.extend(["--token-file", TOKEN_FILE, "--"].map(String::from));
        args
    }

    /// The port the agent listens on, read back from a container's `Entrypoint` made by
    /// [`entrypoint`](Self::entrypoint): its `--listen` port, else [`EXECD_PORT`].
    pub fn listen_port(entrypoint: &[String]) -> u16 {
        entrypoint
            .iter()
            .take_while(|a| *a != "--")
            .skip_while(|a| *a != "--listen")
            .nth(1)
            .and_then(|addr| addr.parse::<std::net::SocketAddr>().ok())
            .map_or(EXECD_PORT, |a| a.port())
    }
}

/// The uid an image's `User` (`uid`, `uid:gid`, `name`, `name:group`) runs as, when it is
/// numeric and not root; `Err` with the name when it is a name (it cannot be resolved
/// without the image's `/etc/passwd`).
pub fn image_uid(user: &str) -> Result<Option<u32>, String> {
    let u = user.split(':').next().unwrap_or("").trim();
    if u.is_empty() || u == "root" {
        return Ok(None);
    }
    match u.parse::<u32>() {
        Ok(0) => Ok(None),
        Ok(uid) => Ok(Some(uid)),
        Err(_) => Err(u.to_string()),
    }
}

/// The agent's last report line in `stderr`, e.g. `gatehouse-execd: entrypoint "app"
/// exited with code 3` or `gatehouse-execd: cannot listen on …` (why it stopped).
pub fn exit_line(stderr: &str) -> Option<&str> {
    stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with(EXIT_LINE_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    #[test]
    fn token_dir_is_private_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("execd");
        std::fs::write(&bin, b"x").unwrap();
        let d = ExecdDelivery {
            binary: bin,
            state_dir: tmp.path().join("state"),
        };
        d.prepare().unwrap();
        let dir = d.write_token("s1", "secret", None).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("execd-token")), 0o600);
        assert_eq!(
            std::fs::read_to_string(dir.join("execd-token")).unwrap(),
            "secret"
        );
        assert_eq!(
            d.binds("s1")[0],
            format!("{}:/opt/gatehouse/execd:ro", d.binary.display())
        );
        d.remove("s1");
        assert!(!dir.exists());
        d.remove("s1");
    }

    #[test]
    fn prepare_names_the_problem() {
        let d = ExecdDelivery {
            binary: "/nonexistent/execd".into(),
            state_dir: "/tmp/x".into(),
        };
        assert!(d.prepare().unwrap_err().contains("execd_binary"));
        let d = ExecdDelivery {
            binary: "relative".into(),
            state_dir: "/tmp/x".into(),
        };
        assert!(d.prepare().unwrap_err().contains("absolute"));
    }

    #[test]
    fn image_users() {
        assert_eq!(image_uid(""), Ok(None));
        assert_eq!(image_uid("root"), Ok(None));
        assert_eq!(image_uid("0:0"), Ok(None));
        assert_eq!(image_uid("1000"), Ok(Some(1000)));
        assert_eq!(image_uid("1000:100"), Ok(Some(1000)));
        assert_eq!(image_uid("jovyan"), Err("jovyan".to_string()));
    }

    #[test]
    fn the_listen_port_reads_back_from_the_entrypoint() {
        for port in [None, Some(EXECD_PORT), Some(24772)] {
            let args = ExecdDelivery::entrypoint(port);
            assert_eq!(
                ExecdDelivery::listen_port(&args),
                port.unwrap_or(EXECD_PORT)
            );
        }
        // The user's command after `--` is never read as the agent's.
        let mut args = ExecdDelivery::entrypoint(None);
        args.extend(["app", "--listen", "0.0.0.0:9"].map(String::from));
        assert_eq!(ExecdDelivery::listen_port(&args), EXECD_PORT);
    }

    #[test]
    fn finds_the_exit_line() {
        let s = "hello\ngatehouse-execd: entrypoint \"app\" exited with code 3\n";
        assert_eq!(
            exit_line(s),
            Some("gatehouse-execd: entrypoint \"app\" exited with code 3")
        );
        assert_eq!(exit_line("nothing"), None);
        // The agent's own startup failure, e.g. its port taken in host network mode.
        let s = "gatehouse-execd: cannot listen on 0.0.0.0:44772: Address in use (os error 98)\n";
        assert_eq!(exit_line(s), Some(s.trim()));
    }
}
