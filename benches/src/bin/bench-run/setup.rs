//! What a run works with before any server starts: the repository, the output and work
//! directories, our binaries, CPU pinning, the open-file limit, the load generator and the
//! client runtime.

use crate::cli::{Args, Variant};
use crate::load::LoadGen;
use crate::{procs, report};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Our own binaries the run starts.
pub(crate) struct Bins {
    /// The gateway (`gatehouse`).
    pub(crate) gatehouse: PathBuf,
    /// The fixed-cost upstream (`bench-upstream`).
    pub(crate) upstream: PathBuf,
    /// The auth service behind nginx `auth_request` (`bench-auth`).
    pub(crate) auth: PathBuf,
    /// The bare Pingora proxy (`bench-floor-pingora`), or why there is none.
    pub(crate) floor_pingora: Result<PathBuf, String>,
    /// The bare hyper proxy (`bench-floor-hyper`), or why there is none.
    pub(crate) floor_hyper: Result<PathBuf, String>,
    /// oauth2-proxy (built by `benches/scripts/oauth2-proxy.sh`), or why there is none.
    pub(crate) oauth2_proxy: Result<PathBuf, String>,
}

/// Where and how the servers are started.
pub(crate) struct Env {
    /// Pin the servers to `server_cpu`.
    pub(crate) pin: bool,
    /// The CPU of the servers.
    pub(crate) server_cpu: u32,
    /// The work directory: configs, logs, scripts.
    pub(crate) work: PathBuf,
}

impl Env {
    /// The CPU a server is pinned to, if any.
    pub(crate) fn cpu(&self) -> Option<u32> {
        self.pin.then_some(self.server_cpu)
    }
}

/// A prepared run.
pub(crate) struct Setup {
    /// The repository root.
    pub(crate) repo: PathBuf,
    /// Where `report.md` and `report.json` go.
    pub(crate) out: PathBuf,
    /// Our binaries.
    pub(crate) bins: Bins,
    /// The extra gateway builds.
    pub(crate) variants: Vec<Variant>,
    /// How the servers are started.
    pub(crate) env: Env,
    /// The load generator.
    pub(crate) gen: LoadGen,
    /// Remarks for the report's "Not measured" section.
    pub(crate) notes: Vec<String>,
    /// The runtime of the client side (readiness, preflight, built-in load, logins).
    pub(crate) rt: tokio::runtime::Runtime,
}

impl Setup {
    /// Prepares the run; lowers `args.idle_connections` when the open-file limit is short.
    pub(crate) fn prepare(args: &mut Args) -> Result<Setup> {
        let repo = find_repo(args.repo.clone())?;
        let out = args.out.clone().unwrap_or_else(|| {
            repo.join(if args.smoke {
                "target/bench-smoke"
            } else {
                "target/bench"
            })
        });
        let work = out.join("run");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(work.join("nginx-tmp"))
            .with_context(|| format!("creating {}", work.display()))?;
        let bins = find_bins(args)?;
        let pin = !args.no_pin && procs::which("taskset").is_some();
        if pin {
            // The orchestrator (and the built-in load generator) run on the client CPU;
            // the servers are started with their own affinity.
            let _ = std::process::Command::new("taskset")
                .args([
                    "-p",
                    "-c",
                    &args.client_cpu.to_string(),
                    &std::process::id().to_string(),
                ])
                .stdout(std::process::Stdio::null())
                .status();
        }
        let mut notes = Vec::new();
        raise_fd_limit(args, &mut notes);
        let gen = load_generator(&args.loadgen, &mut notes)?;
        let env = Env {
            pin,
            server_cpu: args.server_cpu,
            work,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the client runtime")?;
        let variants = args.variants()?;
        Ok(Setup {
            repo,
            out,
            bins,
            variants,
            env,
            gen,
            notes,
            rt,
        })
    }
}

impl Setup {
    /// How the run was set up, for the report (`elapsed_s` is filled in last).
    pub(crate) fn settings(&self, args: &Args) -> report::Settings {
        report::Settings {
            mode: if args.smoke { "smoke" } else { "full" }.into(),
            loadgen: match self.gen {
                LoadGen::Wrk => {
                    format!("wrk -t{} -c{} (keep-alive)", args.threads, args.connections)
                }
                LoadGen::Builtin => format!(
                    "built-in closed loop, {} keep-alive connections",
                    args.connections
                ),
            },
            duration_s: args.duration,
            rounds: args.rounds,
            warmup_s: args.warmup,
            pinning: if self.env.pin {
                format!(
                    "servers on CPU {}, load generator on CPU {}",
                    args.server_cpu, args.client_cpu
                )
            } else {
                "none".into()
            },
            gateway_binary: self.bins.gatehouse.display().to_string(),
            gateway_threads: args.gateway_threads,
            gateway_log: args.gateway_log.clone(),
            variants: self
                .variants
                .iter()
                .map(|v| format!("{} = {} (RUST_LOG={})", v.name, v.path.display(), v.log))
                .collect(),
            oauth2_proxy: match &self.bins.oauth2_proxy {
                Ok(p) => procs::version_of(&p.to_string_lossy(), &["--version"])
                    .unwrap_or_else(|| format!("{} (no version)", p.display())),
                Err(why) => format!("no oauth2-proxy ({why})"),
            },
            notes: self.notes.clone(),
            elapsed_s: 0.0,
        }
    }
}

/// The repository root: `explicit`, or the first directory above the working directory
/// (then above this binary) with `policies/roles.toml` and `Cargo.toml`.
fn find_repo(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(r) = explicit {
        return Ok(r);
    }
    let mut starts = vec![std::env::current_dir()?];
    if let Ok(exe) = std::env::current_exe() {
        starts.push(exe);
    }
    for start in starts {
        let mut dir: Option<&Path> = Some(start.as_path());
        while let Some(d) = dir {
            if d.join("policies/roles.toml").is_file() && d.join("Cargo.toml").is_file() {
                return Ok(d.to_path_buf());
            }
            dir = d.parent();
        }
    }
    bail!("cannot find the repository root (policies/roles.toml); pass --repo")
}

/// Our binaries in `--bin-dir` (default: beside this one); fails when the gateway, the
/// upstream or the auth service is not built (the floors and oauth2-proxy are optional:
/// their paths are skipped, with why).
fn find_bins(args: &Args) -> Result<Bins> {
    let bin_dir = match args.bin_dir.as_deref() {
        Some(d) => d.to_path_buf(),
        None => std::env::current_exe()?
            .parent()
            .map(Path::to_path_buf)
            .context("locating the binaries")?,
    };
    let bin = |name: &str| -> Result<PathBuf> {
        let p = bin_dir.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            bail!("{} not found; build it first (cargo build --release -p gatehouse -p gatehouse-benches --bins)", p.display())
        }
    };
    let optional = |name: &str| bin(name).map_err(|e| e.to_string());
    Ok(Bins {
        gatehouse: bin("gatehouse")?,
        upstream: bin("bench-upstream")?,
        auth: bin("bench-auth")?,
        floor_pingora: optional("bench-floor-pingora"),
        floor_hyper: optional("bench-floor-hyper"),
        oauth2_proxy: oauth2_proxy(args),
    })
}

