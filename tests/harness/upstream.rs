//! The real upstream OpenSandbox lifecycle server (`opensandbox-server` 1.1.1 from the
//! venv `dev/scripts/python-venv.sh` builds) as a process against the test engine, offline, so
//! the gateway can be tested in front of it.
//!
//! [`Upstream::start`] writes a config into a fresh temporary directory (loopback host,
//! free port, random API key, `docker` runtime with the stand-in execd image
//! [`EXECD_STANDIN_IMAGE`] from `dev/scripts/upstream-image.sh`, bridge networking published on
//! 127.0.0.1, `[proxy] resolve_internal = false`, sqlite store in that directory, no
//! egress, no renew-on-access), runs the server with `HOME` pointed at the directory (its
//! metadata-patch store lives under `~/.opensandbox/metadata`) and waits for `/health`.
//! It starts in about 1.5 s. Dropping it kills the process group and removes the containers
//! of the sandboxes it created.
//!
//! What the gateway author should know about upstream 1.1.1 (checked by
//! `tests/e2e/upstream_smoke.rs`):
//! - Auth: every path but the exempt prefixes (`/health`, `/version`, `/docs`, `/redoc`,
//!   `/openapi.json`, matched with `startswith`) needs `OPEN-SANDBOX-API-KEY`; it is checked
//!   before routing, so an unknown route without a key is 401 too. Bodies:
//!   `401 {"code":"MISSING_API_KEY","message":"Authentication credentials are missing.
//!   Provide API key via OPEN-SANDBOX-API-KEY header."}` and
//!   `401 {"code":"INVALID_API_KEY","message":"Authentication credentials are invalid.
//!   Check your API key and try again."}`.
//! - The sandbox proxy `/(v1/)?sandboxes/{id}/proxy/{port}/...` is NOT authenticated
//!   (single-tenant mode): anyone who reaches the server reaches every sandbox port.
//! - Every route is served both under `/v1` and at the root (`/sandboxes/...`).
//! - Unknown route (with a key): `404 {"detail":"Not Found"}` (FastAPI). Unknown sandbox:
//!   `404 {"code":"DOCKER::SANDBOX_NOT_FOUND","message":"Sandbox <id> not found."}`.
//! - Bad body: FastAPI's `422 {"detail":[{"type","loc","msg","input",("ctx")}]}`, e.g.
//!   `{"type":"missing","loc":["body","image","uri"],"msg":"Field required",...}`;
//!   malformed JSON is `422` with `"type":"json_invalid"`. `resourceLimits` is REQUIRED
//!   (`422`, `"loc":["body"]`, "resourceLimits is required when poolRef is not provided.").
//! - Create is synchronous: `202` with `status.state == "Running"` already.
//! - Metadata keys and values follow Kubernetes label rules: `access.owner`/`access.team`
//!   are fine; values must be at most 63 characters of `[A-Za-z0-9._-]` starting and
//!   ending alphanumeric (so `alice.k3j5-q9x` is fine, `alice.k3j5...`, `a@b` and 64
//!   characters are `400 {"code":"SANDBOX::INVALID_METADATA_LABEL",...}`); empty values are
//!   accepted; the `opensandbox.io/` prefix is rejected the same way.
//! - Returned metadata includes the sandbox IMAGE's labels (e.g. `org.gatehouse.image`),
//!   and the list filter matches them: an image labelled `access.team=x` puts its sandboxes
//!   in team `x` unless the request sets `access.team` itself.
//! - `PATCH /v1/sandboxes/{id}/metadata` (merge patch) may overwrite any key, `access.*`
//!   included; the list filter sees the patched values.
//! - List filter: `metadata=` is ONE parameter holding a URL-encoded query string
//!   (`metadata=access.team%3Dx%26access.owner%3Dy`, AND); exact matches on keys with dots
//!   work. `metadata=access.team` (no `=`) is `400 {"code":"INVALID_METADATA_FORMAT",...}`.
//!   The list shows every container on the engine labelled `opensandbox.io/id`, including
//!   `gatehouse-backend`'s and other upstream instances' sandboxes, so tests must filter.
//! - Endpoints have no scheme: port 8080 is `{"endpoint":"127.0.0.1:<host port>"}`; any
//!   other port (even unpublished ones) is `"127.0.0.1:<execd host port>/proxy/<port>"`;
//!   `?use_server_proxy=true` gives `"<server host:port>/v1/sandboxes/<id>/proxy/<port>"`.
//! - The server does not wait for execd itself; the SDKs poll `GET /ping` on execd.
//! - On start the server adopts every `opensandbox.io/id` container on the engine and
//!   removes the expired ones, whoever created them.

use crate::{free_port, process, repo_root};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The stand-in execd image `dev/scripts/upstream-image.sh` builds by default.
pub const EXECD_STANDIN_IMAGE: &str = "gatehouse/execd-standin:latest";

/// The header carrying the upstream API key.
pub const API_KEY_HEADER: &str = "OPEN-SANDBOX-API-KEY";

