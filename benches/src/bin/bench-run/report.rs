//! Aggregating rounds into per-path results, checking issue 6's targets, and writing
//! `report.json` and `report.md`.

use crate::client::new_hist;
use crate::{Case, Kind, ReqKind, Round, Target};
use serde::Serialize;
use std::collections::BTreeMap;
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
    pub memory: Vec<Memory>,
    pub micro: Vec<Micro>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn ratios(p: &PathResult, r: &PathResult) -> Option<Ratios> {
    if p.id == r.id || p.requests == 0 || r.requests == 0 || r.p99_ms <= 0.0 {
        return None;
    }
    Some(Ratios {
        reference: r.id.clone(),
        rps: p.rps / r.rps,
        p99: p.p99_ms / r.p99_ms,
        cpu: match (p.proxy_cpu_us_per_req, r.proxy_cpu_us_per_req) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        },
    })
}

fn nginx_case_for(k: ReqKind) -> &'static str {
    match k {
        ReqKind::Sandbox => "nginx",
        ReqKind::List20 => "nginx-list20",
        ReqKind::List200 => "nginx-list200",
        ReqKind::Create => "nginx-create",
        ReqKind::Proxy1M => "nginx-proxy-1m",
    }
}

/// Aggregates the rounds of every case.
#[allow(clippy::too_many_arguments)]
pub fn build(
    cases: &[Case],
    targets: &[Target],
    rounds: &BTreeMap<usize, Vec<Round>>,
    tick_us: f64,
    memory: Vec<Memory>,
    machine: Machine,
    settings: Settings,
    micro: Vec<Micro>,
) -> Report {
    let mut paths: Vec<PathResult> = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let rs = rounds.get(&i).map(Vec::as_slice).unwrap_or(&[]);
        let mut hist = match new_hist() {
            Ok(h) => h,
            Err(_) => continue,
        };
        let (mut req, mut dur, mut bytes, mut se, mut io, mut rc, mut pt, mut ut) =
            (0u64, 0f64, 0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        let mut per_round = Vec::new();
        for r in rs {
            let _ = hist.add(&r.sample.hist);
            req += r.sample.requests;
            dur += r.sample.duration_s;
            bytes += r.sample.bytes;
            se += r.sample.status_errors;
            io += r.sample.io_errors;
            rc += r.sample.reconnects;
            pt += r.proxy_ticks;
            ut += r.upstream_ticks;
            per_round.push(r.sample.requests as f64 / r.sample.duration_s.max(1e-9));
        }
        let has_proxy = targets
            .iter()
            .find(|t| t.name == c.target)
            .is_some_and(|t| t.kind != Kind::Direct && !t.pids.is_empty());
        let per_req = |ticks: u64| {
            if req == 0 {
                0.0
            } else {
                ticks as f64 * tick_us / req as f64
            }
        };
        paths.push(PathResult {
            id: c.id.clone(),
            label: c.label.clone(),
            target: c.target.clone(),
            request: c.request.name().to_string(),
            gateway: c.gateway,
            skipped: c.skip.clone(),
            error: c.error.clone(),
            rounds: rs.len(),
            requests: req,
            duration_s: dur,
            rps: if dur > 0.0 { req as f64 / dur } else { 0.0 },
            rps_per_round: per_round,
            p50_ms: ms(hist.value_at_quantile(0.5)),
            p90_ms: ms(hist.value_at_quantile(0.9)),
            p99_ms: ms(hist.value_at_quantile(0.99)),
            p999_ms: ms(hist.value_at_quantile(0.999)),
            max_ms: ms(hist.max()),
            bytes_per_response: if req > 0 {
                bytes as f64 / req as f64
            } else {
                0.0
            },
            status_errors: se,
            io_errors: io,
            reconnects: rc,
            proxy_cpu_us_per_req: (has_proxy && req > 0).then(|| per_req(pt)),
            upstream_cpu_us_per_req: per_req(ut),
            vs_nginx: None,
            vs_nginx_same_request: None,
        });
    }
    let snapshot = paths.clone();
    let find = |id: &str| snapshot.iter().find(|p| p.id == id && p.requests > 0);
    let base = find(BASELINE);
    let kinds: Vec<ReqKind> = cases.iter().map(|c| c.request).collect();
    for (p, k) in paths.iter_mut().zip(kinds) {
        if let Some(b) = base {
            p.vs_nginx = ratios(p, b);
        }
        let same = nginx_case_for(k);
        if same != BASELINE {
            if let Some(r) = find(same) {
                p.vs_nginx_same_request = ratios(p, r);
            }
        }
    }
    let goals = goals(&paths, &memory);
    Report {
        machine,
        settings,
        paths,
        goals,
        memory,
        micro,
    }
}

