//! The report: per-path results aggregated from the rounds, issue 6's targets, memory,
//! micro-benchmarks and the facts of the run, written as `report.json` and `report.md`.
//!
//! - [`paths`]: aggregating rounds into per-path results and their ratios to nginx;
//! - [`goals`]: checking issue 6's targets;
//! - [`peers`]: issue 19's comparisons with the peers, the floors and the ceiling;
//! - [`markdown`]: the Markdown rendering;
//! - [`machine`]: what it ran on, and the criterion results.

mod goals;
mod machine;
mod markdown;
mod paths;
mod peers;

pub use machine::{criterion, machine};
pub use markdown::markdown;
pub use paths::paths;

use anyhow::Result;
use serde::Serialize;
use std::path::Path;

/// The baseline every path is compared with.
pub const BASELINE: &str = "nginx";

/// Ratios to a reference path (ours / theirs).
#[derive(Debug, Clone, Serialize)]
pub struct Ratios {
    pub reference: String,
    /// req/s ratio: > 1 is faster than the reference.
    pub rps: f64,
    /// p99 ratio: < 1 is better than the reference.
    pub p99: f64,
    /// Proxy CPU per request ratio: < 1 is cheaper than the reference.
    pub cpu: Option<f64>,
}

/// One path's result over all rounds.
#[derive(Debug, Clone, Serialize)]
pub struct PathResult {
    pub id: String,
    pub label: String,
    pub target: String,
    pub request: String,
    pub gateway: bool,
    pub skipped: Option<String>,
    pub error: Option<String>,
    pub rounds: usize,
    pub requests: u64,
    pub duration_s: f64,
    pub rps: f64,
    pub rps_per_round: Vec<f64>,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub bytes_per_response: f64,
    pub status_errors: u64,
    pub io_errors: u64,
    /// Responses after which the server closed the connection (keep-alive lost).
    pub reconnects: u64,
    /// Proxy CPU (user + system) per request, µs; `None` for the direct path.
    pub proxy_cpu_us_per_req: Option<f64>,
    pub upstream_cpu_us_per_req: f64,
    /// Against nginx `proxy_pass` on the 1.6 KB sandbox GET (the baseline).
    pub vs_nginx: Option<Ratios>,
    /// Against nginx `proxy_pass` on the same request.
    pub vs_nginx_same_request: Option<Ratios>,
}

/// Memory of one server.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub server: String,
    pub target: String,
    pub processes: usize,
    /// VmRSS of the fresh process (before any load) before opening the idle connections, kB.
    pub fresh_rss_kb_before_idle: Option<u64>,
    /// VmRSS of the fresh process with the idle connections open, kB.
    pub fresh_rss_kb_with_idle: Option<u64>,
    /// VmHWM after the load rounds, kB.
    pub peak_rss_kb_after_load: u64,
    /// VmRSS before opening the idle connections, kB.
    pub rss_kb_before_idle: u64,
    /// VmRSS with the idle connections open, kB.
    pub rss_kb_with_idle: Option<u64>,
    /// VmHWM at the end, kB.
    pub peak_rss_kb_overall: u64,
    pub idle_connections: usize,
    pub error: Option<String>,
}

/// One of issue 19's comparisons: a path against a reference path of the same run.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// What is compared, in words.
    pub what: String,
    /// The path's id.
    pub path: String,
    /// The reference path's id.
    pub reference: String,
    pub rps: Option<f64>,
    pub reference_rps: Option<f64>,
    /// Proxy CPU per request, µs (`None` for the direct path).
    pub cpu_us_per_req: Option<f64>,
    pub reference_cpu_us_per_req: Option<f64>,
    pub p99_ms: Option<f64>,
    pub reference_p99_ms: Option<f64>,
    /// Issue 19's target on it, in words, if it has one.
    pub target: Option<String>,
    /// `pass` or `fail` when it has a target and was measured.
    pub status: Option<String>,
    /// Why it was not measured.
    pub not_measured: Option<String>,
}

impl Comparison {
    fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
        match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        }
    }

    /// req/s ratio: > 1 is faster than the reference.
    pub fn rps_ratio(&self) -> Option<f64> {
        Self::ratio(self.rps, self.reference_rps)
    }

    /// CPU per request ratio: < 1 is cheaper than the reference.
    pub fn cpu_ratio(&self) -> Option<f64> {
        Self::ratio(self.cpu_us_per_req, self.reference_cpu_us_per_req)
    }

    /// p99 ratio: < 1 is better than the reference.
    pub fn p99_ratio(&self) -> Option<f64> {
        Self::ratio(self.p99_ms, self.reference_p99_ms)
    }
}

/// How the run was set up.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub mode: String,
    pub loadgen: String,
    pub duration_s: f64,
    pub rounds: usize,
    pub warmup_s: f64,
    pub pinning: String,
    pub gateway_binary: String,
    pub gateway_threads: usize,
    pub gateway_log: String,
    pub variants: Vec<String>,
    /// oauth2-proxy's version (`--version`), or why there is none.
    pub oauth2_proxy: String,
    pub notes: Vec<String>,
    pub elapsed_s: f64,
}

/// What it ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gb: f64,
    pub os: String,
    pub kernel: String,
    pub virtualization: String,
    pub rustc: String,
    pub nginx: String,
    pub haproxy: String,
    pub wrk: String,
    pub git: String,
    pub release_profile: String,
    pub date: String,
}

/// One criterion result.
#[derive(Debug, Clone, Serialize)]
pub struct Micro {
    pub id: String,
    pub mean_ns: f64,
    pub median_ns: f64,
}

/// One of issue 6's targets.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    pub goal: String,
    pub measured: String,
    /// `pass`, `fail` or `n/a`.
    pub status: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub settings: Settings,
    pub paths: Vec<PathResult>,
    pub goals: Vec<Goal>,
    /// Issue 19's comparisons.
    pub peers: Vec<Comparison>,
    pub memory: Vec<Memory>,
    pub micro: Vec<Micro>,
}

impl Report {
    /// The report of `paths` and `memory`, with issue 6's targets checked.
    pub fn new(
        machine: Machine,
        settings: Settings,
        paths: Vec<PathResult>,
        memory: Vec<Memory>,
        micro: Vec<Micro>,
    ) -> Report {
        let goals = goals::goals(&paths, &memory);
        let peers = peers::comparisons(&paths);
        Report {
            machine,
            settings,
            paths,
            goals,
            peers,
            memory,
            micro,
        }
    }

    /// Writes `report.md` and `report.json` into `out` and prints the Markdown.
    pub fn write(&self, out: &Path) -> Result<()> {
        std::fs::create_dir_all(out)?;
        let md = markdown(self);
        std::fs::write(out.join("report.md"), &md)?;
        std::fs::write(out.join("report.json"), serde_json::to_vec_pretty(self)?)?;
        println!("{md}");
        eprintln!(
            "wrote {}/report.md and report.json in {:.0} s",
            out.display(),
            self.settings.elapsed_s
        );
        Ok(())
    }
}