/// The environment variable (set on every sandbox through `[docker] sandbox_env`) that
/// tells which upstream instance created a container.
pub const INSTANCE_ENV: &str = "GATEHOUSE_UPSTREAM_INSTANCE";

/// How to start an upstream server.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// `DOCKER_HOST` to use (defaults to the test engine).
    pub docker_host: Option<String>,
    /// The execd image; built with `dev/scripts/upstream-image.sh` when missing.
    pub execd_image: String,
    /// Extra TOML lines appended to `[server]`.
    pub server_extra: String,
    /// Extra TOML lines appended to `[docker]`.
    pub docker_extra: String,
    /// Extra TOML sections appended to the config.
    pub sections: String,
    /// How long to wait for `/health`.
    pub startup_timeout: Duration,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        Self {
            docker_host: None,
            execd_image: EXECD_STANDIN_IMAGE.into(),
            server_extra: String::new(),
            docker_extra: String::new(),
            sections: String::new(),
            startup_timeout: Duration::from_secs(60),
        }
    }
}

/// A running upstream `opensandbox-server` process.
pub struct Upstream {
    child: Option<Child>,
    /// Base URL, e.g. `http://127.0.0.1:41234` (routes live under `/v1`).
    pub url: String,
    /// Its API key (send it as [`API_KEY_HEADER`]).
    pub api_key: String,
    /// Its config file.
    pub config_path: PathBuf,
    /// Its log file (stdout and stderr).
    pub log_path: PathBuf,
    /// The `DOCKER_HOST` it talks to.
    pub docker_host: String,
    /// This instance's marker: the value of [`INSTANCE_ENV`] in its sandboxes.
    pub instance: String,
    /// How long it took from spawn to a healthy `/health`.
    pub startup: Duration,
    dir: PathBuf,
}

impl Upstream {
    /// Starts an upstream server with a fresh store in a fresh directory. Fails when
    /// `GATEHOUSE_PYTHON` is unset or its venv lacks `opensandbox-server`, when the execd
    /// image cannot be built, or when the server is not healthy in time (the error holds
    /// its log).
    pub async fn start(opts: UpstreamOptions) -> Result<Self> {
        let python = match std::env::var("GATEHOUSE_PYTHON") {
            Ok(p) if !p.is_empty() => PathBuf::from(p),
            _ => bail!(
                "GATEHOUSE_PYTHON is not set: it must name the python of a venv with \
                 opensandbox-server 1.1.1 (run `dev/scripts/python-venv.sh .venv` and export \
                 GATEHOUSE_PYTHON=$PWD/.venv/bin/python; `make test` does both)"
            ),
        };
        let docker_host = opts.docker_host.clone().unwrap_or_else(crate::docker_host);
        ensure_execd_image(&docker_host, &opts.execd_image)?;

        let dir = std::env::temp_dir().join(format!("gatehouse-upstream-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let api_key = format!("upstream-key-{}", uuid::Uuid::new_v4().simple());
        let instance = uuid::Uuid::new_v4().simple().to_string();
        let port = free_port();
        let config = format!(
            "[server]\nhost = \"127.0.0.1\"\nport = {port}\napi_key = \"{api_key}\"\n\
             timeout_graceful_shutdown = 1\n{server_extra}\n\n\
             [proxy]\nresolve_internal = false\n\n\
             [log]\nlevel = \"INFO\"\n\n\
             [runtime]\ntype = \"docker\"\nexecd_image = \"{execd}\"\n\n\
             [store]\ntype = \"sqlite\"\npath = \"{store}\"\n\n\
             [docker]\nnetwork_mode = \"bridge\"\npublish_host = \"127.0.0.1\"\n\
             sandbox_env = {{ {INSTANCE_ENV} = \"{instance}\" }}\n{docker_extra}\n\n\
             [ingress]\nmode = \"direct\"\n\n\
             [renew_intent]\nenabled = false\n\n{sections}\n",
            server_extra = opts.server_extra,
            execd = opts.execd_image,
            store = dir.join("opensandbox.db").display(),
            docker_extra = opts.docker_extra,
            sections = opts.sections,
        );
        let config_path = dir.join("opensandbox.toml");
        std::fs::write(&config_path, config)?;
        let log_path = dir.join("upstream.log");

        let mut cmd = server_command(&python)?;
        cmd.arg("--config")
            .arg(&config_path)
            .current_dir(&dir)
            .env("DOCKER_HOST", &docker_host)
            .env("HOME", &dir)
            .env("PYTHONUNBUFFERED", "1")
            .env("NO_COLOR", "1")
            .env_remove("OPENSANDBOX_SERVER_API_KEY")
            .env_remove("SANDBOX_CONFIG_PATH")
            .env_remove("OPENSANDBOX_INSECURE_SERVER")
            .env_remove("OPENSANDBOX_STORE_POSTGRESQL_DSN")
            .env_remove("OPENSANDBOX_SECURE_ACCESS_KEYS")
            .env_remove("OPENSANDBOX_SECURE_ACCESS_ACTIVE_KEY");
        process::group_logging_to(&mut cmd, &log_path)?;
        let spawned = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("starting the upstream server with {cmd:?}"))?;
        let mut up = Self {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            api_key,
            config_path,
            log_path,
            docker_host,
            instance,
            startup: Duration::ZERO,
            dir,
        };
        up.wait_healthy(opts.startup_timeout).await?;
        up.startup = spawned.elapsed();
        Ok(up)
    }

    async fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let health = self.at("/health");
        let client = reqwest::Client::new();
        let log_path = self.log_path.clone();
        let what = format!("the upstream server ({health}, log {})", log_path.display());
        let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        process::wait_ready(&mut self.child, &what, timeout, log, || async {
            let ok = client
                .get(&health)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            Ok(ok.then_some(()))
        })
        .await
    }