fn goals(paths: &[PathResult], memory: &[Memory]) -> Vec<Goal> {
    let find = |id: &str| paths.iter().find(|p| p.id == id && p.requests > 0);
    let na = |goal: &str, why: String| Goal {
        goal: goal.into(),
        measured: why,
        status: "n/a".into(),
    };
    let verdict = |ok: bool| if ok { "pass" } else { "fail" }.to_string();
    let mut out = Vec::new();
    let nginx = find(BASELINE);

    let g = "API-key path (named key) ≥ nginx proxy_pass req/s, p99 no worse";
    match (find("gw-apikey"), nginx) {
        (Some(k), Some(n)) => out.push(Goal {
            goal: g.into(),
            measured: format!(
                "{:.0} vs {:.0} req/s ({:.2}x), p99 {:.3} vs {:.3} ms",
                k.rps,
                n.rps,
                k.rps / n.rps,
                k.p99_ms,
                n.p99_ms
            ),
            status: verdict(k.rps >= n.rps && k.p99_ms <= n.p99_ms),
        }),
        _ => out.push(na(g, "gw-apikey or nginx did not run".into())),
    }
    for (id, name) in [("gw-session", "session-cookie"), ("gw-jwt", "bearer-JWT")] {
        let g = format!("{name} path ≥ 0.9x nginx proxy_pass req/s");
        match (find(id), nginx) {
            (Some(s), Some(n)) => out.push(Goal {
                goal: g,
                measured: format!("{:.0} vs {:.0} req/s ({:.2}x)", s.rps, n.rps, s.rps / n.rps),
                status: verdict(s.rps >= 0.9 * n.rps),
            }),
            (s, _) => {
                let path = paths.iter().find(|p| p.id == id);
                let why = match (s, path) {
                    (Some(_), _) => "nginx did not run".to_string(),
                    (None, Some(p)) if p.skipped.is_some() => {
                        format!("skipped: {}", p.skipped.as_deref().unwrap_or_default())
                    }
                    (None, Some(p)) if p.error.is_some() => {
                        format!("failed: {}", p.error.as_deref().unwrap_or_default())
                    }
                    _ => format!("{id} did not run"),
                };
                out.push(na(&g, why));
            }
        }
    }
    let g = "20-item list filtering ≥ nginx auth_request req/s";
    match (find("gw-list20"), find("nginx-auth")) {
        (Some(l), Some(a)) => out.push(Goal {
            goal: g.into(),
            measured: format!("{:.0} vs {:.0} req/s ({:.2}x)", l.rps, a.rps, l.rps / a.rps),
            status: verdict(l.rps >= a.rps),
        }),
        _ => out.push(na(g, "gw-list20 or nginx-auth did not run".into())),
    }
    let g = "200-item list filtering ≤ 3x the CPU/request of the API-key path";
    match (
        find("gw-list200").and_then(|p| p.proxy_cpu_us_per_req),
        find("gw-apikey").and_then(|p| p.proxy_cpu_us_per_req),
    ) {
        (Some(l), Some(k)) if k > 0.0 => out.push(Goal {
            goal: g.into(),
            measured: format!("{l:.1} vs {k:.1} µs ({:.2}x)", l / k),
            status: verdict(l <= 3.0 * k),
        }),
        _ => out.push(na(g, "gw-list200 or gw-apikey did not run".into())),
    }
    let g = "gateway RSS < 64 MB with 1,000 idle keep-alive connections";
    match memory.iter().find(|m| m.target == "gw") {
        Some(m) => match m.rss_kb_with_idle {
            Some(kb) => out.push(Goal {
                goal: g.into(),
                measured: format!(
                    "{:.1} MB with {} idle connections",
                    kb as f64 / 1024.0,
                    m.idle_connections
                ),
                status: if m.idle_connections >= 1000 {
                    verdict((kb as f64) < 64.0 * 1024.0)
                } else {
                    "n/a".into()
                },
            }),
            None => out.push(na(g, m.error.clone().unwrap_or_default())),
        },
        None => out.push(na(g, "not measured".into())),
    }
    out
}

