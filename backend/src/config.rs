//! Backend configuration: TOML keys follow the upstream OpenSandbox server where the
//! concept is the same, so an operator can reuse an upstream `sandbox.toml`.
//!
//! Precedence, highest first: command-line flags > environment variables > the TOML file >
//! built-in defaults.
//!
//! | key | env | flag | default |
//! |---|---|---|---|
//! | `server.host` | | `--host` | `127.0.0.1` |
//! | `server.port` | | `--port` | `8090` |
//! | `server.api_key` | `GATEHOUSE_BACKEND_API_KEY` | | none (refuses to start) |
//! | insecure mode | `OPENSANDBOX_INSECURE_SERVER=YES` | `--insecure-no-api-key` | off |
//! | `store.path` | | | `~/.gatehouse/backend.db` |
//! | `runtime.type` | | | `docker` (or `kubernetes`) |
//! | `docker.docker_host` | `DOCKER_HOST` (beats the file) | | `unix:///var/run/docker.sock` |
//! | `admin.listen` | | | none (no metrics listener) |
//! | any `section.key` | `GATEHOUSE_BACKEND__SECTION__KEY` (e.g. `GATEHOUSE_BACKEND__ADMIN__LISTEN`) | | |
//!
//! Relative paths in the file (`store.path`, `runtime.execd_binary`,
//! `runtime.execd_state_dir`) are relative to the file's directory.
//! | `kubernetes.kubeconfig_path` | `KUBECONFIG` (when unset) | | in-cluster |
//! | `runtime.execd_binary` | `GATEHOUSE_EXECD_BINARY` | | none (no in-sandbox agent) |
//!
//! Unknown keys are rejected with the key's name. Keys the upstream server knows but this
//! backend has no use for (`[log]`, `[proxy]`, `runtime.execd_image`, ...) are accepted and
//! logged as ignored, so an upstream file loads unchanged.

/// Prefix of the environment variables that override any key of the file:
/// `GATEHOUSE_BACKEND__SECTION__KEY=value` sets `section.key`.
pub const ENV_PREFIX: &str = "GATEHOUSE_BACKEND__";

