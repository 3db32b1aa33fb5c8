//! `bench-run`: the proxy-latency benchmark of issue 6, end to end.
//!
//! It starts the fixed-cost upstream (`bench-upstream`), the development OpenID provider
//! (`oidc.rs`: a real login and a real JWT for the session-cookie and bearer-JWT paths),
//! the gateway with a bench config, and, when installed, nginx (`proxy_pass`, and
//! `auth_request` in front of `bench-auth`) and haproxy, every server pinned to one CPU. It
//! checks each path once (status, scope header, item count), then drives every path with
//! `wrk` (pinned to the other CPU) for a few rounds, alternating the paths, and reads each
//! proxy's CPU time from `/proc`. Last it measures memory with 1,000 idle keep-alive
//! connections, and writes `target/bench/report.md` and `report.json`.
//!
//! `bench-run --smoke` is the short iteration `make test` runs: only our own binaries
//! (debug builds are fine), the built-in load generator, a fraction of a second per path.

mod client;
mod configs;
mod oidc;
mod procs;
mod report;
mod wrk;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Parser;
use client::{Req, Sample};
use gatehouse_benches::fixtures::{self, Tokens};
use procs::Proc;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Proxy-latency benchmark: the gateway side by side with nginx and haproxy.
#[derive(Debug, Parser)]
#[command(name = "bench-run")]
struct Args {
    /// Short smoke iteration: our own binaries only, built-in load generator, ~0.3 s per
    /// path, output in target/bench-smoke.
    #[arg(long)]
    smoke: bool,
    /// Where the gatehouse, bench-upstream and bench-auth binaries are (default: beside
    /// this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Repository root (for policies/roles.toml and target/); found from the working
    /// directory when omitted.
    #[arg(long)]
    repo: Option<PathBuf>,
    /// Output directory (default: <repo>/target/bench, or target/bench-smoke).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seconds of load per path per round.
    #[arg(long, default_value_t = 2.0)]
    duration: f64,
    /// Rounds; each round runs every path once, in a rotated order.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Warm-up seconds per path before the first round (not recorded).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Load-generator connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Load generator: `wrk`, `builtin` or `auto` (wrk when installed).
    #[arg(long, default_value = "auto")]
    loadgen: String,
    /// CPU the servers are pinned to.
    #[arg(long, default_value_t = 0)]
    server_cpu: u32,
    /// CPU the load generator is pinned to.
    #[arg(long, default_value_t = 1)]
    client_cpu: u32,
    /// Do not pin anything.
    #[arg(long)]
    no_pin: bool,
    /// Skip nginx and haproxy even when installed.
    #[arg(long)]
    no_peers: bool,
    /// Gateway worker threads (`server.threads`).
    #[arg(long, default_value_t = 1)]
    gateway_threads: usize,
    /// `RUST_LOG` of the gateway (as deployed: info, one line per request).
    #[arg(long, default_value = "info")]
    gateway_log: String,
    /// An extra gateway build to run on the same paths: `NAME=PATH` or
    /// `NAME=PATH@RUST_LOG`. Repeatable.
    #[arg(long)]
    variant: Vec<String>,
    /// Which gateway paths variants run (case ids).
    #[arg(
        long,
        default_value = "gw-backend-key,gw-apikey,gw-list20,gw-list200",
        value_delimiter = ','
    )]
    variant_cases: Vec<String>,
    /// Run only these cases (ids, comma separated; `gw-*` style prefixes allowed; a
    /// selected gateway case also selects its variant runs).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Idle keep-alive connections for the memory measurement.
    #[arg(long, default_value_t = 1000)]
    idle_connections: usize,
    /// Criterion output to summarise in the report (default: <repo>/target/criterion).
    #[arg(long)]
    criterion_dir: Option<PathBuf>,
}

/// The OIDC paths: the smoke run fails when they do not run.
const SMOKE_OIDC: [&str; 2] = ["gw-session", "gw-jwt"];

/// Which server a case talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// The upstream itself.
    Direct,
    /// nginx, haproxy or nginx + auth service.
    Peer,
    /// A gateway build.
    Gateway,
}

/// A server under test.
pub(crate) struct Target {
    pub(crate) name: String,
    pub(crate) label: String,
    pub(crate) kind: Kind,
    pub(crate) port: u16,
    /// Processes whose CPU time counts as "proxy CPU" for this target.
    pub(crate) pids: Vec<u32>,
}

/// Credentials a case presents.
#[derive(Debug, Clone)]
enum Cred {
    BackendKey,
    NamedKey,
    TrustedUser,
    /// An OIDC session (the `Cookie` header value) from a login through the gateway.
    Cookie(String),
    /// A JWT access token from the dev IdP.
    Bearer(String),
}

