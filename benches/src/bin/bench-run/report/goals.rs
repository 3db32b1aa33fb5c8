//! Checking issue 6's targets (and issue 19's memory target) against the measured paths
//! and memory.

use super::{Goal, Memory, PathResult, BASELINE};

/// Each of issue 6's targets and issue 19's memory target: pass, fail, or n/a (with why).
pub(super) fn goals(paths: &[PathResult], memory: &[Memory]) -> Vec<Goal> {
    let find = |id: &str| paths.iter().find(|p| p.id == id && p.requests > 0);
    let na = |goal: &str, why: String| Goal {
        goal: goal.into(),
        measured: why,
        status: "n/a".into(),
    };
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
    let gw = memory.iter().find(|m| m.target == "gw");
    out.push(rss_goal(
        "gateway RSS < 64 MB with 1,000 idle keep-alive connections",
        gw,
        |m| {
            m.rss_kb_with_idle
                .ok_or_else(|| m.error.clone().unwrap_or_default())
        },
        |mb| mb < 64.0,
    ));
    out.push(rss_goal(
        "gateway RSS ≤ 32 MB with 1,000 idle keep-alive connections (issue 19; fresh process)",
        gw,
        |m| {
            m.fresh_rss_kb_with_idle
                .ok_or_else(|| "the fresh measurement failed".to_string())
        },
        |mb| mb <= 32.0,
    ));
    out
}

/// A memory target on the gateway `m`: the RSS `rss` picks (kB, or why it is missing)
/// passes when `within` its megabytes; n/a with fewer than 1,000 idle connections.
fn rss_goal(
    goal: &str,
    m: Option<&Memory>,
    rss: impl Fn(&Memory) -> Result<u64, String>,
    within: impl Fn(f64) -> bool,
) -> Goal {
    let (measured, status) = match m.map(|m| (m, rss(m))) {
        Some((m, Ok(kb))) => {
            let mb = kb as f64 / 1024.0;
            let status = if m.idle_connections >= 1000 {
                verdict(within(mb))
            } else {
                "n/a".into()
            };
            (
                format!("{mb:.1} MB with {} idle connections", m.idle_connections),
                status,
            )
        }
        Some((_, Err(why))) => (why, "n/a".into()),
        None => ("not measured".to_string(), "n/a".into()),
    };
    Goal {
        goal: goal.into(),
        measured,
        status,
    }
}

/// A target's result: pass or fail.
fn verdict(ok: bool) -> String {
    if ok { "pass" } else { "fail" }.to_string()
}
