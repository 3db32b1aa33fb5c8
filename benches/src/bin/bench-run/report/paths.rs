//! Aggregating the rounds of every case into per-path results, with their ratios to
//! nginx `proxy_pass`.

use super::{PathResult, Ratios, BASELINE};
use crate::cases::Case;
use crate::client::new_hist;
use crate::load::Round;
use crate::requests::ReqKind;
use crate::targets::{Kind, Target};
use std::collections::BTreeMap;

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

/// The nginx `proxy_pass` path of the request `k`.
fn nginx_case_for(k: ReqKind) -> String {
    format!("{BASELINE}{}", k.id_suffix())
}

/// Aggregates the rounds of every case (`tick_us`: µs per CPU tick).
pub fn paths(
    cases: &[Case],
    targets: &[Target],
    rounds: &BTreeMap<usize, Vec<Round>>,
    tick_us: f64,
) -> Vec<PathResult> {
    let mut paths: Vec<PathResult> = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let rs = rounds.get(&i).map(Vec::as_slice).unwrap_or(&[]);
        let has_proxy = targets
            .iter()
            .find(|t| t.name == c.target)
            .is_some_and(|t| t.kind != Kind::Direct && !t.pids.is_empty());
        if let Some(p) = aggregate(c, rs, has_proxy, tick_us) {
            paths.push(p);
        }
    }
    add_ratios(&mut paths, cases);
    paths
}

/// One case's result over its rounds (`None` only when no histogram can be made).
fn aggregate(c: &Case, rs: &[Round], has_proxy: bool, tick_us: f64) -> Option<PathResult> {
    let mut hist = new_hist().ok()?;
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
    let per_req = |ticks: u64| {
        if req == 0 {
            0.0
        } else {
            ticks as f64 * tick_us / req as f64
        }
    };
    Some(PathResult {
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
    })
}

/// Each path's ratios to nginx `proxy_pass`: of the sandbox GET, and of the same request.
fn add_ratios(paths: &mut [PathResult], cases: &[Case]) {
    let snapshot = paths.to_vec();
    let find = |id: &str| snapshot.iter().find(|p| p.id == id && p.requests > 0);
    let base = find(BASELINE);
    let kinds: Vec<ReqKind> = cases.iter().map(|c| c.request).collect();
    for (p, k) in paths.iter_mut().zip(kinds) {
        if let Some(b) = base {
            p.vs_nginx = ratios(p, b);
        }
        let same = nginx_case_for(k);
        if same != BASELINE {
            if let Some(r) = find(&same) {
                p.vs_nginx_same_request = ratios(p, r);
            }
        }
    }
}
