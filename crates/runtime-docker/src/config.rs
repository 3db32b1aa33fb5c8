//! The `[docker]` section of the backend configuration.
//!
//! Keys mirror the upstream OpenSandbox server's `[docker]` section so an upstream
//! `sandbox.toml` loads unchanged; `exposed_ports`, `docker_host`, `instance` and
//! `host_execd_port` are Gatehouse extensions.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// API timeout used when `api_timeout` is unset, in seconds (upstream default).
pub const DEFAULT_API_TIMEOUT_SECS: u64 = 180;

/// Socket used when neither `docker_host` nor `DOCKER_HOST` is set.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// The `host` network mode: sandboxes share the host's network stack.
pub const HOST_NETWORK: &str = "host";

/// Configuration of the Docker driver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerConfig {
    /// `bridge` (default), `host`, or the name of a user-defined network.
    pub network_mode: String,
    /// Timeout of every engine call, in seconds; 180 when unset.
    pub api_timeout: Option<u64>,
    /// Host to put in endpoint URLs handed to clients (e.g. when the backend itself runs in
    /// a container); the driver's own endpoints use `publish_host`.
    pub host_ip: Option<String>,
    /// Linux capabilities dropped from every sandbox.
    pub drop_capabilities: Vec<String>,
    /// AppArmor profile applied to every sandbox.
    pub apparmor_profile: Option<String>,
    /// Sets `no-new-privileges` on every sandbox.
    pub no_new_privileges: bool,
    /// Seccomp profile: `unconfined`, inline JSON, or the path of a JSON profile file.
    pub seccomp_profile: Option<String>,
    /// IPv4 address the sandbox ports are published on (bridge mode).
    pub publish_host: String,
    /// Maximum number of processes in a sandbox.
    pub pids_limit: Option<i64>,
    /// Environment injected in every sandbox; the request's env overrides it.
    pub sandbox_env: BTreeMap<String, String>,
    /// Bind mounts (`host:container[:opts]`) added to every sandbox.
    pub sandbox_binds: Vec<String>,
    /// Container ports published on `publish_host` with ephemeral host ports (not in
    /// `host` mode).
    pub exposed_ports: Vec<u16>,
    /// Engine address (`unix:///path`, `tcp://host:port`, `http://host:port`); falls back
    /// to `DOCKER_HOST`, then the default unix socket.
    pub docker_host: Option<String>,
    /// Extension: names this backend's containers (label `opensandbox.io/instance`), so
    /// several backends can share one engine without adopting each other's sandboxes.
    pub instance: String,
    /// Extension: in `host` mode, the host port the in-sandbox agent listens on (44772,
    /// the SDK's execd port, by default); endpoints of port 44772 resolve to it.
    pub host_execd_port: u16,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            network_mode: "bridge".into(),
            api_timeout: None,
            host_ip: None,
            drop_capabilities: [
                "AUDIT_WRITE",
                "MKNOD",
                "NET_ADMIN",
                "NET_RAW",
                "SYS_ADMIN",
                "SYS_MODULE",
                "SYS_PTRACE",
                "SYS_TIME",
                "SYS_TTY_CONFIG",
            ]
            .map(String::from)
            .to_vec(),
            apparmor_profile: None,
            no_new_privileges: true,
            seccomp_profile: None,
            publish_host: "127.0.0.1".into(),
            pids_limit: Some(4096),
            sandbox_env: BTreeMap::new(),
            sandbox_binds: Vec::new(),
            exposed_ports: vec![8080, 44772],
            instance: "default".into(),
            docker_host: None,
            host_execd_port: crate::execd::EXECD_PORT,
        }
    }
}

impl DockerConfig {
    /// Effective API timeout in seconds.
    pub fn api_timeout_secs(&self) -> u64 {
        self.api_timeout
            .filter(|t| *t >= 1)
            .unwrap_or(DEFAULT_API_TIMEOUT_SECS)
    }

    /// Whether sandboxes share the host's network stack.
    pub fn is_host_network(&self) -> bool {
        self.network_mode.trim().eq_ignore_ascii_case(HOST_NETWORK)
    }

    /// The network mode as sent to the engine (`bridge`/`host` lowercased).
    pub fn network_mode_value(&self) -> String {
        let m = self.network_mode.trim();
        if m.eq_ignore_ascii_case("bridge") || m.eq_ignore_ascii_case(HOST_NETWORK) {
            m.to_ascii_lowercase()
        } else {
            m.to_string()
        }
    }