use gatehouse_runtime_docker::DockerConfig;
use gatehouse_runtime_kubernetes::KubernetesConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub use gatehouse_config::ConfigError;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`: listener, API key, timeout bounds.
    pub server: ServerConfig,
    /// `[runtime]`: which engine drives sandboxes.
    pub runtime: RuntimeConfig,
    /// `[docker]`: the Docker driver.
    pub docker: DockerConfig,
    /// `[kubernetes]`: the Kubernetes driver.
    pub kubernetes: KubernetesConfig,
    /// `[store]`: where sandbox state persists.
    pub store: StoreConfig,
    /// `[expiry]`: the expiry scheduler and reconciler.
    pub expiry: ExpiryConfig,
    /// `[admin]`: the operators' listener (metrics); off unless `listen` is set.
    pub admin: AdminConfig,
    /// `[telemetry]`: OpenTelemetry traces; off unless `otlp_endpoint` is set.
    pub telemetry: TelemetryConfig,
    // Upstream sections without a meaning here: accepted, logged, ignored.
    #[serde(rename = "log")]
    _log: Option<toml::Value>,
    #[serde(rename = "proxy")]
    _proxy: Option<toml::Value>,
    #[serde(rename = "egress")]
    _egress: Option<toml::Value>,
    #[serde(rename = "ingress")]
    _ingress: Option<toml::Value>,
    #[serde(rename = "storage")]
    _storage: Option<toml::Value>,
    #[serde(rename = "renew_intent")]
    _renew_intent: Option<toml::Value>,
    #[serde(rename = "otel")]
    _otel: Option<toml::Value>,
    #[serde(rename = "secure_runtime")]
    _secure_runtime: Option<toml::Value>,
    #[serde(rename = "agent_sandbox")]
    _agent_sandbox: Option<toml::Value>,
    #[serde(rename = "tenants")]
    _tenants: Option<toml::Value>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Interface to bind.
    pub host: String,
    /// Port to bind.
    pub port: u16,
    /// The API key clients send in `OPEN-SANDBOX-API-KEY`.
    pub api_key: Option<String>,
    /// Public base (`host[:port][/prefix]`) used in server-proxy endpoint URLs.
    pub eip: Option<String>,
    /// Extension: host put in direct endpoint URLs handed to clients (e.g. when the
    /// backend runs in a container); the upstream spelling `docker.host_ip` also works.
    pub endpoint_host: Option<String>,
    /// Largest `timeout` a create may ask for; unset for no cap.
    pub max_sandbox_timeout_seconds: Option<i64>,
    /// Smallest `timeout` a create may ask for (upstream: 60).
    pub min_sandbox_timeout_seconds: i64,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    // Upstream uvicorn tuning keys, accepted and ignored.
    #[serde(rename = "timeout_keep_alive")]
    _timeout_keep_alive: Option<toml::Value>,
    #[serde(rename = "limit_concurrency")]
    _limit_concurrency: Option<toml::Value>,
    #[serde(rename = "timeout_graceful_shutdown")]
    _timeout_graceful_shutdown: Option<toml::Value>,
    #[serde(rename = "backlog")]
    _backlog: Option<toml::Value>,
    #[serde(rename = "thread_pool_size")]
    _thread_pool_size: Option<toml::Value>,
    #[serde(rename = "loop")]
    _loop: Option<toml::Value>,
    #[serde(rename = "http")]
    _http: Option<toml::Value>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8090,
            api_key: None,
            eip: None,
            endpoint_host: None,
            max_sandbox_timeout_seconds: None,
            min_sandbox_timeout_seconds: 60,
            max_body_bytes: 1024 * 1024,
            _timeout_keep_alive: None,
            _limit_concurrency: None,
            _timeout_graceful_shutdown: None,
            _backlog: None,
            _thread_pool_size: None,
            _loop: None,
            _http: None,
        }
    }
}

/// Which engine drives sandboxes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeType {
    /// A Docker engine.
    #[default]
    Docker,
    /// A Kubernetes cluster: one Pod per sandbox (`[kubernetes]`).
    Kubernetes,
}

/// `[runtime]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// `docker` (default) or `kubernetes`.
    #[serde(rename = "type")]
    pub kind: RuntimeType,
    /// Host path of the static `gatehouse-execd` binary (`agent/build-static.sh`). When
    /// set, every sandbox runs it as its entrypoint (PID 1), wrapping the requested
    /// entrypoint, so the OpenSandbox SDK's execd API works. Upstream's counterpart is
    /// `execd_image`. Env `GATEHOUSE_EXECD_BINARY`.
    pub execd_binary: Option<PathBuf>,
    /// Host directory of the per-sandbox agent directories (token hand-over); defaults to
    /// `execd/` beside the store file.
    pub execd_state_dir: Option<PathBuf>,
    #[serde(rename = "execd_image")]
    _execd_image: Option<toml::Value>,
    #[serde(rename = "execd_run_as_init")]
    _execd_run_as_init: Option<toml::Value>,
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite` (the only embedded store).
    #[serde(rename = "type")]
    pub kind: String,
    /// SQLite database file.
    pub path: PathBuf,
    #[serde(rename = "postgresql")]
    _postgresql: Option<toml::Value>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        Self {
            kind: "sqlite".into(),
            path: home.join(".gatehouse").join("backend.db"),
            _postgresql: None,
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address of the admin listener (`GET /metrics`), e.g. `127.0.0.1:9101`.
    pub listen: Option<String>,
}

/// `[telemetry]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP/HTTP base URL, e.g. `http://127.0.0.1:4318`; spans go to `/v1/traces` as JSON.
    pub otlp_endpoint: Option<String>,
}

/// `[expiry]`: timers and reconciliation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpiryConfig {
    /// Seconds between reconciliations of the store with the engine.
    pub reconcile_interval_seconds: u64,
    /// Seconds to wait before retrying an expiry the engine could not carry out.
    pub retry_seconds: u64,
}

impl Default for ExpiryConfig {
    fn default() -> Self {
        Self {
            reconcile_interval_seconds: 30,
            retry_seconds: 5,
        }
    }
}

/// Overrides from the command line and the environment, applied over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--host`.
    pub host: Option<String>,
    /// `--port`.
    pub port: Option<u16>,
    /// `GATEHOUSE_BACKEND_API_KEY`.
    pub api_key: Option<String>,
    /// `DOCKER_HOST`.
    pub docker_host: Option<String>,
    /// `GATEHOUSE_EXECD_BINARY`.
    pub execd_binary: Option<PathBuf>,
}

impl Config {
    /// Reads a TOML file, applies overrides and validates the result.
    pub fn load(path: Option<&Path>, env: Overrides, cli: Overrides) -> Result<Self, ConfigError> {
        let mut cfg: Self = match path {
            Some(p) => gatehouse_config::load_layered(p, ENV_PREFIX)?,
            None => Self::default(),
        };
        if let Some(base) = path.and_then(Path::parent) {
            cfg.resolve_paths(base);
        }
        cfg.apply(env);
        cfg.apply(cli);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        gatehouse_config::parse(text)
    }