fn f_ms(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

fn f_ratio(v: Option<f64>) -> String {
    v.map(|r| format!("{r:.2}x")).unwrap_or_else(|| "-".into())
}

fn f_mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

/// The results table (also pasted into benches/README.md).
pub fn table(r: &Report) -> String {
    let mut s = String::new();
    s.push_str("| path | request | req/s | p50 | p90 | p99 | p99.9 | proxy CPU/req | req/s vs nginx | p99 vs nginx | CPU vs nginx |\n");
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for p in &r.paths {
        if p.skipped.is_some() || p.requests == 0 {
            continue;
        }
        let v = p.vs_nginx.as_ref();
        let name = if p.gateway {
            format!("**{}** `{}`", p.label, p.id)
        } else {
            format!("{} `{}`", p.label, p.id)
        };
        let mut row = format!(
            "| {name} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} |",
            p.request,
            p.rps,
            f_ms(p.p50_ms),
            f_ms(p.p90_ms),
            f_ms(p.p99_ms),
            f_ms(p.p999_ms),
            p.proxy_cpu_us_per_req
                .map(|c| format!("{c:.1} µs"))
                .unwrap_or_else(|| "-".into()),
            f_ratio(v.map(|v| v.rps)),
            f_ratio(v.map(|v| v.p99)),
            f_ratio(v.and_then(|v| v.cpu)),
        );
        if p.status_errors + p.io_errors > 0 {
            row.push_str(&format!(
                " **{} status / {} I/O errors**",
                p.status_errors, p.io_errors
            ));
        }
        if p.reconnects > 0 {
            row.push_str(&format!(
                " (keep-alive lost: {:.0}% of responses closed the connection)",
                100.0 * p.reconnects as f64 / p.requests.max(1) as f64
            ));
        }
        s.push_str(&row);
        s.push('\n');
    }
    s
}

/// The whole report as Markdown.
pub fn markdown(r: &Report) -> String {
    let m = &r.machine;
    let st = &r.settings;
    let mut s = String::new();
    s.push_str("# Gatehouse proxy-latency benchmark\n\n");
    s.push_str(&format!(
        "Run {} ({} mode) on {}, {} cores, {:.0} GB RAM, {} ({}), kernel {}; {}; git {}.\n\n",
        m.date,
        st.mode,
        m.cpu,
        m.cores,
        m.memory_gb,
        m.os,
        m.virtualization,
        m.kernel,
        m.rustc,
        m.git
    ));
    s.push_str(&format!(
        "Load: {}, {} round(s) x {} s per path, paths alternating within each round, after a {} s warm-up per path. Pinning: {}. \
         Upstream: `bench-upstream` (fixed cost, one thread). Peers: {}; {}; load generator {}. \
         Gateway: `{}` with `server.threads = {}`, `RUST_LOG={}`. Proxy CPU is user + system time from `/proc/<pid>/stat` \
         per completed request (nginx: master + worker; nginx auth_request: nginx + `bench-auth`).\n\n",
        st.loadgen, st.rounds, st.duration_s, st.warmup_s, st.pinning, m.nginx, m.haproxy, m.wrk,
        st.gateway_binary, st.gateway_threads, st.gateway_log
    ));
    s.push_str("## Paths\n\n\"vs nginx\" columns compare with nginx `proxy_pass` of the 1.6 KB sandbox GET in this run (`nginx`).\n\n");
    s.push_str(&table(r));
    let same: Vec<&PathResult> = r
        .paths
        .iter()
        .filter(|p| p.gateway && p.vs_nginx_same_request.is_some())
        .collect();
    if !same.is_empty() {
        s.push_str("\nGateway paths against nginx `proxy_pass` of the same request:\n\n");
        s.push_str("| path | reference | req/s | p99 | CPU/req |\n|---|---|---:|---:|---:|\n");
        for p in same {
            if let Some(v) = &p.vs_nginx_same_request {
                s.push_str(&format!(
                    "| `{}` | `{}` | {} | {} | {} |\n",
                    p.id,
                    v.reference,
                    f_ratio(Some(v.rps)),
                    f_ratio(Some(v.p99)),
                    f_ratio(v.cpu)
                ));
            }
        }
    }
    s.push_str("\n## Targets (issue 6)\n\n| target | measured | result |\n|---|---|---|\n");
    for g in &r.goals {
        s.push_str(&format!("| {} | {} | {} |\n", g.goal, g.measured, g.status));
    }
    s.push_str("\n## Memory\n\n| server | peak RSS after load | RSS idle | RSS with idle keep-alive connections | per connection |\n|---|---:|---:|---:|---:|\n");
    for mem in &r.memory {
        let with = mem
            .rss_kb_with_idle
            .map(|kb| format!("{} ({} conns)", f_mb(kb), mem.idle_connections))
            .unwrap_or_else(|| format!("failed: {}", mem.error.clone().unwrap_or_default()));
        let per = mem
            .rss_kb_with_idle
            .filter(|_| mem.idle_connections > 0)
            .map(|kb| {
                format!(
                    "{:.1} KB",
                    (kb as f64 - mem.rss_kb_before_idle as f64) / mem.idle_connections as f64
                )
            })
            .unwrap_or_else(|| "-".into());
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            mem.server,
            f_mb(mem.peak_rss_kb_after_load),
            f_mb(mem.rss_kb_before_idle),
            with,
            per
        ));
    }
    let skipped: Vec<&PathResult> = r.paths.iter().filter(|p| p.skipped.is_some()).collect();
    let failed: Vec<&PathResult> = r.paths.iter().filter(|p| p.error.is_some()).collect();
    if !skipped.is_empty() || !failed.is_empty() || !st.notes.is_empty() {
        s.push_str("\n## Not measured\n\n");
        for p in skipped {
            s.push_str(&format!(
                "- `{}` ({}): {}\n",
                p.id,
                p.label,
                p.skipped.as_deref().unwrap_or("")
            ));
        }
        for p in failed {
            s.push_str(&format!(
                "- `{}` FAILED: {}\n",
                p.id,
                p.error.as_deref().unwrap_or("")
            ));
        }
        for n in &st.notes {
            s.push_str(&format!("- {n}\n"));
        }
    }
    if !r.micro.is_empty() {
        s.push_str("\n## Micro-benchmarks (criterion, this machine)\n\n| benchmark | mean | median |\n|---|---:|---:|\n");
        for b in &r.micro {
            s.push_str(&format!(
                "| `{}` | {} | {} |\n",
                b.id,
                f_ns(b.mean_ns),
                f_ns(b.median_ns)
            ));
        }
    }
    if !st.variants.is_empty() {
        s.push_str("\n## Variants\n\n");
        for v in &st.variants {
            s.push_str(&format!("- {v}\n"));
        }
    }
    s.push_str(&format!(
        "\nRelease profile: `{}`. Wall time of bench-run: {:.0} s.\n",
        m.release_profile, st.elapsed_s
    ));
    s
}