impl Cred {
    fn headers(&self) -> Vec<(String, String)> {
        let h = |k: &str, v: &str| (k.to_string(), v.to_string());
        match self {
            Cred::BackendKey => vec![h("OPEN-SANDBOX-API-KEY", fixtures::BACKEND_KEY)],
            Cred::NamedKey => vec![h("OPEN-SANDBOX-API-KEY", fixtures::NAMED_KEY)],
            Cred::TrustedUser => vec![
                h("X-OpenSandbox-User", fixtures::BENCH_USER),
                h("X-OpenSandbox-Team", fixtures::BENCH_TEAM),
            ],
            Cred::Cookie(c) => vec![h("Cookie", c)],
            Cred::Bearer(t) => vec![h("Authorization", &format!("Bearer {t}"))],
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Cred::BackendKey => "backend key",
            Cred::NamedKey => "named API key",
            Cred::TrustedUser => "trusted headers",
            Cred::Cookie(_) => "session cookie",
            Cred::Bearer(_) => "bearer JWT",
        }
    }
}

/// The request kinds of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReqKind {
    Sandbox,
    List20,
    List200,
    Create,
    Proxy1M,
}

impl ReqKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ReqKind::Sandbox => "GET sandbox (1.6 KB)",
            ReqKind::List20 => "GET list, 20 items",
            ReqKind::List200 => "GET list, 200 items",
            ReqKind::Create => "POST create",
            ReqKind::Proxy1M => "GET proxy route, 1 MiB",
        }
    }

    fn build(self, cred: &Cred) -> Req {
        let mut headers = cred.headers();
        let (method, path, body) = match self {
            ReqKind::Sandbox => (
                "GET",
                format!("/v1/sandboxes/{}", fixtures::SANDBOX_ID),
                None,
            ),
            ReqKind::List20 => ("GET", "/v1/sandboxes?pageSize=20".to_string(), None),
            ReqKind::List200 => ("GET", "/v1/sandboxes?pageSize=200".to_string(), None),
            ReqKind::Create => (
                "POST",
                "/v1/sandboxes".to_string(),
                Some(Bytes::from(fixtures::create_request_json())),
            ),
            ReqKind::Proxy1M => (
                "GET",
                format!("/v1/sandboxes/{}/proxy/8080/data.bin", fixtures::SANDBOX_ID),
                None,
            ),
        };
        if body.is_some() {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        Req {
            method: method.into(),
            path,
            headers,
            body,
        }
    }
}

/// One path of the benchmark: a target and a request.
pub(crate) struct Case {
    pub(crate) id: String,
    /// The id of the primary case this is a variant run of (else `id`).
    base: String,
    pub(crate) label: String,
    pub(crate) target: String,
    pub(crate) request: ReqKind,
    pub(crate) req: Req,
    pub(crate) gateway: bool,
    /// Why it does not run.
    pub(crate) skip: Option<String>,
    /// Preflight or load failure.
    pub(crate) error: Option<String>,
    expect_scoped: bool,
}

/// One round of one case.
pub(crate) struct Round {
    pub(crate) sample: Sample,
    pub(crate) proxy_ticks: u64,
    pub(crate) upstream_ticks: u64,
}

fn case(id: &str, target: &str, tlabel: &str, kind: ReqKind, cred: Cred, gateway: bool) -> Case {
    let expect_scoped = gateway
        && matches!(
            cred,
            Cred::NamedKey | Cred::TrustedUser | Cred::Cookie(_) | Cred::Bearer(_)
        )
        && matches!(kind, ReqKind::List20 | ReqKind::List200 | ReqKind::Create);
    Case {
        id: id.to_string(),
        base: id.to_string(),
        label: format!("{tlabel}, {}", cred.label()),
        target: target.to_string(),
        request: kind,
        req: kind.build(&cred),
        gateway,
        skip: None,
        error: None,
        expect_scoped,
    }
}

/// A case with an OIDC credential: skipped or failed (with the reason) when there is none.
fn oidc_case(id: &str, target: &str, tlabel: &str, minted: &oidc::Minted, cookie: bool) -> Case {
    use oidc::Minted;
    let value = match minted {
        Minted::Ready(v) => v.clone(),
        Minted::Skipped(_) | Minted::Failed(_) => String::new(),
    };
    let cred = if cookie {
        Cred::Cookie(value)
    } else {
        Cred::Bearer(value)
    };
    let mut c = case(id, target, tlabel, ReqKind::Sandbox, cred, true);
    match minted {
        Minted::Ready(_) => {}
        Minted::Skipped(why) => c.skip = Some(why.clone()),
        Minted::Failed(why) => c.error = Some(format!("setup: {why}")),
    }
    c
}

