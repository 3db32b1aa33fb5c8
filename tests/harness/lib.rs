//! Harness for the cross-process end-to-end tests: start real binaries on ephemeral
//! loopback ports against the real Docker engine `make test` started, and talk to them
//! over HTTP like a user would.
//!
//! Environment (set by `dev/scripts/test.sh`):
//! - `DOCKER_HOST`: the private engine (required; a test fails without it);
//! - `GATEHOUSE_TEST_IMAGE`: the busybox sandbox image;
//! - `GATEHOUSE_PYTHON`: the venv's python with the OpenSandbox SDK;
//! - `GATEHOUSE_SCRIPTS`: the repository's `dev/scripts/` folder;
//! - `KUBECONFIG`, `GATEHOUSE_KUBE_SERVER`, `GATEHOUSE_KUBE_CA_FILE`: the kube-apiserver
//!   `dev/kubernetes/cluster.sh` started (required by the Kubernetes tests, see [`k8s`]).

#![allow(
    clippy::panic,
    reason = "a test harness fails the test loudly when its environment is missing"
)]

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

pub mod api;
pub mod browser;
pub mod docker;
pub mod flow;
pub mod gateway;
pub mod idp;
pub mod k8s;
pub mod kubelet;
pub mod login;
pub mod npm;
pub mod otlp;
mod ports;
pub mod postgres;
pub mod principals;
pub mod process;
pub mod sandbox;
pub mod sdk;
pub mod sse;
pub mod stacks;
pub mod upstream;

pub use ports::free_port;

/// The `DOCKER_HOST` of the test engine; panics with a clear message when unset.
pub fn docker_host() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.is_empty() => h,
        _ => panic!("DOCKER_HOST is not set: run the end-to-end tests through `make test`, which starts a private engine"),
    }
}

