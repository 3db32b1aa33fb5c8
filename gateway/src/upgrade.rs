//! Zero-downtime upgrade: Pingora's graceful upgrade with socket hand-over.
//!
//! Start the new binary with `--upgrade` (same configuration), then send `SIGQUIT` to the
//! running gateway. The old process hands its listening sockets to the new one over a unix
//! socket ([`UpgradeOptions::sock_path`]) and keeps serving for a few seconds, then drains:
//! each of its connections answers its next request with `Connection: close` (so the
//! client reconnects, to the new process, without a failed request) and idle ones are
//! closed after [`crate::http::service::DRAIN_IDLE`]. It exits after
//! `server.grace_period_seconds`. Both processes accept on the same socket meanwhile, so
//! no connection is refused.
//!
//! The new process does not bind the main listener itself (it inherits it) and binds the
//! admin listener once the old process has let go of it.

use std::net::SocketAddr;
use std::path::PathBuf;

/// How this process starts with respect to a running one.
#[derive(Debug, Clone, Default)]
pub struct UpgradeOptions {
    /// Take the listening sockets over from a running gateway instead of binding them.
    pub upgrade: bool,
    /// The hand-over socket; default [`default_sock`] of the listen address.
    pub sock: Option<PathBuf>,
}

impl UpgradeOptions {
    /// The hand-over socket path: the configured one, else one per listen port (so two
    /// gateways on one host never hand sockets to each other).
    pub fn sock_path(&self, listen: SocketAddr) -> String {
        match &self.sock {
            Some(p) => p.display().to_string(),
            None => default_sock(listen),
        }
    }
}

/// `/tmp/gatehouse-upgrade-<port>.sock`.
pub fn default_sock(listen: SocketAddr) -> String {
    format!("/tmp/gatehouse-upgrade-{}.sock", listen.port())
}

/// Pingora's command-line options for this start.
pub fn pingora_opt(o: &UpgradeOptions) -> pingora::server::configuration::Opt {
    pingora::server::configuration::Opt {
        upgrade: o.upgrade,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_follows_the_port_unless_configured() {
        let a: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            UpgradeOptions::default().sock_path(a),
            "/tmp/gatehouse-upgrade-8080.sock"
        );
        let o = UpgradeOptions {
            upgrade: true,
            sock: Some(PathBuf::from("/run/gh.sock")),
        };
        assert_eq!(o.sock_path(a), "/run/gh.sock");
        assert!(pingora_opt(&o).upgrade);
    }
}