fn gateway_cases(prefix: &str, target: &str, tlabel: &str, oidc: &oidc::Creds) -> Vec<Case> {
    let id = |s: &str| format!("{prefix}-{s}");
    let scoped = format!("{tlabel} (operator, team-scoped)");
    vec![
        case(
            &id("backend-key"),
            target,
            &format!("{tlabel} (passthrough)"),
            ReqKind::Sandbox,
            Cred::BackendKey,
            true,
        ),
        case(
            &id("apikey"),
            target,
            &scoped,
            ReqKind::Sandbox,
            Cred::NamedKey,
            true,
        ),
        oidc_case(&id("session"), target, &scoped, &oidc.cookie, true),
        oidc_case(&id("jwt"), target, &scoped, &oidc.bearer, false),
        case(
            &id("list20"),
            target,
            &format!("{tlabel} (filtered)"),
            ReqKind::List20,
            Cred::TrustedUser,
            true,
        ),
        case(
            &id("list200"),
            target,
            &format!("{tlabel} (filtered)"),
            ReqKind::List200,
            Cred::TrustedUser,
            true,
        ),
        case(
            &id("create"),
            target,
            &format!("{tlabel} (metadata injected)"),
            ReqKind::Create,
            Cred::NamedKey,
            true,
        ),
        case(
            &id("proxy-1m"),
            target,
            &format!("{tlabel} (streamed)"),
            ReqKind::Proxy1M,
            Cred::NamedKey,
            true,
        ),
    ]
}

fn all_cases(
    variants: &[(String, String)],
    variant_cases: &[String],
    oidc: &BTreeMap<String, oidc::Creds>,
) -> Vec<Case> {
    let creds = |target: &str| {
        oidc.get(target)
            .cloned()
            .unwrap_or_else(|| oidc::Creds::skipped("no OIDC credentials for this gateway"))
    };
    use ReqKind::*;
    let mut v = vec![
        case(
            "direct",
            "upstream",
            "direct to the upstream",
            Sandbox,
            Cred::BackendKey,
            false,
        ),
        case(
            "nginx",
            "nginx",
            "nginx proxy_pass",
            Sandbox,
            Cred::BackendKey,
            false,
        ),
        case(
            "haproxy",
            "haproxy",
            "haproxy",
            Sandbox,
            Cred::BackendKey,
            false,
        ),
        case(
            "nginx-auth",
            "nginx-auth",
            "nginx auth_request",
            Sandbox,
            Cred::NamedKey,
            false,
        ),
        case(
            "nginx-list20",
            "nginx",
            "nginx proxy_pass (unfiltered)",
            List20,
            Cred::BackendKey,
            false,
        ),
        case(
            "haproxy-list20",
            "haproxy",
            "haproxy (unfiltered)",
            List20,
            Cred::BackendKey,
            false,
        ),
        case(
            "nginx-auth-list20",
            "nginx-auth",
            "nginx auth_request (unfiltered)",
            List20,
            Cred::NamedKey,
            false,
        ),
        case(
            "nginx-list200",
            "nginx",
            "nginx proxy_pass (unfiltered)",
            List200,
            Cred::BackendKey,
            false,
        ),
        case(
            "nginx-create",
            "nginx",
            "nginx proxy_pass",
            Create,
            Cred::BackendKey,
            false,
        ),
        case(
            "nginx-proxy-1m",
            "nginx",
            "nginx proxy_pass",
            Proxy1M,
            Cred::BackendKey,
            false,
        ),
        case(
            "haproxy-proxy-1m",
            "haproxy",
            "haproxy",
            Proxy1M,
            Cred::BackendKey,
            false,
        ),
    ];
    v.extend(gateway_cases("gw", "gw", "gateway", &creds("gw")));
    for (name, _) in variants {
        let target = format!("gw:{name}");
        let label = format!("gateway [{name}]");
        for mut c in gateway_cases(name, &target, &label, &creds(&target)) {
            let base = c.id.replacen(name.as_str(), "gw", 1);
            if variant_cases.iter().any(|x| x == &base) {
                c.id = format!("{name}:{}", base.trim_start_matches("gw-"));
                c.base = base;
                v.push(c);
            }
        }
    }
    // Stable, readable order: by request kind, then direct, peers, gateways.
    let order = |k: ReqKind| match k {
        Sandbox => 0,
        List20 => 1,
        List200 => 2,
        Create => 3,
        Proxy1M => 4,
    };
    v.sort_by_key(|c| {
        (
            order(c.request),
            !c.gateway && c.target != "upstream",
            c.gateway,
        )
    });
    v
}

fn selects(pattern: &str, id: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => id == pattern,
    }
}

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

struct Env {
    pin: bool,
    server_cpu: u32,
    work: PathBuf,
}

impl Env {
    fn cpu(&self) -> Option<u32> {
        self.pin.then_some(self.server_cpu)
    }
}

