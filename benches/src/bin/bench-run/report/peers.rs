//! Issue 19's comparisons, all from the same run: the gateway's API-key, session and JWT
//! paths against nginx `proxy_pass`, nginx `auth_request` in front of oauth2-proxy against
//! the gateway's JWT path, haproxy, the two framework floors (bare Pingora, bare hyper),
//! how far the API-key path sits above each floor, and the ceiling (wrk straight at the
//! upstream).

use super::{Comparison, PathResult, BASELINE};

/// Issue 19's target on a comparison: the least req/s ratio, the most CPU ratio, the
/// most p99 ratio.
#[derive(Clone, Copy)]
struct Target {
    rps_min: Option<f64>,
    cpu_max: Option<f64>,
    p99_max: Option<f64>,
}

const fn target(rps_min: f64, cpu_max: Option<f64>, p99_max: Option<f64>) -> Option<Target> {
    Some(Target {
        rps_min: Some(rps_min),
        cpu_max,
        p99_max,
    })
}

/// The comparisons: what, path, reference, issue 19's target.
const ROWS: [(&str, &str, &str, Option<Target>); 11] = [
    (
        "API-key path vs nginx proxy_pass",
        "gw-apikey",
        BASELINE,
        target(1.2, Some(0.9), Some(1.0)),
    ),
    (
        "session-cookie path vs nginx proxy_pass",
        "gw-session",
        BASELINE,
        target(1.0, None, None),
    ),
    (
        "bearer-JWT path vs nginx proxy_pass",
        "gw-jwt",
        BASELINE,
        target(1.0, None, None),
    ),
    (
        "nginx auth_request + oauth2-proxy (bearer JWT) vs nginx proxy_pass",
        "nginx-oauth2",
        BASELINE,
        None,
    ),
    (
        "bearer-JWT path vs nginx auth_request + oauth2-proxy (same JWT)",
        "gw-jwt",
        "nginx-oauth2",
        None,
    ),
    ("haproxy vs nginx proxy_pass", "haproxy", BASELINE, None),
    (
        "bare Pingora 0.9 proxy (floor) vs nginx proxy_pass",
        "floor-pingora",
        BASELINE,
        None,
    ),
    (
        "bare hyper 1 proxy (floor) vs nginx proxy_pass",
        "floor-hyper",
        BASELINE,
        None,
    ),
    (
        "API-key path vs the bare Pingora floor",
        "gw-apikey",
        "floor-pingora",
        None,
    ),
    (
        "API-key path vs the bare hyper floor",
        "gw-apikey",
        "floor-hyper",
        None,
    ),
    (
        "ceiling: wrk straight at the upstream vs nginx proxy_pass",
        "direct",
        BASELINE,
        None,
    ),
];

/// Why `id` has no result to compare: skipped, failed, or not in the run.
fn why_missing(paths: &[PathResult], id: &str) -> String {
    match paths.iter().find(|p| p.id == id) {
        Some(p) if p.skipped.is_some() => {
            format!(
                "`{id}` skipped: {}",
                p.skipped.as_deref().unwrap_or_default()
            )
        }
        Some(p) if p.error.is_some() => {
            format!("`{id}` failed: {}", p.error.as_deref().unwrap_or_default())
        }
        Some(_) => format!("`{id}` completed no request"),
        None => format!("`{id}` is not a path of this run"),
    }
}

/// Each comparison of [`ROWS`], measured or with why not.
pub(super) fn comparisons(paths: &[PathResult]) -> Vec<Comparison> {
    let find = |id: &str| paths.iter().find(|p| p.id == id && p.requests > 0);
    ROWS.iter()
        .map(|&(what, path, reference, goal)| {
            let mut c = Comparison {
                what: what.into(),
                path: path.into(),
                reference: reference.into(),
                rps: None,
                reference_rps: None,
                cpu_us_per_req: None,
                reference_cpu_us_per_req: None,
                p99_ms: None,
                reference_p99_ms: None,
                target: goal.map(describe),
                status: None,
                not_measured: None,
            };
            let (p, r) = match (find(path), find(reference)) {
                (Some(p), Some(r)) => (p, r),
                (None, _) => {
                    c.not_measured = Some(why_missing(paths, path));
                    return c;
                }
                (_, None) => {
                    c.not_measured = Some(why_missing(paths, reference));
                    return c;
                }
            };
            c.rps = Some(p.rps);
            c.reference_rps = Some(r.rps);
            c.cpu_us_per_req = p.proxy_cpu_us_per_req;
            c.reference_cpu_us_per_req = r.proxy_cpu_us_per_req;
            c.p99_ms = Some(p.p99_ms);
            c.reference_p99_ms = Some(r.p99_ms);
            c.status = goal.map(|g| verdict(&c, g));
            c
        })
        .collect()
}

/// The target in words: `≥ 1.2x req/s, ≤ 0.9x CPU/req, p99 ≤ 1.0x`.
fn describe(t: Target) -> String {
    let mut parts = Vec::new();
    if let Some(r) = t.rps_min {
        parts.push(format!("≥ {r:.1}x req/s"));
    }
    if let Some(c) = t.cpu_max {
        parts.push(format!("≤ {c:.1}x CPU/req"));
    }
    if let Some(p) = t.p99_max {
        parts.push(format!("p99 ≤ {p:.1}x"));
    }
    parts.join(", ")
}

/// `pass` when every bound of `t` holds (a bound that cannot be computed fails).
fn verdict(c: &Comparison, t: Target) -> String {
    let holds = |bound: Option<f64>, ratio: Option<f64>, at_least: bool| match (bound, ratio) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(b), Some(r)) if at_least => r >= b,
        (Some(b), Some(r)) => r <= b,
    };
    let ok = holds(t.rps_min, c.rps_ratio(), true)
        && holds(t.cpu_max, c.cpu_ratio(), false)
        && holds(t.p99_max, c.p99_ratio(), false);
    if ok { "pass" } else { "fail" }.into()
}
