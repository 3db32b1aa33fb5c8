//! The memory measurement: each proxy's peak RSS after the load rounds, and its RSS with
//! many idle keep-alive connections open.

use crate::client;
use crate::procs;
use crate::report;
use crate::requests::{Cred, ReqKind};
use crate::targets::{Kind, Target};
use std::time::Duration;
use tokio::runtime::Runtime;

/// Measures every proxy in `targets` (nginx once: `nginx-auth` and `nginx-oauth2` are the
/// same process) with
/// `idle` idle connections, each opened with one request the proxy accepts.
pub(crate) fn measure(rt: &Runtime, targets: &[Target], idle: usize) -> Vec<report::Memory> {
    targets
        .iter()
        .filter(|t| {
            t.kind != Kind::Direct && !matches!(t.name.as_str(), "nginx-auth" | "nginx-oauth2")
        })
        .map(|t| measure_one(rt, t, idle))
        .collect()
}

fn measure_one(rt: &Runtime, t: &Target, idle: usize) -> report::Memory {
    let pids = &t.pids;
    let peak = procs::status_kb_all(pids, "VmHWM");
    let before = procs::status_kb_all(pids, "VmRSS");
    let cred = match t.name.as_str() {
        "nginx-auth" => Cred::NamedKey,
        n if n.starts_with("gw") => Cred::NamedKey,
        _ => Cred::BackendKey,
    };
    let req = ReqKind::Sandbox.build(&cred);
    let res = rt.block_on(async {
        let conns = client::idle_connections(t.port, &req, idle).await?;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let with = procs::status_kb_all(pids, "VmRSS");
        let peak_with = procs::status_kb_all(pids, "VmHWM");
        drop(conns);
        Ok::<_, anyhow::Error>((with, peak_with))
    });
    let (with, peak_after, err) = match res {
        Ok((w, p)) => (Some(w), p, None),
        Err(e) => (
            None,
            procs::status_kb_all(pids, "VmHWM"),
            Some(format!("{e:#}")),
        ),
    };
    report::Memory {
        server: t.label.clone(),
        target: t.name.clone(),
        processes: pids.len(),
        peak_rss_kb_after_load: peak,
        rss_kb_before_idle: before,
        rss_kb_with_idle: with,
        peak_rss_kb_overall: peak_after,
        idle_connections: idle,
        error: err,
    }
}
