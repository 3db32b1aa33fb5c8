//! The command line: flags, the smoke run's overrides, and `--variant` parsing.

use crate::load::Schedule;
use crate::wrk::WrkOpts;
use anyhow::{bail, Result};
use clap::Parser;
use std::path::{Path, PathBuf};

/// Proxy-latency benchmark: the gateway side by side with nginx and haproxy.
#[derive(Debug, Parser)]
#[command(name = "bench-run")]
pub(crate) struct Args {
    /// Short smoke iteration: our own binaries only, built-in load generator, ~0.3 s per
    /// path, output in target/bench-smoke.
    #[arg(long)]
    pub(crate) smoke: bool,
    /// Where the gatehouse, bench-upstream and bench-auth binaries are (default: beside
    /// this one).
    #[arg(long)]
    pub(crate) bin_dir: Option<PathBuf>,
    /// Repository root (for policies/roles.toml and target/); found from the working
    /// directory when omitted.
    #[arg(long)]
    pub(crate) repo: Option<PathBuf>,
    /// Output directory (default: <repo>/target/bench, or target/bench-smoke).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Seconds of load per path per round.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) duration: f64,
    /// Rounds; each round runs every path once, in a rotated order.
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Warm-up seconds per path before the first round (not recorded).
    #[arg(long, default_value_t = 1.0)]
    pub(crate) warmup: f64,
    /// Load-generator connections.
    #[arg(long, default_value_t = 16)]
    pub(crate) connections: usize,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    pub(crate) threads: usize,
    /// Load generator: `wrk`, `builtin` or `auto` (wrk when installed).
    #[arg(long, default_value = "auto")]
    pub(crate) loadgen: String,
    /// CPU the servers are pinned to.
    #[arg(long, default_value_t = 0)]
    pub(crate) server_cpu: u32,
    /// CPU the load generator is pinned to.
    #[arg(long, default_value_t = 1)]
    pub(crate) client_cpu: u32,
    /// Do not pin anything.
    #[arg(long)]
    pub(crate) no_pin: bool,
    /// Skip the peers (nginx, haproxy, oauth2-proxy, the Pingora and hyper floors) even
    /// when installed.
    #[arg(long)]
    pub(crate) no_peers: bool,
    /// Gateway worker threads (`server.threads`).
    #[arg(long, default_value_t = 1)]
    pub(crate) gateway_threads: usize,
    /// `RUST_LOG` of the gateway (as deployed: info, one line per request).
    #[arg(long, default_value = "info")]
    pub(crate) gateway_log: String,
    /// An extra gateway build to run on the same paths: `NAME=PATH` or
    /// `NAME=PATH@RUST_LOG`. Repeatable.
    #[arg(long)]
    pub(crate) variant: Vec<String>,
    /// Which gateway paths variants run (case ids).
    #[arg(
        long,
        default_value = "gw-backend-key,gw-apikey,gw-list20,gw-list200",
        value_delimiter = ','
    )]
    pub(crate) variant_cases: Vec<String>,
    /// Run only these cases (ids, comma separated; `gw-*` style prefixes allowed; a
    /// selected gateway case also selects its variant runs).
    #[arg(long, value_delimiter = ',')]
    pub(crate) only: Vec<String>,
    /// Idle keep-alive connections for the memory measurement.
    #[arg(long, default_value_t = 1000)]
    pub(crate) idle_connections: usize,
    /// The oauth2-proxy binary of `nginx-oauth2` (default: where
    /// `benches/scripts/oauth2-proxy.sh` caches it).
    #[arg(long)]
    pub(crate) oauth2_proxy: Option<PathBuf>,
    /// Why there is no oauth2-proxy binary (a failed build): `nginx-oauth2` is skipped
    /// with this reason.
    #[arg(long)]
    pub(crate) oauth2_proxy_error: Option<String>,
    /// Criterion output to summarise in the report (default: <repo>/target/criterion).
    #[arg(long)]
    pub(crate) criterion_dir: Option<PathBuf>,
}

/// An extra gateway build (`--variant NAME=PATH[@RUST_LOG]`).
#[derive(Debug, Clone)]
pub(crate) struct Variant {
    /// Its name: case ids `NAME:...`, target `gw:NAME`.
    pub(crate) name: String,
    /// The gateway binary.
    pub(crate) path: PathBuf,
    /// Its `RUST_LOG` (default: `--gateway-log`).
    pub(crate) log: String,
}

impl Args {
    /// The parsed command line, with the smoke run's settings when `--smoke` is given.
    pub(crate) fn from_command_line() -> Args {
        let mut args = Args::parse();
        if args.smoke {
            args.duration = 0.3;
            args.rounds = 1;
            args.warmup = 0.0;
            args.no_peers = true;
            args.loadgen = "builtin".into();
            args.idle_connections = args.idle_connections.min(50);
            args.gateway_log = "warn".into();
            args.no_pin = true;
        }
        args
    }

    /// The `--variant` builds, each checked to be a file.
    pub(crate) fn variants(&self) -> Result<Vec<Variant>> {
        let mut out = Vec::new();
        for v in &self.variant {
            let Some((name, rest)) = v.split_once('=') else {
                bail!("--variant wants NAME=PATH[@RUST_LOG], got '{v}'");
            };
            let (path, log) = match rest.split_once('@') {
                Some((p, l)) => (p, l.to_string()),
                None => (rest, self.gateway_log.clone()),
            };
            if !Path::new(path).is_file() {
                bail!("--variant {name}: {path} is not a file");
            }
            out.push(Variant {
                name: name.to_string(),
                path: PathBuf::from(path),
                log,
            });
        }
        Ok(out)
    }

    /// How long each path is loaded.
    pub(crate) fn schedule(&self) -> Schedule {
        Schedule {
            warmup: self.warmup,
            rounds: self.rounds,
            duration: self.duration,
        }
    }

    /// wrk's settings (the load generator pinned to `--client-cpu` when `pin`).
    pub(crate) fn wrk_opts(&self, pin: bool) -> WrkOpts {
        WrkOpts {
            threads: self.threads,
            connections: self.connections,
            cpu: pin.then_some(self.client_cpu),
        }
    }

    /// The criterion output to summarise (default: `<repo>/target/criterion`).
    pub(crate) fn criterion_dir(&self, repo: &Path) -> PathBuf {
        self.criterion_dir
            .clone()
            .unwrap_or_else(|| repo.join("target/criterion"))
    }

    /// Whether the pattern list of `--only` selects the case `id` (all do without it).
    pub(crate) fn selects(&self, id: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| selects(o, id))
    }
}

/// Whether one `--only` pattern (an id, or a prefix ending in `*`) selects `id`.
fn selects(pattern: &str, id: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => id == pattern,
    }
}
