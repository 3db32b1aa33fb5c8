//! The report as Markdown.

use super::{PathResult, Report};

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
    let mut s = String::new();
    header(&mut s, r);
    paths(&mut s, r);
    goals(&mut s, r);
    peers(&mut s, r);
    memory(&mut s, r);
    not_measured(&mut s, r);
    micro(&mut s, r);
    variants(&mut s, r);
    s.push_str(&format!(
        "\nRelease profile: `{}`. Wall time of bench-run: {:.0} s.\n",
        r.machine.release_profile, r.settings.elapsed_s
    ));
    s
}

/// The title, the machine and how the run was set up.
fn header(s: &mut String, r: &Report) {
    let m = &r.machine;
    let st = &r.settings;
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
         Upstream: `bench-upstream` (fixed cost, one thread). Peers: {}; {}; {}; load generator {}. \
         Gateway: `{}` with `server.threads = {}`, `RUST_LOG={}`. Proxy CPU is user + system time from `/proc/<pid>/stat` \
         per completed request (nginx: master + worker; nginx auth_request: nginx + `bench-auth`, or nginx + oauth2-proxy).\n\n",
        st.loadgen, st.rounds, st.duration_s, st.warmup_s, st.pinning, m.nginx, m.haproxy, st.oauth2_proxy, m.wrk,
        st.gateway_binary, st.gateway_threads, st.gateway_log
    ));
}

/// "Paths": the results table, and the gateway paths against nginx on the same request.
fn paths(s: &mut String, r: &Report) {
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
}

/// "Targets (issue 6)", with issue 19's memory target.
fn goals(s: &mut String, r: &Report) {
    s.push_str("\n## Targets (issue 6)\n\n| target | measured | result |\n|---|---|---|\n");
    for g in &r.goals {
        s.push_str(&format!("| {} | {} | {} |\n", g.goal, g.measured, g.status));
    }
}

/// "Peers, floors and ceiling (issue 19)": each comparison, both sides and the ratio.
fn peers(s: &mut String, r: &Report) {
    if r.peers.is_empty() {
        return;
    }
    s.push_str("\n## Peers, floors and ceiling (issue 19)\n\n");
    if r.peers.iter().all(|c| c.not_measured.is_some()) {
        s.push_str("None measured: the peers did not run (see \"Not measured\").\n");
        return;
    }
    s.push_str("Each line compares two paths of this run (path vs reference; ratios are path / reference). \
        Proxy CPU counts every process of the proxy (nginx auth_request + oauth2-proxy: nginx master, worker and oauth2-proxy).\n\n");
    s.push_str(
        "| comparison | req/s | ratio | CPU/req | ratio | p99 | ratio | issue 19 target |\n",
    );
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---|\n");
    for c in &r.peers {
        let what = format!("{}: `{}` vs `{}`", c.what, c.path, c.reference);
        if let Some(why) = &c.not_measured {
            let target = c.target.as_deref().unwrap_or("");
            s.push_str(&format!(
                "| {what} | not measured: {why} | | | | | | {target} |\n"
            ));
            continue;
        }
        let pair = |a: Option<f64>, b: Option<f64>, f: &dyn Fn(f64) -> String| match (a, b) {
            (Some(a), Some(b)) => format!("{} vs {}", f(a), f(b)),
            (Some(a), None) => format!("{} vs -", f(a)),
            (None, Some(b)) => format!("- vs {}", f(b)),
            (None, None) => "-".into(),
        };
        let target = match (&c.target, &c.status) {
            (Some(t), Some(st)) => format!("{t}: **{st}**"),
            (Some(t), None) => t.clone(),
            _ => String::new(),
        };
        s.push_str(&format!(
            "| {what} | {} | {} | {} | {} | {} | {} | {target} |\n",
            pair(c.rps, c.reference_rps, &|v| format!("{v:.0}")),
            f_ratio(c.rps_ratio()),
            pair(c.cpu_us_per_req, c.reference_cpu_us_per_req, &|v| format!(
                "{v:.1} µs"
            )),
            f_ratio(c.cpu_ratio()),
            pair(c.p99_ms, c.reference_p99_ms, &f_ms),
            f_ratio(c.p99_ratio()),
        ));
    }
}

/// "Memory": each proxy fresh and after the load, with the idle connections.
fn memory(s: &mut String, r: &Report) {
    s.push_str(
        "\n## Memory\n\nFresh: after one checked request per path, before any load. After the load: the same \
        processes after every load round (the gateway's bounded caches then hold what the load made).\n\n\
        | server | RSS fresh | fresh, with idle keep-alive connections | per connection | peak RSS after load | RSS idle after load | after load, with idle connections | per connection |\n\
        |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let per = |before: u64, with: Option<u64>, n: usize| {
        with.filter(|_| n > 0)
            .map(|kb| format!("{:.1} KB", (kb as f64 - before as f64) / n as f64))
            .unwrap_or_else(|| "-".into())
    };
    for mem in &r.memory {
        let n = mem.idle_connections;
        let fresh_with = mem
            .fresh_rss_kb_with_idle
            .map(|kb| format!("{} ({n} conns)", f_mb(kb)))
            .unwrap_or_else(|| "-".into());
        let fresh_per = mem
            .fresh_rss_kb_before_idle
            .map(|b| per(b, mem.fresh_rss_kb_with_idle, n))
            .unwrap_or_else(|| "-".into());
        let with = mem
            .rss_kb_with_idle
            .map(|kb| format!("{} ({n} conns)", f_mb(kb)))
            .unwrap_or_else(|| format!("failed: {}", mem.error.clone().unwrap_or_default()));
        s.push_str(&format!(
            "| {} | {} | {fresh_with} | {fresh_per} | {} | {} | {with} | {} |\n",
            mem.server,
            mem.fresh_rss_kb_before_idle
                .map(f_mb)
                .unwrap_or_else(|| "-".into()),
            f_mb(mem.peak_rss_kb_after_load),
            f_mb(mem.rss_kb_before_idle),
            per(mem.rss_kb_before_idle, mem.rss_kb_with_idle, n),
        ));
    }
}

/// "Not measured": skipped and failed paths, and the run's notes (when there are any).
fn not_measured(s: &mut String, r: &Report) {
    let st = &r.settings;
    let skipped: Vec<&PathResult> = r.paths.iter().filter(|p| p.skipped.is_some()).collect();
    let failed: Vec<&PathResult> = r.paths.iter().filter(|p| p.error.is_some()).collect();
    if skipped.is_empty() && failed.is_empty() && st.notes.is_empty() {
        return;
    }
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

/// "Micro-benchmarks" (when there are criterion results).
fn micro(s: &mut String, r: &Report) {
    if r.micro.is_empty() {
        return;
    }
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

/// "Variants" (when there are any).
fn variants(s: &mut String, r: &Report) {
    if r.settings.variants.is_empty() {
        return;
    }
    s.push_str("\n## Variants\n\n");
    for v in &r.settings.variants {
        s.push_str(&format!("- {v}\n"));
    }
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
