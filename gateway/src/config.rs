//! Gateway configuration (`gatehouse --config config/gatehouse.toml`).
//!
//! Precedence, highest first: command-line flags > environment > the TOML file > defaults.
//! Unknown keys are rejected by name; [`GatewayConfig::validate`] names the bad value.
//!
//! | key | env | flag |
//! |---|---|---|
//! | `server.listen` | `GATEHOUSE_LISTEN` | `--listen` |
//! | `upstream.url` | `GATEHOUSE_UPSTREAM_URL` | `--upstream` |
//! | `upstream.api_key` | `GATEHOUSE_UPSTREAM_API_KEY` (or the variable named by `upstream.api_key_env`) | |
//! | any `section.key` | `GATEHOUSE__SECTION__KEY` (e.g. `GATEHOUSE__ADMIN__LISTEN`) | |

/// Prefix of the environment variables that override any key of the file:
/// `GATEHOUSE__SECTION__KEY=value` sets `section.key` (see [`gatehouse_config::env_overrides`]).
pub const ENV_PREFIX: &str = "GATEHOUSE__";

use gatehouse_audit::SinkConfig;
use gatehouse_authn::{ApiKeyConfig, TrustedHeaderConfig};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use gatehouse_config::ConfigError;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// `[server]`.
    pub server: ServerSection,
    /// `[upstream]`: the lifecycle backend.
    pub upstream: UpstreamSection,
    /// `[auth]`.
    pub auth: AuthSection,
    /// `[policy]`: the role table file.
    pub policy: PolicySection,
    /// `[scope]`.
    pub scope: ScopeSection,
    /// `[audit]`.
    pub audit: AuditSection,
    /// `[oidc]`: console users and bearer JWTs (optional).
    pub oidc: Option<gatehouse_authn::oidc::OidcConfig>,
    /// `[console]`.
    pub console: ConsoleSection,
    /// `[store]`: the governance store (durable audit, bindings, personal keys).
    pub store: gatehouse_store::StoreConfig,
    /// `[admin]`: the operators' listener (metrics).
    pub admin: AdminSection,
    /// `[telemetry]`: OpenTelemetry traces (off unless `otlp_endpoint` is set).
    pub telemetry: TelemetrySection,
    /// `[platform]`: platform controllers and what each may assert.
    pub platform: crate::platform::config::PlatformSection,
    /// `[events]`: the lifecycle event stream.
    pub events: crate::events::EventsSection,
    /// `[sandbox_identity]`: sandbox principals (off unless present).
    pub sandbox_identity: Option<crate::sandbox_identity::SandboxIdentityConfig>,
    /// `[signing]`: rotation of the signing key ring.
    pub signing: crate::sandbox_identity::SigningConfig,
    /// `[quotas]`: default quotas per team and per user (none unless set).
    pub quotas: crate::limits::config::QuotasSection,
    /// `[rate_limits]`: token buckets per principal, by role (none unless set).
    pub rate_limits: crate::limits::config::RateLimitsSection,
    /// `[replication]`: sessions in the store and the change-log follower.
    pub replication: crate::replication::ReplicationSection,
}

/// `[telemetry]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySection {
    /// OTLP/HTTP base URL, e.g. `http://127.0.0.1:4318`; spans go to `/v1/traces` as JSON.
    pub otlp_endpoint: Option<String>,
}

/// `[admin]`: off unless `listen` is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// Address of the admin listener (`GET /metrics`), e.g. `127.0.0.1:9100`; a host
    /// name such as `localhost:9100` is resolved. Reach it only from operators' networks.
    pub listen: Option<String>,
}

impl AdminSection {
    /// The address `listen` names (a literal address, or a host name resolved now).
    pub fn addr(&self, listen: &str) -> Result<SocketAddr, ConfigError> {
        resolve_listen("admin.listen", listen)
    }
}

/// Resolves a `host:port` listen value; `key` names it in the error.
pub fn resolve_listen(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    if let Ok(a) = value.parse::<SocketAddr>() {
        return Ok(a);
    }
    use std::net::ToSocketAddrs;
    value
        .to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| {
            invalid(
                key,
                format!("'{value}' is not an address to listen on; expected host:port such as 127.0.0.1:9100"),
            )
        })
}

