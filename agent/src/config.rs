//! Command-line configuration (clap).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// Default execd API port (OpenSandbox contract).
pub const DEFAULT_EXECD_PORT: u16 = 44772;
/// Default egress API port (OpenSandbox contract).
pub const DEFAULT_EGRESS_PORT: u16 = 18080;
/// Environment variable that may carry the access token.
pub const TOKEN_ENV: &str = "EXECD_ACCESS_TOKEN";

/// In-sandbox agent: OpenSandbox-compatible execd API, egress stub and PID-1 supervisor.
///
/// Usage as a container entrypoint:
/// `gatehouse-execd --token-file /run/gatehouse/execd-token -- <entrypoint...>`
#[derive(Debug, Clone, Parser)]
#[command(name = "gatehouse-execd", version, about)]
pub struct Config {
    /// Address the execd API listens on.
    #[arg(long, default_value_t = SocketAddr::from(([0, 0, 0, 0], DEFAULT_EXECD_PORT)))]
    pub listen: SocketAddr,

    /// Address the egress API stub listens on.
    #[arg(long, default_value_t = SocketAddr::from(([0, 0, 0, 0], DEFAULT_EGRESS_PORT)))]
    pub egress_listen: SocketAddr,

    /// Do not serve the egress API stub.
    #[arg(long)]
    pub no_egress: bool,

    /// File holding the access token; it is read once at start and then unlinked.
    /// Alternatively set EXECD_ACCESS_TOKEN (removed from every child's environment).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Serve without any access token (local development only).
    #[arg(long)]
    pub insecure_no_token: bool,

    /// Largest accepted upload request body, in bytes (default 1 GiB).
    #[arg(long, default_value_t = 1 << 30)]
    pub max_upload_bytes: u64,

    /// Largest accepted JSON request body, in bytes.
    #[arg(long, default_value_t = 8 << 20)]
    pub max_json_bytes: usize,

    /// Shell used for commands and sessions (default: bash if on PATH, else sh).
    #[arg(long)]
    pub shell: Option<String>,

    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info")]
    pub log_level: tracing::Level,

    /// Entrypoint to supervise as a child (after `--`); the agent exits with its exit code.
    #[arg(last = true, value_name = "ENTRYPOINT")]
    pub entrypoint: Vec<String>,
}