    /// The engine address: `docker_host`, else `DOCKER_HOST`, else the default socket.
    pub fn resolved_docker_host(&self) -> String {
        self.docker_host
            .clone()
            .filter(|h| !h.trim().is_empty())
            .or_else(|| {
                std::env::var("DOCKER_HOST")
                    .ok()
                    .filter(|h| !h.trim().is_empty())
            })
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_string())
    }

    /// The address this process dials to reach published ports: `publish_host`, or
    /// loopback when it is the unspecified address.
    pub fn dial_host(&self) -> Ipv4Addr {
        match self.publish_host.trim().parse::<Ipv4Addr>() {
            Ok(ip) if !ip.is_unspecified() => ip,
            _ => Ipv4Addr::LOCALHOST,
        }
    }

    /// Host to put in endpoint URLs given to clients: `host_ip` when set, else the
    /// address this process dials.
    pub fn endpoint_host(&self) -> String {
        match &self.host_ip {
            Some(h) if !h.trim().is_empty() => h.trim().to_string(),
            _ => self.dial_host().to_string(),
        }
    }

    /// Checks every value; the error names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        let mode = self.network_mode.trim();
        if mode.is_empty() {
            return Err(
                "network_mode must not be empty (use \"bridge\", \"host\" or a network name)"
                    .into(),
            );
        }
        if mode.eq_ignore_ascii_case("none") || mode.starts_with("container:") {
            return Err(format!(
                "network_mode \"{mode}\" is not supported: sandboxes need reachable ports \
                 (use \"bridge\", \"host\" or a user-defined network name)"
            ));
        }
        if self.host_execd_port == 0 {
            return Err("host_execd_port must not be 0".into());
        }
        if self.api_timeout == Some(0) {
            return Err("api_timeout must be at least 1 second".into());
        }
        if let Some(h) = &self.host_ip {
            if h.trim().is_empty() || h.contains(['/', ' ']) {
                return Err(format!("host_ip \"{h}\" must be a host name or IP address"));
            }
        }
        if self.publish_host.trim().parse::<Ipv4Addr>().is_err() {
            return Err(format!(
                "publish_host \"{}\" must be an IPv4 address (e.g. \"127.0.0.1\")",
                self.publish_host
            ));
        }
        let mut seen = BTreeSet::new();
        if !gatehouse_lifecycle::validate::is_label_value(&self.instance)
            || self.instance.is_empty()
        {
            return Err(format!(
                "instance '{}' must be a non-empty label value (letters, digits, '-', '_', '.')",
                self.instance
            ));
        }
        for p in &self.exposed_ports {
            if *p == 0 {
                return Err("exposed_ports must not contain 0".into());
            }
            if !seen.insert(*p) {
                return Err(format!("exposed_ports lists port {p} more than once"));
            }
        }
        if let Some(n) = self.pids_limit {
            if n < 1 {
                return Err(format!("pids_limit must be at least 1, got {n}"));
            }
        }
        if let Some(c) = self.drop_capabilities.iter().find(|c| c.trim().is_empty()) {
            return Err(format!("drop_capabilities contains an empty entry {c:?}"));
        }
        for (key, name) in [
            (&self.apparmor_profile, "apparmor_profile"),
            (&self.seccomp_profile, "seccomp_profile"),
        ] {
            if key.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(format!("{name} must not be empty when set"));
            }
        }
        if let Some(k) = self
            .sandbox_env
            .keys()
            .find(|k| k.is_empty() || k.contains(['=', '\0']))
        {
            return Err(format!("sandbox_env has an invalid variable name {k:?}"));
        }
        if let Some(b) = self.sandbox_binds.iter().find(|b| !b.contains(':')) {
            return Err(format!(
                "sandbox_binds entry \"{b}\" must be \"host_path:container_path[:options]\""
            ));
        }
        if let Some(h) = &self.docker_host {
            if !h.trim().is_empty() && !supported_scheme(h) {
                return Err(format!(
                    "docker_host \"{h}\" is not supported: use unix:///path, tcp://host:port or http://host:port"
                ));
            }
        }
        Ok(())
    }
}

/// Whether this driver can dial `host`.
pub(crate) fn supported_scheme(host: &str) -> bool {
    let h = host.trim();
    h.starts_with("unix://")
        || h.starts_with("tcp://")
        || h.starts_with("http://")
        || h.starts_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_upstream() {
        let c = DockerConfig::default();
        assert_eq!(c.network_mode, "bridge");
        assert_eq!(c.api_timeout_secs(), 180);
        assert_eq!(c.pids_limit, Some(4096));
        assert!(c.no_new_privileges);
        assert_eq!(c.exposed_ports, vec![8080, 44772]);
        assert!(c.drop_capabilities.contains(&"NET_RAW".to_string()));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn deserializes_partial_and_rejects_unknown() {
        let c: DockerConfig =
            serde_json::from_str(r#"{"network_mode":"host","pids_limit":512}"#).unwrap();
        assert!(c.is_host_network());
        assert_eq!(c.pids_limit, Some(512));
        assert_eq!(c.publish_host, "127.0.0.1");
        let e = serde_json::from_str::<DockerConfig>(r#"{"bogus":1}"#).unwrap_err();
        assert!(e.to_string().contains("bogus"));
    }

    #[test]
    fn validation_names_the_key() {
        let bad = |f: fn(&mut DockerConfig)| {
            let mut c = DockerConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.publish_host = "localhost".into()).contains("publish_host"));
        assert!(bad(|c| c.exposed_ports = vec![8080, 8080]).contains("exposed_ports"));
        assert!(bad(|c| c.exposed_ports = vec![0]).contains("exposed_ports"));
        assert!(bad(|c| c.pids_limit = Some(0)).contains("pids_limit"));
        assert!(bad(|c| c.api_timeout = Some(0)).contains("api_timeout"));
        assert!(bad(|c| c.host_execd_port = 0).contains("host_execd_port"));
        assert!(bad(|c| c.network_mode = "none".into()).contains("network_mode"));
        assert!(bad(|c| c.docker_host = Some("ssh://x".into())).contains("docker_host"));
        assert!(bad(|c| c.sandbox_binds = vec!["/x".into()]).contains("sandbox_binds"));
    }

    #[test]
    fn dial_host_avoids_unspecified() {
        let mut c = DockerConfig {
            publish_host: "0.0.0.0".into(),
            ..Default::default()
        };
        assert_eq!(c.dial_host(), Ipv4Addr::LOCALHOST);
        assert_eq!(c.endpoint_host(), "127.0.0.1");
        c.host_ip = Some("10.0.0.5".into());
        assert_eq!(c.endpoint_host(), "10.0.0.5");
    }
}