    /// `url` + `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// A client that sends the API key on every request.
    pub fn client(&self) -> reqwest::Client {
        let mut h = reqwest::header::HeaderMap::new();
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&self.api_key) {
            h.insert(API_KEY_HEADER, v);
        }
        reqwest::Client::builder()
            .default_headers(h)
            .build()
            .unwrap_or_default()
    }

    /// The log written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Ids of the containers (running or not) of the sandboxes this instance created.
    pub fn containers(&self) -> Result<Vec<String>> {
        let all = crate::docker::docker_at(
            &self.docker_host,
            &[
                "ps",
                "-aq",
                "--no-trunc",
                "--filter",
                "label=opensandbox.io/id",
            ],
        )?;
        let marker = format!("{INSTANCE_ENV}={}", self.instance);
        let mut mine = Vec::new();
        for id in all.lines().filter(|l| !l.is_empty()) {
            // A container may go away between `ps` and `inspect`: skip it then.
            let Ok(env) = crate::docker::docker_at(
                &self.docker_host,
                &["inspect", "--format", "{{json .Config.Env}}", id],
            ) else {
                continue;
            };
            let env: Vec<String> = serde_json::from_str(&env).unwrap_or_default();
            if env.contains(&marker) {
                mine.push(id.to_string());
            }
        }
        Ok(mine)
    }

    /// Force-removes the containers of the sandboxes this instance created; returns how
    /// many it removed.
    pub fn remove_containers(&self) -> Result<usize> {
        let ids = self.containers()?;
        if ids.is_empty() {
            return Ok(0);
        }
        let mut args = vec!["rm", "-f"];
        args.extend(ids.iter().map(String::as_str));
        crate::docker::docker_at(&self.docker_host, &args)?;
        Ok(ids.len())
    }

    /// Stops the server: SIGTERM to its process group, SIGKILL after 5 s.
    pub fn stop(&mut self) {
        let grace = Duration::from_secs(5);
        process::stop(&mut self.child, "-TERM", process::Target::Group, grace);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
        let _ = self.remove_containers();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The command that runs `opensandbox-server` from the venv of `python`: the venv's
/// `opensandbox-server` script next to it, else `python -c` on the package's CLI.
pub fn server_command(python: &Path) -> Result<Command> {
    if !python.exists() {
        bail!(
            "GATEHOUSE_PYTHON={} does not exist: run `dev/scripts/python-venv.sh .venv`",
            python.display()
        );
    }
    let script = python
        .parent()
        .map(|d| d.join("opensandbox-server"))
        .filter(|s| s.is_file());
    if let Some(script) = script {
        return Ok(Command::new(script));
    }
    let probe = Command::new(python)
        .args(["-c", "import opensandbox_server.cli"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running {}", python.display()))?;
    if !probe.success() {
        bail!(
            "{} has no opensandbox-server: run `dev/scripts/python-venv.sh .venv` (it installs \
             opensandbox-server==1.1.1)",
            python.display()
        );
    }
    let mut cmd = Command::new(python);
    cmd.args([
        "-c",
        "import sys; sys.argv[0] = 'opensandbox-server'; \
         from opensandbox_server.cli import main; main()",
    ]);
    Ok(cmd)
}

/// The repository's `dev/scripts/` folder: `GATEHOUSE_SCRIPTS`, else `<repo>/scripts`.
pub fn scripts_dir() -> PathBuf {
    match std::env::var("GATEHOUSE_SCRIPTS") {
        Ok(s) if !s.is_empty() => PathBuf::from(s),
        _ => repo_root().join("dev/scripts"),
    }
}

/// Builds `tag` with `dev/scripts/upstream-image.sh` on the engine at `docker_host` unless it
/// exists. Calls in one process are serialized.
pub fn ensure_execd_image(docker_host: &str, tag: &str) -> Result<()> {
    static BUILD: Mutex<()> = Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if crate::docker::docker_at(docker_host, &["image", "inspect", tag]).is_ok() {
        return Ok(());
    }
    let script = scripts_dir().join("upstream-image.sh");
    let out = Command::new(&script)
        .arg(tag)
        .env("DOCKER_HOST", docker_host)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} {tag} failed: {}{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