/// `[console]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSection {
    /// Directory of the built console (`npm run build` output).
    pub dir: PathBuf,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("console/dist"),
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Listen address.
    pub listen: String,
    /// Worker threads.
    pub threads: usize,
    /// Seconds to keep serving after SIGTERM.
    pub grace_period_seconds: u64,
    /// Seconds to wait for in-flight requests at shutdown.
    pub graceful_shutdown_timeout_seconds: u64,
    /// Public base URL of the gateway (`http://host:port`), used in server-proxy endpoint
    /// URLs and the post-logout redirect. Unset: the request's `Host` when it is the
    /// listen address or in `allowed_hosts`, else the first of those (never an unknown
    /// `Host`).
    pub public_url: Option<String>,
    /// Other `host[:port]` names the gateway is reached by (e.g. `localhost:8080`); the
    /// CSRF check and the URLs the gateway builds accept only these, the listen address
    /// and `public_url`.
    pub allowed_hosts: Vec<String>,
    /// Ed25519 private key (PKCS#8 PEM) signing the verified-caller header; unset: a new
    /// key at every start (apps re-fetch `/.well-known/jwks.json` on an unknown `kid`).
    pub caller_key_file: Option<PathBuf>,
    /// Domain under which each sandbox port gets its own origin, `{id}-{port}.{domain}`
    /// (development: `localhost`). Unset: no sandbox origins.
    pub sandbox_domain: Option<String>,
    /// Pingora's per-connection read buffer under hyper, bytes; 0 (the default):
    /// unbuffered. hyper reads into its own buffer (at least 8 KiB), so a Pingora buffer
    /// under it would only add memory to every idle keep-alive connection.
    pub read_buffer_bytes: usize,
    /// Pingora's per-connection write buffer under hyper, bytes; 0 (the default): hyper
    /// already gathers a response head and body into one `writev`.
    pub write_buffer_bytes: usize,
    /// Let idle worker threads steal tasks from busy ones (Tokio's multi-threaded
    /// scheduler). Off by default: each thread runs its own connections on its own
    /// current-thread runtime, with its own upstream pool, which is cheaper per request.
    pub work_stealing: bool,
    /// Time a client has to send a request head, milliseconds; also how long an idle
    /// keep-alive connection is kept.
    pub header_read_timeout_ms: u64,
    /// Largest request head (request line and headers), bytes.
    pub max_header_bytes: usize,
    /// Most headers in one request.
    pub max_headers: usize,
    /// Origins (`https://host[:port]`) whose browser pages may call the API with an API
    /// key or a bearer token (CORS). Empty: no cross-origin access. Cookies are never
    /// allowed cross-origin.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            threads: 2,
            grace_period_seconds: 0,
            graceful_shutdown_timeout_seconds: 5,
            public_url: None,
            allowed_hosts: Vec::new(),
            caller_key_file: None,
            sandbox_domain: None,
            read_buffer_bytes: 0,
            write_buffer_bytes: 0,
            work_stealing: false,
            header_read_timeout_ms: 30_000,
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// `[upstream]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamSection {
    /// Backend base URL (`http://host:port`).
    pub url: String,
    /// The backend's API key (prefer `api_key_env`).
    pub api_key: Option<String>,
    /// Environment variable holding the backend's API key.
    pub api_key_env: Option<String>,
    /// Connect timeout, milliseconds.
    pub connect_timeout_ms: u64,
    /// Read timeout, milliseconds (0 = none; the proxy route may stream long).
    pub read_timeout_ms: u64,
    /// Time the server-proxy route waits for a sandbox's response head, milliseconds
    /// (0 = none). Streams that have started are not cut.
    pub proxy_read_timeout_ms: u64,
    /// Timeout of the gateway's own lookups (scope checks, health), milliseconds.
    pub lookup_timeout_ms: u64,
    /// How long an idle backend connection is kept for reuse, milliseconds; keep it
    /// below the backend's own keep-alive timeout (uvicorn's default is 5 s).
    pub idle_timeout_ms: u64,
    /// Most idle backend connections kept per worker thread.
    pub max_idle_per_thread: usize,
}