/// The pinned oauth2-proxy version `benches/scripts/oauth2-proxy.sh` builds.
pub(crate) const OAUTH2_PROXY_VERSION: &str = "v7.15.6";

/// The oauth2-proxy binary: `--oauth2-proxy`, else the build script's cache
/// (`~/.cache/gatehouse/oauth2-proxy/<version>/oauth2-proxy`); or why there is none
/// (`--oauth2-proxy-error`, as `benches/run.sh` passes a failed build).
fn oauth2_proxy(args: &Args) -> Result<PathBuf, String> {
    if let Some(why) = &args.oauth2_proxy_error {
        return Err(why.clone());
    }
    let path = match &args.oauth2_proxy {
        Some(p) => p.clone(),
        None => {
            let cache = std::env::var_os("GATEHOUSE_CACHE")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("gatehouse"))
                })
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/gatehouse"))
                })
                .unwrap_or_default();
            cache
                .join("oauth2-proxy")
                .join(OAUTH2_PROXY_VERSION)
                .join("oauth2-proxy")
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "oauth2-proxy is not built ({} missing; benches/scripts/oauth2-proxy.sh builds it)",
            path.display()
        ))
    }
}

/// Raises the open-file limit for the idle connections; lowers their number (with a note)
/// when it stays short.
fn raise_fd_limit(args: &mut Args, notes: &mut Vec<String>) {
    let want_fds = ((args.idle_connections as u64) * 3 + 4096).max(65536);
    let fd_limit = procs::raise_nofile(want_fds).unwrap_or(1024);
    if fd_limit < (args.idle_connections as u64) + 256 {
        let n = fd_limit.saturating_sub(256) as usize;
        notes.push(format!(
            "open-file limit {fd_limit}: idle connections lowered from {} to {n}",
            args.idle_connections
        ));
        args.idle_connections = n;
    }
}

/// The load generator `--loadgen` asks for (`auto`: wrk when installed, with a note when
/// not).
fn load_generator(loadgen: &str, notes: &mut Vec<String>) -> Result<LoadGen> {
    let have_wrk = procs::which("wrk").is_some();
    Ok(match loadgen {
        "wrk" if !have_wrk => bail!("--loadgen wrk but wrk is not installed"),
        "wrk" => LoadGen::Wrk,
        "builtin" => LoadGen::Builtin,
        _ if have_wrk => LoadGen::Wrk,
        _ => {
            notes.push("wrk is not installed: the built-in load generator was used".into());
            LoadGen::Builtin
        }
    })
}