    /// Makes the file's relative paths relative to the file's directory (`base`), so a
    /// configuration means the same whatever the working directory. Paths from the
    /// environment or flags stay relative to the working directory.
    fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        join(&mut self.store.path);
        if let Some(p) = self.runtime.execd_binary.as_mut() {
            join(p);
        }
        if let Some(p) = self.runtime.execd_state_dir.as_mut() {
            join(p);
        }
    }

    fn apply(&mut self, o: Overrides) {
        if let Some(h) = o.host {
            self.server.host = h;
        }
        if let Some(p) = o.port {
            self.server.port = p;
        }
        if let Some(k) = o.api_key {
            self.server.api_key = Some(k);
        }
        if let Some(b) = o.execd_binary {
            self.runtime.execd_binary = Some(b);
        }
        if let Some(d) = o.docker_host {
            self.docker.docker_host = Some(d);
        }
    }

    /// The host for direct endpoint URLs: `server.endpoint_host`, else upstream's
    /// `docker.host_ip`; `None` to use the address the runtime reports.
    pub fn endpoint_host(&self) -> Option<&str> {
        self.server
            .endpoint_host
            .as_deref()
            .or(self.docker.host_ip.as_deref())
    }

    /// How the in-sandbox agent is delivered, when `runtime.execd_binary` is set: absolute
    /// paths for the binary and the per-sandbox directories.
    pub fn execd_delivery(&self) -> Option<gatehouse_runtime_docker::ExecdDelivery> {
        let binary = self.runtime.execd_binary.as_ref()?;
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let state_dir = match &self.runtime.execd_state_dir {
            Some(d) => abs(d),
            None => abs(&self
                .store
                .path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .join("execd")),
        };
        Some(gatehouse_runtime_docker::ExecdDelivery {
            binary: abs(binary),
            state_dir,
        })
    }

    /// Names of upstream keys present in the file that this backend ignores.
    pub fn ignored_keys(&self) -> Vec<&'static str> {
        let i = self;
        let s = &self.server;
        [
            ("log", i._log.is_some()),
            ("proxy", i._proxy.is_some()),
            ("egress", i._egress.is_some()),
            ("ingress", i._ingress.is_some()),
            ("storage", i._storage.is_some()),
            ("renew_intent", i._renew_intent.is_some()),
            ("otel", i._otel.is_some()),
            ("secure_runtime", i._secure_runtime.is_some()),
            ("agent_sandbox", i._agent_sandbox.is_some()),
            ("tenants", i._tenants.is_some()),
            ("runtime.execd_image", self.runtime._execd_image.is_some()),
            (
                "runtime.execd_run_as_init",
                self.runtime._execd_run_as_init.is_some(),
            ),
            ("store.postgresql", self.store._postgresql.is_some()),
            ("server.timeout_keep_alive", s._timeout_keep_alive.is_some()),
            ("server.limit_concurrency", s._limit_concurrency.is_some()),
            (
                "server.timeout_graceful_shutdown",
                s._timeout_graceful_shutdown.is_some(),
            ),
            ("server.backlog", s._backlog.is_some()),
            ("server.thread_pool_size", s._thread_pool_size.is_some()),
            ("server.loop", s._loop.is_some()),
            ("server.http", s._http.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, present)| present.then_some(k))
        .chain(self.kubernetes.ignored_keys())
        .collect()
    }

    /// Checks values the types cannot express, naming the bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| Err(ConfigError::invalid(key, message));
        if self.server.host.trim().is_empty() {
            return invalid("server.host", "must not be empty");
        }
        if self.server.port == 0 {
            return invalid("server.port", "must be between 1 and 65535");
        }
        if self
            .server
            .api_key
            .as_deref()
            .is_some_and(|k| k.trim().is_empty())
        {
            return invalid(
                "server.api_key",
                "must not be blank (omit it and start with --insecure-no-api-key instead)",
            );
        }
        if self.server.min_sandbox_timeout_seconds < 1 {
            return invalid("server.min_sandbox_timeout_seconds", "must be at least 1");
        }
        if let Some(max) = self.server.max_sandbox_timeout_seconds {
            if max < self.server.min_sandbox_timeout_seconds {
                return invalid(
                    "server.max_sandbox_timeout_seconds",
                    "must be at least server.min_sandbox_timeout_seconds",
                );
            }
        }
        if self.server.max_body_bytes < 1024 {
            return invalid("server.max_body_bytes", "must be at least 1024");
        }
        if self
            .runtime
            .execd_binary
            .as_ref()
            .is_some_and(|b| b.as_os_str().is_empty())
        {
            return invalid("runtime.execd_binary", "must not be empty when set");
        }
        if self.store.kind != "sqlite" {
            return invalid("store.type", "only \"sqlite\" is supported");
        }
        if self.expiry.reconcile_interval_seconds == 0 {
            return invalid("expiry.reconcile_interval_seconds", "must be at least 1");
        }
        if self.expiry.retry_seconds == 0 {
            return invalid("expiry.retry_seconds", "must be at least 1");
        }
        self.docker
            .validate()
            .map_err(|message| ConfigError::invalid("docker", message))?;
        self.kubernetes.validate().map_err(|message| {
            // The driver's message starts with the key it is about.
            let key = message.split([' ', ',']).next().unwrap_or_default();
            ConfigError::invalid(format!("kubernetes.{key}"), message)
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::parse("[server]\nprot = 1\n").unwrap_err();
        assert!(e.contains("prot"), "{e}");
        let e = Config::parse("[bogus]\nx = 1\n").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn upstream_example_loads() {
        let text = r#"
[server]
host = "0.0.0.0"
port = 8080
api_key = "k"
timeout_keep_alive = 30
max_sandbox_timeout_seconds = 86400

[log]
level = "INFO"

[runtime]
type = "docker"
execd_image = "opensandbox/execd:v1"

[docker]
network_mode = "bridge"
drop_capabilities = ["NET_RAW"]
no_new_privileges = true
pids_limit = 512

[proxy]
resolve_internal = false
"#;
        let cfg = Config::parse(text).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.server.port, 8080);
        assert!(cfg.ignored_keys().contains(&"runtime.execd_image"));
        assert!(cfg.ignored_keys().contains(&"proxy"));
    }

    #[test]
    fn precedence_cli_over_env_over_file() {
        let mut cfg = Config::parse("[server]\nport = 1000\napi_key = \"file\"\n").unwrap();
        cfg.apply(Overrides {
            port: Some(2000),
            api_key: Some("env".into()),
            ..Default::default()
        });
        cfg.apply(Overrides {
            port: Some(3000),
            ..Default::default()
        });
        assert_eq!(cfg.server.port, 3000);
        assert_eq!(cfg.server.api_key.as_deref(), Some("env"));
    }

    #[test]
    fn kubernetes_section_loads_and_validates_with_dotted_keys() {
        let text = r#"
[runtime]
type = "kubernetes"

[kubernetes]
kubeconfig_path = "/etc/kube/config"
namespace = "sandboxes"
workload_provider = "pod"
sandbox_create_timeout_seconds = 30
informer_enabled = true
"#;
        let cfg = Config::parse(text).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.runtime.kind, RuntimeType::Kubernetes);
        assert_eq!(cfg.kubernetes.namespace.as_deref(), Some("sandboxes"));
        assert!(cfg.ignored_keys().contains(&"kubernetes.informer_enabled"));
        let cfg = Config::parse("[kubernetes]\nworkload_provider = \"batchsandbox\"\n").unwrap();
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("kubernetes.workload_provider"), "{e}");
        let e = Config::parse("[kubernetes]\nnamespaces = \"x\"\n").unwrap_err();
        assert!(e.contains("namespaces"), "{e}");
    }

    #[test]
    fn execd_binary_from_file_or_env_and_default_state_dir() {
        let mut cfg = Config::parse("[store]\npath = \"/var/lib/gh/backend.db\"\n").unwrap();
        assert!(cfg.execd_delivery().is_none());
        cfg.apply(Overrides {
            execd_binary: Some("/opt/execd".into()),
            ..Default::default()
        });
        let d = cfg.execd_delivery().unwrap();
        assert_eq!(d.binary, PathBuf::from("/opt/execd"));
        assert_eq!(d.state_dir, PathBuf::from("/var/lib/gh/execd"));
        let cfg =
            Config::parse("[runtime]\nexecd_binary = \"/a/execd\"\nexecd_state_dir = \"/b\"\n")
                .unwrap();
        let d = cfg.execd_delivery().unwrap();
        assert_eq!(
            (d.binary, d.state_dir),
            (PathBuf::from("/a/execd"), PathBuf::from("/b"))
        );
        let cfg = Config::parse("[runtime]\nexecd_binary = \"\"\n").unwrap();
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("runtime.execd_binary"));
    }

    #[test]
    fn relative_paths_follow_the_file_and_docker_host_beats_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.toml");
        std::fs::write(
            &file,
            "[server]\napi_key = \"k\"\n[store]\npath = \"db/x.db\"\n\
             [docker]\ndocker_host = \"unix:///file.sock\"\n",
        )
        .unwrap();
        let env = Overrides {
            docker_host: Some("unix:///env.sock".into()),
            ..Default::default()
        };
        let cfg = Config::load(Some(&file), env, Overrides::default()).unwrap();
        assert_eq!(cfg.store.path, dir.path().join("db/x.db"));
        assert_eq!(cfg.docker.docker_host.as_deref(), Some("unix:///env.sock"));
    }

    #[test]
    fn validate_names_the_key() {
        let cfg = Config::parse("[server]\nmax_sandbox_timeout_seconds = 10\n").unwrap();
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("server.max_sandbox_timeout_seconds"), "{e}");
    }
}