impl Default for UpstreamSection {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8090".into(),
            api_key: None,
            api_key_env: None,
            connect_timeout_ms: 2000,
            read_timeout_ms: 0,
            proxy_read_timeout_ms: 30_000,
            lookup_timeout_ms: 5000,
            idle_timeout_ms: 4000,
            max_idle_per_thread: 64,
        }
    }
}

/// `auth.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Only API keys.
    ApiKeyOnly,
    /// API keys and users (trusted headers; OIDC later).
    #[default]
    ApiKeyAndUser,
}

/// `[auth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// Which credentials are accepted.
    pub mode: AuthMode,
    /// Accept the backend's own key and pass it through unchanged as `service_admin`.
    pub backend_key_passthrough: bool,
    /// Named gateway keys.
    pub api_keys: Vec<ApiKeyConfig>,
    /// Trusted identity headers from trusted proxies.
    pub trusted_header: Option<TrustedHeaderConfig>,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            mode: AuthMode::ApiKeyAndUser,
            backend_key_passthrough: true,
            api_keys: Vec::new(),
            trusted_header: None,
        }
    }
}

/// `[policy]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    /// Role table file.
    pub path: PathBuf,
    /// How often to check the file for changes, milliseconds.
    pub reload_interval_ms: u64,
}

impl Default for PolicySection {
    fn default() -> Self {
        Self {
            path: PathBuf::from("policies/roles.toml"),
            reload_interval_ms: 1000,
        }
    }
}

/// `[scope]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScopeSection {
    /// Metadata key holding the owner token.
    pub owner_metadata_key: String,
    /// Metadata key holding the team token.
    pub team_metadata_key: String,
    /// Largest create or patch body the gateway parses (at most 64 KiB).
    pub max_body_bytes: usize,
    /// Largest response the gateway rewrites (lists), bytes.
    pub max_response_bytes: usize,
    /// Seconds a sandbox's scope stays cached.
    pub cache_ttl_seconds: u64,
}

impl Default for ScopeSection {
    fn default() -> Self {
        Self {
            owner_metadata_key: "access.owner".into(),
            team_metadata_key: "access.team".into(),
            max_body_bytes: 64 * 1024,
            max_response_bytes: 16 * 1024 * 1024,
            cache_ttl_seconds: 30,
        }
    }
}

/// `[audit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// Where events go.
    #[serde(flatten)]
    pub sink: SinkConfig,
}

impl Default for AuditSection {
    fn default() -> Self {
        Self {
            sink: SinkConfig::Stdout,
        }
    }
}

/// Values from flags or the environment, applied over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Listen address.
    pub listen: Option<String>,
    /// Upstream URL.
    pub upstream: Option<String>,
    /// Upstream API key.
    pub upstream_api_key: Option<String>,
}

/// The upstream as the proxy needs it.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Address to connect to.
    pub addr: SocketAddr,
    /// `Host` for the gateway's own lookups.
    pub authority: String,
    /// The backend key, when configured.
    pub api_key: Option<String>,
}