async fn wait_ready(p: &mut Proc, port: u16, path: &str, ok: &[u16]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let req = Req {
        method: "GET".into(),
        path: path.into(),
        headers: vec![],
        body: None,
    };
    loop {
        procs::ensure_running(p)?;
        if let Ok(r) = client::once(port, &req, Duration::from_secs(2)).await {
            if ok.contains(&r.status) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not become ready on port {port}; log:\n{}",
                p.name,
                p.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn preflight_check(c: &Case, r: &client::Resp) -> Result<()> {
    let want = if c.request == ReqKind::Create {
        202
    } else {
        200
    };
    if r.status != want {
        bail!(
            "status {} (want {want}): {}",
            r.status,
            String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
        );
    }
    if c.expect_scoped {
        let scoped = r
            .headers
            .get("x-bench-scoped")
            .and_then(|v| v.to_str().ok());
        if scoped != Some("1") {
            bail!("the upstream did not see the caller's scope (x-bench-scoped: {scoped:?})");
        }
    }
    match c.request {
        ReqKind::List20 | ReqKind::List200 => {
            let n = if c.request == ReqKind::List20 {
                20
            } else {
                200
            };
            let v: serde_json::Value =
                serde_json::from_slice(&r.body).context("the list is not JSON")?;
            let got = v["items"].as_array().map(Vec::len);
            if got != Some(n) {
                bail!("{got:?} items, want {n}");
            }
        }
        ReqKind::Proxy1M if r.body.len() != fixtures::PROXY_BODY_BYTES => {
            bail!(
                "{} bytes, want {}",
                r.body.len(),
                fixtures::PROXY_BODY_BYTES
            );
        }
        _ => {}
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum LoadGen {
    Wrk,
    Builtin,
}

struct Load<'a> {
    gen: LoadGen,
    wrk: wrk::WrkOpts,
    connections: usize,
    scripts: &'a BTreeMap<String, PathBuf>,
}

impl Load<'_> {
    fn run(
        &self,
        rt: &tokio::runtime::Runtime,
        c: &Case,
        port: u16,
        d: Duration,
    ) -> Result<Sample> {
        match self.gen {
            LoadGen::Wrk => {
                let script = self
                    .scripts
                    .get(&c.id)
                    .with_context(|| format!("no wrk script for {}", c.id))?;
                wrk::run(&self.wrk, port, &c.req.path, script, d)
            }
            LoadGen::Builtin => {
                rt.block_on(client::builtin_load(port, &c.req, self.connections, d))
            }
        }
    }
}

fn main() -> Result<()> {
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
    let started = Instant::now();
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
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
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
    let gatehouse = bin("gatehouse")?;
    let upstream_bin = bin("bench-upstream")?;
    let auth_bin = bin("bench-auth")?;

    let pin = !args.no_pin && procs::which("taskset").is_some();
    if pin {
        // The orchestrator (and the built-in load generator) run on the client CPU; the
        // servers are started with their own affinity.
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
    let want_fds = ((args.idle_connections as u64) * 3 + 4096).max(65536);
    let fd_limit = procs::raise_nofile(want_fds).unwrap_or(1024);
    let mut notes: Vec<String> = Vec::new();
    if fd_limit < (args.idle_connections as u64) + 256 {
        let n = fd_limit.saturating_sub(256) as usize;
        notes.push(format!(
            "open-file limit {fd_limit}: idle connections lowered from {} to {n}",
            args.idle_connections
        ));
        args.idle_connections = n;
    }
    let have_wrk = procs::which("wrk").is_some();
    let gen = match args.loadgen.as_str() {
        "wrk" if !have_wrk => bail!("--loadgen wrk but wrk is not installed"),
        "wrk" => LoadGen::Wrk,
        "builtin" => LoadGen::Builtin,
        _ if have_wrk => LoadGen::Wrk,
        _ => {
            notes.push("wrk is not installed: the built-in load generator was used".into());
            LoadGen::Builtin
        }
    };
    let have_nginx = !args.no_peers && procs::which("nginx").is_some();
    let have_haproxy = !args.no_peers && procs::which("haproxy").is_some();
    let env = Env {
        pin,
        server_cpu: args.server_cpu,
        work: work.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the client runtime")?;

    let mut variants: Vec<(String, String)> = Vec::new();
    let mut variant_bins: Vec<(String, PathBuf, String)> = Vec::new();
    for v in &args.variant {
        let Some((name, rest)) = v.split_once('=') else {
            bail!("--variant wants NAME=PATH[@RUST_LOG], got '{v}'");
        };
        let (path, log) = match rest.split_once('@') {
            Some((p, l)) => (p, l.to_string()),
            None => (rest, args.gateway_log.clone()),
        };
        if !Path::new(path).is_file() {
            bail!("--variant {name}: {path} is not a file");
        }
        variants.push((name.to_string(), path.to_string()));
        variant_bins.push((name.to_string(), PathBuf::from(path), log));
    }

    // ---- servers ----
    let tokens = Tokens::bench();
    let ports = configs::Ports {
        upstream: procs::free_port()?,
        auth: procs::free_port()?,
        nginx: procs::free_port()?,
        nginx_auth: procs::free_port()?,
        haproxy: procs::free_port()?,
    };
    let _ = &tokens;
    let mut procs_all: Vec<Proc> = Vec::new();
    let mut targets: Vec<Target> = Vec::new();

    let mut upstream = Proc::spawn(
        "bench-upstream",
        &upstream_bin,
        &[
            "--listen".into(),
            format!("127.0.0.1:{}", ports.upstream),
            "--api-key".into(),
            fixtures::BACKEND_KEY.into(),
        ],
        &[],
        env.cpu(),
        work.join("upstream.log"),
        "KILL",
    )?;
    rt.block_on(wait_ready(&mut upstream, ports.upstream, "/health", &[200]))?;
    let upstream_pid = upstream.pid;
    targets.push(Target {
        name: "upstream".into(),
        label: "bench-upstream".into(),
        kind: Kind::Direct,
        port: ports.upstream,
        pids: vec![],
    });
    procs_all.push(upstream);

    let policy = repo.join("policies/roles.toml");
    let mut gateways: Vec<(String, String, PathBuf, String)> = vec![(
        "gw".into(),
        "gateway".into(),
        gatehouse.clone(),
        args.gateway_log.clone(),
    )];
    for (name, path, log) in &variant_bins {
        gateways.push((
            format!("gw:{name}"),
            format!("gateway [{name}]"),
            path.clone(),
            log.clone(),
        ));
    }
    let gateway_ports = gateways
        .iter()
        .map(|_| procs::free_port())
        .collect::<Result<Vec<u16>>>()?;

    // The dev IdP for gw-session and gw-jwt; every gateway gets an [oidc] section for it.
    let mut idp = None;
    let mut no_oidc = String::from("not selected (--only)");
    let gateway_ids: Vec<String> = gateway_cases("gw", "gw", "", &oidc::Creds::skipped(""))
        .into_iter()
        .map(|c| c.id)
        .collect();
    let gateway_selected = args.only.is_empty()
        || args
            .only
            .iter()
            .any(|o| gateway_ids.iter().any(|id| selects(o, id)));
    if gateway_selected {
        let urls: Vec<String> = gateway_ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect();
        eprintln!("starting the dev IdP (gw-session, gw-jwt)");
        match rt.block_on(oidc::start_idp(&urls)) {
            Ok(i) => idp = Some(i),
            Err(e) if args.smoke => {
                return Err(e.context("the dev IdP did not start (the smoke run needs it)"))
            }
            Err(e) => {
                eprintln!("the dev IdP did not start: {e:#}");
                let why = format!("the dev IdP did not start: {}", oidc::reason(&e));
                notes.push(format!("{why}; the gateway ran without [oidc]"));
                no_oidc = why;
            }
        }
    }
    let oidc_cfg = idp.as_ref().map(oidc::settings);

    let mut gateway_logs: Vec<PathBuf> = Vec::new();
    for ((name, label, path, log), &port) in gateways.iter().zip(&gateway_ports) {
        let slug = name.replace(':', "-");
        let audit = work.join(format!("{slug}-audit.jsonl"));
        let cfg = configs::gateway(
            port,
            ports.upstream,
            args.gateway_threads,
            &policy,
            &audit,
            oidc_cfg.as_ref(),
        );
        let cfg_path = work.join(format!("{slug}.toml"));
        std::fs::write(&cfg_path, cfg)?;
        let log_path = work.join(format!("{slug}.log"));
        let mut p = Proc::spawn(
            name,
            path,
            &["--config".into(), cfg_path.display().to_string()],
            &[
                ("RUST_LOG".into(), log.clone()),
                ("GATEHOUSE_UPSTREAM_API_KEY".into(), String::new()),
            ],
            env.cpu(),
            log_path.clone(),
            "INT",
        )?;
        rt.block_on(wait_ready(&mut p, port, "/healthz", &[200]))?;
        gateway_logs.push(log_path);
        gateway_logs.push(audit);
        targets.push(Target {
            name: name.clone(),
            label: label.clone(),
            kind: Kind::Gateway,
            port,
            pids: vec![p.pid],
        });
        procs_all.push(p);
    }

    let mut skipped_targets: BTreeMap<String, String> = BTreeMap::new();
    if have_nginx {
        match start_nginx(&rt, &env, ports, &auth_bin) {
            Ok((ps, nginx_pids, auth_pid)) => {
                procs_all.extend(ps);
                let mut with_auth = nginx_pids.clone();
                with_auth.push(auth_pid);
                targets.push(Target {
                    name: "nginx".into(),
                    label: "nginx".into(),
                    kind: Kind::Peer,
                    port: ports.nginx,
                    pids: nginx_pids,
                });
                targets.push(Target {
                    name: "nginx-auth".into(),
                    label: "nginx auth_request + bench-auth".into(),
                    kind: Kind::Peer,
                    port: ports.nginx_auth,
                    pids: with_auth,
                });
            }
            Err(e) => {
                let msg = format!("nginx failed to start: {e:#}");
                eprintln!("{msg}");
                skipped_targets.insert("nginx".into(), msg.clone());
                skipped_targets.insert("nginx-auth".into(), msg);
            }
        }
    } else {
        let why = if args.no_peers {
            "peers disabled"
        } else {
            "nginx is not installed"
        };
        skipped_targets.insert("nginx".into(), why.into());
        skipped_targets.insert("nginx-auth".into(), why.into());
    }
    if have_haproxy {
        let cfg = work.join("haproxy.cfg");
        std::fs::write(&cfg, configs::haproxy(ports))?;
        let haproxy = procs::which("haproxy").context("haproxy")?;
        let started = Proc::spawn(
            "haproxy",
            &haproxy,
            &["-db".into(), "-f".into(), cfg.display().to_string()],
            &[],
            env.cpu(),
            work.join("haproxy.log"),
            "TERM",
        )
        .and_then(|mut p| {
            rt.block_on(wait_ready(&mut p, ports.haproxy, "/health", &[200]))?;
            Ok(p)
        });
        match started {
            Ok(p) => {
                targets.push(Target {
                    name: "haproxy".into(),
                    label: "haproxy".into(),
                    kind: Kind::Peer,
                    port: ports.haproxy,
                    pids: vec![p.pid],
                });
                procs_all.push(p);
            }
            Err(e) => {
                let msg = format!("haproxy failed to start: {e:#}");
                eprintln!("{msg}");
                skipped_targets.insert("haproxy".into(), msg);
            }
        }
    } else {
        let why = if args.no_peers {
            "peers disabled"
        } else {
            "haproxy is not installed"
        };
        skipped_targets.insert("haproxy".into(), why.into());
    }

    // ---- OIDC credentials: one login per gateway, one access token for all ----
    let gateway_targets: Vec<(String, u16)> = targets
        .iter()
        .filter(|t| t.kind == Kind::Gateway)
        .map(|t| (t.name.clone(), t.port))
        .collect();
    let oidc_creds = match &idp {
        Some(idp) => rt.block_on(oidc::mint(idp, &gateway_targets)),
        None => gateway_targets
            .iter()
            .map(|(name, _)| (name.clone(), oidc::Creds::skipped(&no_oidc)))
            .collect(),
    };

    // ---- cases ----
    let mut cases = all_cases(&variants, &args.variant_cases, &oidc_creds);
    for c in &mut cases {
        if c.skip.is_some() {
            continue;
        }
        if let Some(why) = skipped_targets.get(&c.target) {
            c.skip = Some(why.clone());
        } else if !args.only.is_empty() && !args.only.iter().any(|o| selects(o, &c.base)) {
            c.skip = Some("not selected (--only)".into());
            // A setup failure (OIDC login) does not matter for a path that does not run.
            c.error = None;
        }
    }
    let port_of = |t: &str| targets.iter().find(|x| x.name == t).map(|x| x.port);
    for c in cases
        .iter_mut()
        .filter(|c| c.skip.is_none() && c.error.is_none())
    {
        let Some(port) = port_of(&c.target) else {
            c.skip = Some(format!("target {} not running", c.target));
            continue;
        };
        match rt.block_on(client::once(port, &c.req, Duration::from_secs(10))) {
            Ok(r) => {
                if let Err(e) = preflight_check(c, &r) {
                    c.error = Some(format!("preflight: {e:#}"));
                }
            }
            Err(e) => c.error = Some(format!("preflight: {e:#}")),
        }
        match &c.error {
            Some(e) => eprintln!("FAIL {:<22} {e}", c.id),
            None => eprintln!("ok   {:<22} {}", c.id, c.label),
        }
    }

    let mut scripts = BTreeMap::new();
    if matches!(gen, LoadGen::Wrk) {
        for c in cases
            .iter()
            .filter(|c| c.skip.is_none() && c.error.is_none())
        {
            let id = c.id.replace(':', "-");
            scripts.insert(c.id.clone(), wrk::script(&work, &id, &c.req)?);
        }
    }
    let load = Load {
        gen,
        wrk: wrk::WrkOpts {
            threads: args.threads,
            connections: args.connections,
            cpu: pin.then_some(args.client_cpu),
        },
        connections: args.connections,
        scripts: &scripts,
    };

    // ---- load ----
    let active: Vec<usize> = (0..cases.len())
        .filter(|&i| cases[i].skip.is_none() && cases[i].error.is_none())
        .collect();
    let tick_us = 1e6 / procs::clk_tck() as f64;
    let mut rounds: BTreeMap<usize, Vec<Round>> = BTreeMap::new();
    if args.warmup > 0.0 {
        eprintln!("warm-up: {} paths x {} s", active.len(), args.warmup);
        for &i in &active {
            let c = &cases[i];
            let port = port_of(&c.target).unwrap_or_default();
            if let Err(e) = load.run(&rt, c, port, Duration::from_secs_f64(args.warmup)) {
                eprintln!("warm-up {}: {e:#}", c.id);
            }
        }
    }
    for r in 0..args.rounds {
        eprintln!("round {}/{}", r + 1, args.rounds);
        let n = active.len().max(1);
        let order: Vec<usize> = (0..active.len())
            .map(|k| active[(k + r * n / args.rounds.max(1)) % n])
            .collect();
        for i in order {
            for p in &mut procs_all {
                procs::ensure_running(p)?;
            }
            for l in &gateway_logs {
                procs::cap_log(l, 32 << 20);
            }
            let c = &cases[i];
            let Some(t) = targets.iter().find(|t| t.name == c.target) else {
                continue;
            };
            let p0 = procs::cpu_ticks_all(&t.pids);
            let u0 = procs::cpu_ticks(upstream_pid).unwrap_or(0);
            let res = load.run(&rt, c, t.port, Duration::from_secs_f64(args.duration));
            let p1 = procs::cpu_ticks_all(&t.pids);
            let u1 = procs::cpu_ticks(upstream_pid).unwrap_or(0);
            match res {
                Ok(s) => {
                    let cpu = if t.pids.is_empty() || s.requests == 0 {
                        String::from("-")
                    } else {
                        format!("{:.1} µs", (p1 - p0) as f64 * tick_us / s.requests as f64)
                    };
                    eprintln!(
                        "  {:<22} {:>9.0} req/s  p99 {:>7.3} ms  cpu/req {cpu}{}",
                        c.id,
                        s.requests as f64 / s.duration_s.max(1e-9),
                        s.hist.value_at_quantile(0.99) as f64 / 1000.0,
                        if s.status_errors + s.io_errors > 0 {
                            format!("  ERRORS {} status, {} io", s.status_errors, s.io_errors)
                        } else if s.reconnects > 0 {
                            format!("  ({} responses closed the connection)", s.reconnects)
                        } else {
                            String::new()
                        }
                    );
                    rounds.entry(i).or_default().push(Round {
                        sample: s,
                        proxy_ticks: p1.saturating_sub(p0),
                        upstream_ticks: u1.saturating_sub(u0),
                    });
                }
                Err(e) => {
                    eprintln!("  {:<22} failed: {e:#}", c.id);
                    cases[i].error.get_or_insert(format!("load: {e:#}"));
                }
            }
        }
    }

    // ---- memory ----
    let idle_req = |t: &Target| -> Req {
        let cred = match t.name.as_str() {
            "nginx-auth" => Cred::NamedKey,
            n if n.starts_with("gw") => Cred::NamedKey,
            _ => Cred::BackendKey,
        };
        ReqKind::Sandbox.build(&cred)
    };
    let mut memory = Vec::new();
    for t in targets
        .iter()
        .filter(|t| t.kind != Kind::Direct && t.name != "nginx-auth")
    {
        // nginx-auth is the same nginx process as nginx.
        let pids = t.pids.clone();
        let peak = procs::status_kb_all(&pids, "VmHWM");
        let before = procs::status_kb_all(&pids, "VmRSS");
        let req = idle_req(t);
        let res = rt.block_on(async {
            let conns = client::idle_connections(t.port, &req, args.idle_connections).await?;
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let with = procs::status_kb_all(&pids, "VmRSS");
            let peak_with = procs::status_kb_all(&pids, "VmHWM");
            drop(conns);
            Ok::<_, anyhow::Error>((with, peak_with))
        });
        let (with, peak_after, err) = match res {
            Ok((w, p)) => (Some(w), p, None),
            Err(e) => (
                None,
                procs::status_kb_all(&pids, "VmHWM"),
                Some(format!("{e:#}")),
            ),
        };
        memory.push(report::Memory {
            server: t.label.clone(),
            target: t.name.clone(),
            processes: pids.len(),
            peak_rss_kb_after_load: peak,
            rss_kb_before_idle: before,
            rss_kb_with_idle: with,
            peak_rss_kb_overall: peak_after,
            idle_connections: args.idle_connections,
            error: err,
        });
    }

    for p in procs_all.iter_mut().rev() {
        p.stop(Duration::from_secs(3));
    }
    if let Some(mut idp) = idp.take() {
        idp.stop();
        let _ = std::fs::copy(&idp.log_path, work.join("idp.log"));
    }

    // ---- report ----
    let machine = report::machine(&repo);
    let settings = report::Settings {
        mode: if args.smoke { "smoke" } else { "full" }.into(),
        loadgen: match gen {
            LoadGen::Wrk => format!("wrk -t{} -c{} (keep-alive)", args.threads, args.connections),
            LoadGen::Builtin => format!(
                "built-in closed loop, {} keep-alive connections",
                args.connections
            ),
        },
        duration_s: args.duration,
        rounds: args.rounds,
        warmup_s: args.warmup,
        pinning: if pin {
            format!(
                "servers on CPU {}, load generator on CPU {}",
                args.server_cpu, args.client_cpu
            )
        } else {
            "none".into()
        },
        gateway_binary: gatehouse.display().to_string(),
        gateway_threads: args.gateway_threads,
        gateway_log: args.gateway_log.clone(),
        variants: variant_bins
            .iter()
            .map(|(n, p, l)| format!("{n} = {} (RUST_LOG={l})", p.display()))
            .collect(),
        notes,
        elapsed_s: 0.0,
    };
    let criterion_dir = args
        .criterion_dir
        .clone()
        .unwrap_or_else(|| repo.join("target/criterion"));
    let micro = if args.smoke {
        Vec::new()
    } else {
        report::criterion(&criterion_dir)
    };
    let mut rep = report::build(
        &cases, &targets, &rounds, tick_us, memory, machine, settings, micro,
    );
    rep.settings.elapsed_s = started.elapsed().as_secs_f64();
    std::fs::create_dir_all(&out)?;
    let md = report::markdown(&rep);
    std::fs::write(out.join("report.md"), &md)?;
    std::fs::write(out.join("report.json"), serde_json::to_vec_pretty(&rep)?)?;
    println!("{md}");
    eprintln!(
        "wrote {}/report.md and report.json in {:.0} s",
        out.display(),
        rep.settings.elapsed_s
    );

    let failed: Vec<&Case> = cases.iter().filter(|c| c.error.is_some()).collect();
    let errors = rep
        .paths
        .iter()
        .filter(|p| p.status_errors + p.io_errors > 0)
        .count();
    let mem_err = rep.memory.iter().filter(|m| m.error.is_some()).count();
    if !failed.is_empty() || errors > 0 || mem_err > 0 {
        for c in failed {
            eprintln!("FAILED {}: {}", c.id, c.error.as_deref().unwrap_or(""));
        }
        bail!("{} path(s) failed, {errors} had request errors, {mem_err} memory measurement(s) failed", cases.iter().filter(|c| c.error.is_some()).count());
    }
    if args.smoke && rep.paths.iter().all(|p| p.requests == 0) {
        bail!("smoke run completed no request");
    }
    if args.smoke {
        // The OIDC paths must run in the smoke too (node and npm are there in `make test`).
        for p in rep
            .paths
            .iter()
            .filter(|p| SMOKE_OIDC.contains(&p.id.as_str()))
        {
            match &p.skipped {
                Some(why) if why.starts_with("not selected") => {}
                Some(why) => bail!("smoke: {} was skipped: {why}", p.id),
                None if p.requests == 0 => bail!("smoke: {} completed no request", p.id),
                None => {}
            }
        }
    }
    Ok(())
}

/// Starts bench-auth and nginx; returns the processes, nginx's pids (master + workers)
/// and the auth service's pid.
fn start_nginx(
    rt: &tokio::runtime::Runtime,
    env: &Env,
    ports: configs::Ports,
    auth_bin: &Path,
) -> Result<(Vec<Proc>, Vec<u32>, u32)> {
    let mut auth = Proc::spawn(
        "bench-auth",
        auth_bin,
        &["--listen".into(), format!("127.0.0.1:{}", ports.auth)],
        &[],
        env.cpu(),
        env.work.join("auth.log"),
        "KILL",
    )?;
    rt.block_on(wait_ready(&mut auth, ports.auth, "/auth", &[401]))?;
    let as_root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    let conf = env.work.join("nginx.conf");
    std::fs::write(&conf, configs::nginx(&env.work, ports, as_root))?;
    let nginx = procs::which("nginx").context("nginx")?;
    let mut p = Proc::spawn(
        "nginx",
        &nginx,
        &[
            "-p".into(),
            env.work.display().to_string(),
            "-c".into(),
            conf.display().to_string(),
            "-e".into(),
            env.work.join("nginx-error.log").display().to_string(),
        ],
        &[],
        env.cpu(),
        env.work.join("nginx.log"),
        "TERM",
    )?;
    rt.block_on(wait_ready(&mut p, ports.nginx, "/health", &[200]))?;
    let mut pids = vec![p.pid];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let kids = procs::children(p.pid);
        if !kids.is_empty() {
            pids.extend(kids);
            break;
        }
        if Instant::now() > deadline {
            bail!("nginx started no worker");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let auth_pid = auth.pid;
    Ok((vec![auth, p], pids, auth_pid))
}