/// The sandbox image the tests run.
pub fn test_image() -> String {
    std::env::var("GATEHOUSE_TEST_IMAGE").unwrap_or_else(|_| "gatehouse/busybox:latest".into())
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Directory holding the workspace's built binaries (next to this test executable).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> -> target/<profile>
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Polls `f` until it returns `Some` or `timeout` passes. An attempt that does not finish
/// (a request to a process that accepted the connection but never answers) is cut off at
/// the deadline, so the wait always ends.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(200));
        if let Ok(Some(v)) = tokio::time::timeout(left, f()).await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A running `gatehouse-backend` process.
pub struct Backend {
    child: Option<Child>,
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// Its API key.
    pub api_key: String,
    /// Its config file.
    pub config_path: PathBuf,
    /// Its log file (stderr).
    pub log_path: PathBuf,
    /// Its `docker.instance` / `kubernetes.instance` (labels its containers or pods).
    pub instance: String,
    /// The engine it drives (empty when it drives Kubernetes).
    docker_host: String,
    /// Whether it drives Docker (else Kubernetes).
    docker: bool,
    /// The agent binary its sandboxes run, if any.
    pub execd: Option<PathBuf>,
    dir: PathBuf,
}

/// How to start a backend.
#[derive(Debug, Clone)]
pub struct BackendOptions {
    /// Extra TOML appended to `[server]`.
    pub server_extra: String,
    /// Extra TOML sections.
    pub sections: String,
    /// `DOCKER_HOST` to use (defaults to the test engine).
    pub docker_host: Option<String>,
    /// Seconds between reconciliations.
    pub reconcile_seconds: u64,
    /// The body of a `[kubernetes]` section: when set, the backend runs with
    /// `runtime.type = "kubernetes"` and needs no Docker engine.
    pub kubernetes: Option<String>,
    /// The instance label to use (a fresh one when unset), e.g. to start a second
    /// backend that adopts the first one's sandboxes.
    pub instance: Option<String>,
    /// Run every sandbox with the in-sandbox agent (`GATEHOUSE_EXECD_BINARY`, which
    /// `make test` sets to `agent/build-static.sh`'s output). Off: exactly the entrypoint.
    pub execd: bool,
    /// `docker.network_mode` (`bridge` when unset; `host` lets a sandbox reach
    /// 127.0.0.1 services such as the gateway, and gives its agent a free host port as
    /// `docker.host_execd_port`).
    pub network_mode: Option<String>,
}

impl Default for BackendOptions {
    fn default() -> Self {
        Self {
            server_extra: String::new(),
            sections: String::new(),
            docker_host: None,
            reconcile_seconds: 2,
            kubernetes: None,
            instance: None,
            execd: false,
            network_mode: None,
        }
    }
}

impl Backend {
    /// Starts a backend with a fresh store in a fresh directory.
    pub async fn start(opts: BackendOptions) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("gatehouse-tests-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let api_key = format!("test-key-{}", uuid::Uuid::new_v4().simple());
        let instance = opts
            .instance
            .clone()
            .unwrap_or_else(|| format!("e2e-{}", uuid::Uuid::new_v4().simple()));
        let port = free_port();
        let runtime = match &opts.kubernetes {
            Some(k) => format!("[runtime]\ntype = \"kubernetes\"\n\n[kubernetes]\ninstance = \"{instance}\"\n{k}\n"),
            None => {
                let network = opts.network_mode.as_deref().unwrap_or("bridge");
                // In host mode the agent listens on the host: on a port of its own, never
                // the default 44772, which any outgoing connection's ephemeral port can hold.
                let agent_port = if network == "host" {
                    format!("host_execd_port = {}\n", free_port())
                } else {
                    String::new()
                };
                format!("[runtime]\ntype = \"docker\"\n\n[docker]\nnetwork_mode = \"{network}\"\npublish_host = \"127.0.0.1\"\ninstance = \"{instance}\"\n{agent_port}")
            }
        };
        let config = format!(
            "[server]\nhost = \"127.0.0.1\"\nport = {port}\napi_key = \"{api_key}\"\n{server_extra}\n\
             {runtime}\n\
             [store]\npath = \"{store}\"\n\n[expiry]\nreconcile_interval_seconds = {rec}\nretry_seconds = 1\n{sections}\n",
            server_extra = opts.server_extra,
            store = dir.join("backend.db").display(),
            rec = opts.reconcile_seconds,
            sections = opts.sections,
        );
        let config_path = dir.join("backend.toml");
        std::fs::write(&config_path, config)?;
        let execd = opts.execd.then(execd_binary).transpose()?;
        let mut b = Self {
            execd,
            child: None,
            url: format!("http://127.0.0.1:{port}"),
            api_key,
            config_path,
            log_path: dir.join("backend.log"),
            instance,
            docker_host: String::new(),
            docker: opts.kubernetes.is_none(),
            dir,
        };
        let host = match b.docker {
            true => Some(opts.docker_host.unwrap_or_else(docker_host)),
            false => None,
        };
        b.spawn(host).await?;
        Ok(b)
    }

    async fn spawn(&mut self, docker_host: Option<String>) -> Result<()> {
        self.docker_host = docker_host.clone().unwrap_or_default();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)?;
        let mut env: Vec<(&str, &str)> = Vec::new();
        if let Some(h) = &docker_host {
            env.push(("DOCKER_HOST", h.as_str()));
        }
        let execd = self
            .execd
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned());
        let mut unset = vec!["GATEHOUSE_BACKEND_API_KEY"];
        match &execd {
            Some(p) => env.push(("GATEHOUSE_EXECD_BINARY", p.as_str())),
            None => unset.push("GATEHOUSE_EXECD_BINARY"),
        }
        let child = process::spawn_binary(
            "gatehouse-backend",
            &self.config_path,
            "info,gatehouse_backend=debug,gatehouse_runtime_kubernetes=debug",
            &env,
            &unset,
            log,
        )?;
        self.child = Some(child);
        let health = format!("{}/health", self.url);
        let client = reqwest::Client::new();
        wait_for("backend /health", Duration::from_secs(30), || {
            let client = client.clone();
            let health = health.clone();
            async move {
                client
                    .get(&health)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
            }
        })
        .await
        .with_context(|| format!("backend did not become healthy; log: {}", self.log()))?;
        Ok(())
    }

    /// Stops the process with SIGTERM (graceful) and waits for it.
    pub fn stop(&mut self) {
        let grace = Duration::from_secs(10);
        process::stop(&mut self.child, "-TERM", process::Target::Process, grace);
    }

    /// Starts the process again on the same port, config and store.
    pub async fn restart(&mut self, docker_host: Option<String>) -> Result<()> {
        self.stop();
        let host = match self.docker {
            true => Some(docker_host.unwrap_or_else(docker_host_default)),
            false => None,
        };
        self.spawn(host).await
    }

    /// The log written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The process id (to send it a signal), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// A client that sends the API key on every request.
    pub fn client(&self) -> reqwest::Client {
        let mut h = reqwest::header::HeaderMap::new();
        if let Ok(v) = reqwest::header::HeaderValue::from_str(&self.api_key) {
            h.insert("OPEN-SANDBOX-API-KEY", v);
        }
        reqwest::Client::builder()
            .default_headers(h)
            .build()
            .unwrap_or_default()
    }

    /// `url` + `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

/// The static agent binary (`GATEHOUSE_EXECD_BINARY`, set by `make test`).
pub fn execd_binary() -> Result<PathBuf> {
    let p = std::env::var_os("GATEHOUSE_EXECD_BINARY")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
            "GATEHOUSE_EXECD_BINARY is not set: run through `make test`, or set it to the path \
             `agent/build-static.sh` prints"
        )
        })?;
    let p = PathBuf::from(p);
    anyhow::ensure!(
        p.is_file(),
        "GATEHOUSE_EXECD_BINARY {} is not a file",
        p.display()
    );
    Ok(p)
}

fn docker_host_default() -> String {
    docker_host()
}

impl Drop for Backend {
    /// Stops the process and removes the containers of its instance (a test's sandboxes
    /// do not outlive it) and its directory.
    fn drop(&mut self) {
        self.stop();
        if !self.docker {
            let _ = std::fs::remove_dir_all(&self.dir);
            return;
        }
        let filter = format!("label=opensandbox.io/instance={}", self.instance);
        if let Ok(ids) = docker::docker_at(&self.docker_host, &["ps", "-aq", "--filter", &filter]) {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.lines().filter(|l| !l.is_empty()));
            if args.len() > 2 {
                let _ = docker::docker_at(&self.docker_host, &args);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