fn f_ns(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1000.0 {
        format!("{:.2} µs", ns / 1000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Criterion's latest estimates under `dir` (`*/new/estimates.json`).
pub fn criterion(dir: &Path) -> Vec<Micro> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if !p.is_dir() {
                continue;
            }
            if p.file_name().is_some_and(|n| n == "new") {
                let est: Option<serde_json::Value> = std::fs::read(p.join("estimates.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                let bench: Option<serde_json::Value> = std::fs::read(p.join("benchmark.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                if let (Some(est), Some(bench)) = (est, bench) {
                    let id = bench["full_id"].as_str().unwrap_or("?").to_string();
                    out.push(Micro {
                        id,
                        mean_ns: est["mean"]["point_estimate"].as_f64().unwrap_or(0.0),
                        median_ns: est["median"]["point_estimate"].as_f64().unwrap_or(0.0),
                    });
                }
            } else if p
                .file_name()
                .is_some_and(|n| n != "report" && n != "base" && n != "change")
            {
                stack.push(p);
            }
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// Facts about this machine and build.
pub fn machine(repo: &Path) -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|v| v.split(':').nth(1))
        })
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem_kb: f64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|s| s.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into());
    let virt = if cpuinfo.contains(" hypervisor") {
        "virtual machine".to_string()
    } else {
        "bare metal".to_string()
    };
    let v = |p: &str, a: &[&str]| {
        crate::procs::version_of(p, a).unwrap_or_else(|| format!("{p} not installed"))
    };
    let git = {
        let rev = std::process::Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .map(|o| first_line(&String::from_utf8_lossy(&o.stdout)))
            .unwrap_or_default();
        let dirty = std::process::Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["status", "--porcelain", "--untracked-files=no"])
            .output()
            .ok()
            .is_some_and(|o| !o.stdout.is_empty());
        if rev.is_empty() {
            "unknown".into()
        } else if dirty {
            format!("{rev} (with uncommitted changes)")
        } else {
            rev
        }
    };
    let cargo = read(&repo.join("Cargo.toml").display().to_string());
    let mut profile = Vec::new();
    let mut inside = false;
    for l in cargo.lines() {
        let t = l.trim();
        if t.starts_with('[') {
            inside = t == "[profile.release]";
            continue;
        }
        if inside && !t.is_empty() && !t.starts_with('#') {
            profile.push(t.to_string());
        }
    }
    Machine {
        cpu,
        cores,
        memory_gb: mem_kb / 1024.0 / 1024.0,
        os,
        kernel: first_line(&read("/proc/sys/kernel/osrelease")),
        virtualization: virt,
        rustc: v("rustc", &["-V"]),
        nginx: v("nginx", &["-v"]),
        haproxy: v("haproxy", &["-v"]),
        wrk: v("wrk", &["-v"]),
        git,
        release_profile: profile.join(", "),
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}