impl GatewayConfig {
    /// Loads, applies overrides (env then CLI) and validates.
    pub fn load(path: &Path, env: Overrides, cli: Overrides) -> Result<Self, ConfigError> {
        let mut cfg: Self = gatehouse_config::load_layered(path, ENV_PREFIX)?;
        for o in [env, cli] {
            if let Some(v) = o.listen {
                cfg.server.listen = v;
            }
            if let Some(v) = o.upstream {
                cfg.upstream.url = v;
            }
            if let Some(v) = o.upstream_api_key {
                cfg.upstream.api_key = Some(v);
            }
        }
        if cfg.upstream.api_key.is_none() {
            if let Some(var) = &cfg.upstream.api_key_env {
                cfg.upstream.api_key = std::env::var(var).ok().filter(|v| !v.is_empty());
                if cfg.upstream.api_key.is_none() {
                    return Err(invalid(
                        "upstream.api_key_env",
                        format!("environment variable {var} is not set"),
                    ));
                }
            }
        }
        if let Some(base) = path.parent() {
            cfg.store.resolve_relative(base);
            if let Some(si) = cfg.sandbox_identity.as_mut() {
                si.resolve_relative(base);
            }
            if let Some(p) = cfg
                .platform
                .kubernetes
                .as_mut()
                .and_then(|k| k.kubeconfig_path.as_mut())
                .filter(|p| p.is_relative())
            {
                *p = base.join(&*p);
            }
            if cfg.console.dir.is_relative() && !cfg.console.dir.exists() {
                let beside = base.join("..").join(&cfg.console.dir);
                if beside.exists() {
                    cfg.console.dir = beside;
                }
            }
            if cfg.policy.path.is_relative() && !cfg.policy.path.exists() {
                let beside = base.join(&cfg.policy.path);
                if beside.exists() {
                    cfg.policy.path = beside;
                }
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.store
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
        self.events
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
        self.quotas
            .validate()
            .and_then(|()| self.rate_limits.validate())
            .map_err(|(key, message)| invalid(&key, message))?;
        self.replication
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
        resolve_listen("server.listen", &self.server.listen)?;
        self.signing.validate()?;
        if let Some(si) = &self.sandbox_identity {
            si.validate()?;
        }
        if let Some(l) = &self.admin.listen {
            self.admin.addr(l)?;
        }
        if self.server.threads == 0 {
            return Err(invalid("server.threads", "must be at least 1".into()));
        }
        if self.server.read_buffer_bytes > 1024 * 1024 {
            return Err(invalid(
                "server.read_buffer_bytes",
                "must be at most 1048576 (0 = unbuffered)".into(),
            ));
        }
        if self.server.write_buffer_bytes > 1024 * 1024 {
            return Err(invalid(
                "server.write_buffer_bytes",
                "must be at most 1048576 (0 = unbuffered)".into(),
            ));
        }
        if self.server.header_read_timeout_ms == 0 {
            return Err(invalid(
                "server.header_read_timeout_ms",
                "must be at least 1".into(),
            ));
        }
        if !(8192..=1024 * 1024).contains(&self.server.max_header_bytes) {
            return Err(invalid(
                "server.max_header_bytes",
                "must be between 8192 and 1048576".into(),
            ));
        }
        for (i, o) in self.server.cors_allowed_origins.iter().enumerate() {
            let o = o.trim_end_matches('/');
            let rest = o
                .strip_prefix("https://")
                .or_else(|| o.strip_prefix("http://"))
                .unwrap_or("");
            if rest.is_empty() || rest.contains('/') || o.contains('*') {
                return Err(invalid(
                    &format!("server.cors_allowed_origins[{i}]"),
                    format!("'{o}' is not an origin like https://tools.example:8443"),
                ));
            }
        }
        for (i, h) in self.server.allowed_hosts.iter().enumerate() {
            if h.is_empty()
                || h.contains("://")
                || h.contains('/')
                || h.contains(char::is_whitespace)
            {
                return Err(invalid(
                    &format!("server.allowed_hosts[{i}]"),
                    format!("'{h}' is not a host[:port] like gw.example:8443"),
                ));
            }
        }
        if let Some(d) = &self.server.sandbox_domain {
            let ok = !d.is_empty()
                && d.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !ok || d.starts_with('.') || d.ends_with('.') {
                return Err(invalid(
                    "server.sandbox_domain",
                    format!("'{d}' is not a domain name like sandboxes.example.net"),
                ));
            }
        }
        if let Some(u) = &self.server.public_url {
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(invalid(
                    "server.public_url",
                    format!("'{u}' is not an http(s) URL"),
                ));
            }
        }
        if self.server.max_headers == 0 {
            return Err(invalid("server.max_headers", "must be at least 1".into()));
        }
        self.upstream()?;
        if self.scope.max_body_bytes == 0 || self.scope.max_body_bytes > 64 * 1024 {
            return Err(invalid(
                "scope.max_body_bytes",
                "must be between 1 and 65536".into(),
            ));
        }
        if self.scope.owner_metadata_key == self.scope.team_metadata_key {
            return Err(invalid(
                "scope.team_metadata_key",
                "must differ from scope.owner_metadata_key".into(),
            ));
        }
        for (key, v) in [
            ("scope.owner_metadata_key", &self.scope.owner_metadata_key),
            ("scope.team_metadata_key", &self.scope.team_metadata_key),
        ] {
            if !gatehouse_lifecycle::validate::is_label_key(v) || v.starts_with("opensandbox.io/") {
                return Err(invalid(key, format!("'{v}' is not a usable metadata key")));
            }
        }
        let controller_keys: Vec<&str> = self
            .auth
            .api_keys
            .iter()
            .filter(|k| k.kind == gatehouse_authn::KeyKind::PlatformController)
            .map(|k| k.name.as_str())
            .collect();
        self.platform
            .validate(&controller_keys)
            .map_err(|(key, message)| invalid(&key, message))?;
        let sandbox_audience = self
            .sandbox_identity
            .as_ref()
            .and_then(|si| si.kubernetes.as_ref())
            .map(|k| k.audience.as_str());
        if let Some(k) = &self.platform.kubernetes {
            if sandbox_audience == Some(k.audience.as_str()) {
                return Err(invalid(
                    "platform.kubernetes.audience",
                    "must differ from sandbox_identity.kubernetes.audience: a sandbox pod's \
                     projected token must never be a controller's credential"
                        .into(),
                ));
            }
        }
        if let Some(o) = &self.oidc {
            o.validate().map_err(|m| {
                let key = m.split(':').next().unwrap_or("oidc").to_string();
                ConfigError::Invalid { key, message: m }
            })?;
            if self.auth.mode == AuthMode::ApiKeyOnly {
                return Err(invalid(
                    "auth.mode",
                    "\"api_key_only\" cannot be combined with [oidc]".into(),
                ));
            }
        }
        Ok(())
    }

    /// The parsed upstream.
    pub fn upstream(&self) -> Result<Upstream, ConfigError> {
        let url = self.upstream.url.trim_end_matches('/');
        let Some(authority) = url.strip_prefix("http://") else {
            return Err(invalid(
                "upstream.url",
                format!("'{url}' must be an http:// URL"),
            ));
        };
        if authority.contains('/') {
            return Err(invalid("upstream.url", "must not carry a path".into()));
        }
        let addr = std::net::ToSocketAddrs::to_socket_addrs(authority)
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| invalid("upstream.url", format!("cannot resolve '{authority}'")))?;
        Ok(Upstream {
            addr,
            authority: authority.to_string(),
            api_key: self.upstream.api_key.clone(),
        })
    }
}

