//! A running `gatehouse` gateway process in front of a backend.

use crate::{free_port, process, wait_for};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

/// Twice the gateway's access-log flush interval and some: after this, the access-log
/// lines of earlier requests are in the log.
const ACCESS_LOG_SETTLE: Duration = gatehouse_telemetry::FLUSH_INTERVAL
    .saturating_mul(2)
    .saturating_add(Duration::from_millis(50));

/// A gateway process with its own config, role table copy and audit file.
pub struct Gateway {
    child: Option<Child>,
    /// Base URL.
    pub url: String,
    /// Its config file.
    pub config_path: PathBuf,
    /// Its (private, editable) role table.
    pub policy_path: PathBuf,
    /// The audit file.
    pub audit_path: PathBuf,
    /// The gateway's log.
    pub log_path: PathBuf,
    dir: PathBuf,
}

impl Gateway {
    /// Starts a gateway in front of `upstream_url` with `upstream_key`; `extra` is TOML
    /// appended to the generated config (e.g. `[[auth.api_keys]]`, `[auth.trusted_header]`).
    /// A port another process took between [`free_port`] and the gateway's bind (the
    /// gateway refuses to start on a port in use) is retried on a fresh port.
    pub async fn start(upstream_url: &str, upstream_key: &str, extra: &str) -> Result<Self> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_on(free_port(), upstream_url, upstream_key, extra).await {
                Err(e) if attempt < 3 && format!("{e:#}").contains("Address already in use") => {
                    continue
                }
                other => return other,
            }
        }
    }

    /// Like [`Gateway::start`] on a chosen port (an IdP must know the callback URL first).
    /// `{gateway}` in `extra` is replaced by the gateway's base URL; lines of `extra`
    /// starting with `server.` go into the `[server]` section (without the prefix).
    pub async fn start_on(
        port: u16,
        upstream_url: &str,
        upstream_key: &str,
        extra: &str,
    ) -> Result<Self> {
        Self::start_full(port, upstream_url, upstream_key, "", extra, &[]).await
    }

    /// Like [`Gateway::start_on`], with `upstream_extra` TOML lines added to `[upstream]`
    /// (e.g. `proxy_read_timeout_ms = 300`).
    pub async fn start_tuned(
        port: u16,
        upstream_url: &str,
        upstream_key: &str,
        upstream_extra: &str,
        extra: &str,
    ) -> Result<Self> {
        Self::start_full(port, upstream_url, upstream_key, upstream_extra, extra, &[]).await
    }

    /// Like [`Gateway::start_on`], with extra environment variables for the process (e.g.
    /// `GATEHOUSE__SERVER__GRACE_PERIOD_SECONDS` over the generated file).
    pub async fn start_with_env(
        port: u16,
        upstream_url: &str,
        upstream_key: &str,
        extra: &str,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        Self::start_full(port, upstream_url, upstream_key, "", extra, env).await
    }

    /// The general form of [`Gateway::start_tuned`] and [`Gateway::start_with_env`].
    pub async fn start_full(
        port: u16,
        upstream_url: &str,
        upstream_key: &str,
        upstream_extra: &str,
        extra: &str,
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let extra = extra.replace("{gateway}", &format!("http://127.0.0.1:{port}"));
        let (server_lines, rest): (Vec<&str>, Vec<&str>) =
            extra.lines().partition(|l| l.starts_with("server."));
        let server_extra: String = server_lines
            .iter()
            .map(|l| format!("{}\n", l.trim_start_matches("server.")))
            .collect();
        let extra = rest.join("\n");
        let dir = std::env::temp_dir().join(format!("gatehouse-gw-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let policy_path = dir.join("roles.toml");
        std::fs::copy(crate::repo_root().join("policies/roles.toml"), &policy_path)?;
        let audit_path = dir.join("audit.jsonl");
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nthreads = 2\ngrace_period_seconds = 0\ngraceful_shutdown_timeout_seconds = 1\n{server_extra}\n\
             [upstream]\nurl = \"{upstream_url}\"\napi_key = \"{upstream_key}\"\nconnect_timeout_ms = 1000\n{upstream_extra}\n\n\
             [policy]\npath = \"{policy}\"\nreload_interval_ms = 200\n\n\
             [scope]\ncache_ttl_seconds = 30\n\n\
             [audit]\nsink = \"file\"\npath = \"{audit}\"\n\n{extra}\n",
            policy = policy_path.display(),
            audit = audit_path.display(),
        );
        let config_path = dir.join("gatehouse.toml");
        std::fs::write(&config_path, config)?;
        let log_path = dir.join("gateway.log");
        let log = std::fs::File::create(&log_path)?;
        let unset = "GATEHOUSE_UPSTREAM_API_KEY";
        let child = process::spawn_binary("gatehouse", &config_path, "info", env, &[unset], log)?;
        let gw = Self {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            config_path,
            policy_path,
            audit_path,
            log_path,
            dir,
        };
        let health = format!("{}/healthz", gw.url);
        wait_for("gateway /healthz", Duration::from_secs(30), || {
            let health = health.clone();
            async move { reqwest::get(&health).await.ok() }
        })
        .await
        .with_context(|| format!("gateway did not start; log: {}", gw.log()))?;
        Ok(gw)
    }

    /// `url` + `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The process id (to send it a signal), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The gateway's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Audit events written so far.
    pub fn audit_events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The raw audit file.
    pub fn audit_raw(&self) -> String {
        std::fs::read_to_string(&self.audit_path).unwrap_or_default()
    }

    /// Stops the process.
    pub fn stop(&mut self) {
        let grace = Duration::from_secs(5);
        process::stop(&mut self.child, "-INT", process::Target::Process, grace);
    }

    /// Kills the process with SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        process::stop(
            &mut self.child,
            "-KILL",
            process::Target::Process,
            Duration::from_secs(5),
        );
    }

    /// Starts the process again with the same config (after [`Gateway::stop`] or
    /// [`Gateway::kill`]) and waits for `/healthz`.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log_path)?;
        let unset = "GATEHOUSE_UPSTREAM_API_KEY";
        self.child = Some(process::spawn_binary(
            "gatehouse",
            &self.config_path,
            "info",
            &[],
            &[unset],
            log,
        )?);
        let health = format!("{}/healthz", self.url);
        wait_for("gateway /healthz", Duration::from_secs(30), || {
            let health = health.clone();
            async move { reqwest::get(&health).await.ok() }
        })
        .await
        .with_context(|| format!("gateway did not restart; log: {}", self.log()))?;
        Ok(())
    }

    /// The gateway's log once the access-log lines of the requests so far are written.
    pub fn settled_log(&self) -> String {
        std::thread::sleep(ACCESS_LOG_SETTLE);
        self.log()
    }

    /// The gateway's directory (config, role table, store, spool).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Whether `secret` appears in the gateway's log or audit file, once the access-log
    /// lines of the requests so far are written (they go out in batches).
    pub fn exposes(&self, secret: &str) -> bool {
        std::thread::sleep(ACCESS_LOG_SETTLE);
        self.log().contains(secret) || self.audit_raw().contains(secret)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
