//! The memory measurement: each proxy's RSS with many idle keep-alive connections open,
//! twice: on the fresh process (after one checked request per path, before any load) and
//! after the load rounds, with the peak RSS of the load.
//!
//! The fresh measurement is what a connection costs; the one after the load adds what
//! the load left behind (the gateway's bounded caches hold every sandbox the create path
//! made, allocator arenas stay mapped).

use crate::client;
use crate::procs;
use crate::report;
use crate::requests::{Cred, ReqKind};
use crate::targets::{Kind, Target};
use std::collections::HashMap;
use std::time::Duration;
use tokio::runtime::Runtime;

/// RSS of one server before and with the idle connections, kB.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdleRss {
    before: u64,
    with: u64,
}

/// The servers measured: every proxy, nginx once (`nginx-auth` and `nginx-oauth2` are the
/// same process).
fn measured(targets: &[Target]) -> impl Iterator<Item = &Target> {
    targets.iter().filter(|t| {
        t.kind != Kind::Direct && !matches!(t.name.as_str(), "nginx-auth" | "nginx-oauth2")
    })
}

/// Every proxy's RSS with `idle` idle connections on the fresh process, by target name.
/// A failed measurement is left out (the one after the load reports the error).
pub(crate) fn fresh(rt: &Runtime, targets: &[Target], idle: usize) -> HashMap<String, IdleRss> {
    measured(targets)
        .filter_map(|t| {
            let before = procs::status_kb_all(&t.pids, "VmRSS");
            let with = rt.block_on(with_idle(t, idle)).ok()?;
            Some((t.name.clone(), IdleRss { before, with }))
        })
        .collect()
}

/// Measures every proxy in `targets` after the load with `idle` idle connections, each
/// opened with one request the proxy accepts; `fresh` is [`fresh`]'s result.
pub(crate) fn measure(
    rt: &Runtime,
    targets: &[Target],
    idle: usize,
    fresh: &HashMap<String, IdleRss>,
) -> Vec<report::Memory> {
    measured(targets)
        .map(|t| measure_one(rt, t, idle, fresh.get(&t.name).copied()))
        .collect()
}

/// RSS (kB, all of the target's processes) with `idle` idle connections open, one second
/// after the last was opened.
async fn with_idle(t: &Target, idle: usize) -> anyhow::Result<u64> {
    let cred = match t.name.as_str() {
        "nginx-auth" => Cred::NamedKey,
        n if n.starts_with("gw") => Cred::NamedKey,
        _ => Cred::BackendKey,
    };
    let req = ReqKind::Sandbox.build(&cred);
    let conns = client::idle_connections(t.port, &req, idle).await?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let with = procs::status_kb_all(&t.pids, "VmRSS");
    drop(conns);
    Ok(with)
}

fn measure_one(rt: &Runtime, t: &Target, idle: usize, fresh: Option<IdleRss>) -> report::Memory {
    let pids = &t.pids;
    let peak = procs::status_kb_all(pids, "VmHWM");
    let before = procs::status_kb_all(pids, "VmRSS");
    let (with, err) = match rt.block_on(with_idle(t, idle)) {
        Ok(w) => (Some(w), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    report::Memory {
        server: t.label.clone(),
        target: t.name.clone(),
        processes: pids.len(),
        fresh_rss_kb_before_idle: fresh.map(|f| f.before),
        fresh_rss_kb_with_idle: fresh.map(|f| f.with),
        peak_rss_kb_after_load: peak,
        rss_kb_before_idle: before,
        rss_kb_with_idle: with,
        peak_rss_kb_overall: procs::status_kb_all(pids, "VmHWM"),
        idle_connections: idle,
        error: err,
    }
}