fn invalid(key: &str, message: String) -> ConfigError {
    ConfigError::invalid(key, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let e = toml::from_str::<GatewayConfig>("[server]\nlisten = \"127.0.0.1:1\"\nthreds = 2\n")
            .unwrap_err();
        assert!(e.to_string().contains("threds"));
    }

    #[test]
    fn data_path_limits_and_cors_origins_are_checked() {
        let err = |f: fn(&mut GatewayConfig)| {
            let mut c = GatewayConfig::default();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(
            err(|c| c.server.header_read_timeout_ms = 0).contains("server.header_read_timeout_ms")
        );
        assert!(err(|c| c.server.max_header_bytes = 100).contains("server.max_header_bytes"));
        assert!(err(|c| c.server.max_headers = 0).contains("server.max_headers"));
        for bad in [
            "*",
            "tools.example",
            "https://tools.example/path",
            "ftp://x",
        ] {
            let e = {
                let mut c = GatewayConfig::default();
                c.server.cors_allowed_origins = vec![bad.into()];
                c.validate().unwrap_err().to_string()
            };
            assert!(e.contains("server.cors_allowed_origins[0]"), "{bad}: {e}");
        }
        let mut c = GatewayConfig::default();
        c.server.cors_allowed_origins = vec!["https://tools.example:8443/".into()];
        assert!(c.validate().is_ok());
    }

    #[test]
    fn validate_names_keys() {
        let mut c = GatewayConfig::default();
        c.upstream.url = "https://x".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("upstream.url"));
        let mut c = GatewayConfig::default();
        c.scope.max_body_bytes = 1 << 20;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("scope.max_body_bytes"));
        let mut c = GatewayConfig::default();
        c.server.read_buffer_bytes = 2 << 20;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("server.read_buffer_bytes"));
        assert!(GatewayConfig::default().validate().is_ok());
    }
}
