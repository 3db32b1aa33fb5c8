//! CPU and memory of the sandbox, from cgroup v2 files (else cgroup v1, else `/proc`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const V1_CPUACCT: &str = "/sys/fs/cgroup/cpuacct/cpuacct.usage";
const V1_CPU_QUOTA: &str = "/sys/fs/cgroup/cpu/cpu.cfs_quota_us";
const V1_CPU_PERIOD: &str = "/sys/fs/cgroup/cpu/cpu.cfs_period_us";
const V1_MEM_USAGE: &str = "/sys/fs/cgroup/memory/memory.usage_in_bytes";
const V1_MEM_LIMIT: &str = "/sys/fs/cgroup/memory/memory.limit_in_bytes";
const V1_MEM_STAT: &str = "/sys/fs/cgroup/memory/memory.stat";

/// `Metrics` of the execd contract.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    /// CPUs available (cgroup quota, else online CPUs).
    pub cpu_count: f64,
    /// CPU used over the sampling window, percent of `cpu_count` CPUs.
    pub cpu_used_pct: f64,
    /// Memory limit (cgroup) or total memory, MiB.
    pub mem_total_mib: f64,
    /// Memory in use (cgroup current minus inactive file cache), MiB.
    pub mem_used_mib: f64,
    /// Unix milliseconds.
    pub timestamp: i64,
}

/// A cumulative CPU-time reading.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    usage_usec: u64,
    at: Instant,
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// The cgroup v2 directory of this process, if cgroup v2 is mounted.
fn cgroup_dir() -> Option<PathBuf> {
    let own = read(Path::new("/proc/self/cgroup")).and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_owned()))
    });
    let root = Path::new(CGROUP_ROOT);
    if let Some(rel) = own {
        let dir = root.join(rel.trim_start_matches('/'));
        if dir.join("cpu.stat").exists() {
            return Some(dir);
        }
    }
    root.join("cpu.stat").exists().then(|| root.to_path_buf())
}

fn stat_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key)).then(|| it.next()?.parse().ok())?
    })
}

fn cpu_usage_usec(cg: Option<&Path>) -> Option<u64> {
    if let Some(dir) = cg {
        if let Some(v) = read(&dir.join("cpu.stat")).and_then(|t| stat_field(&t, "usage_usec")) {
            return Some(v);
        }
    }
    // cgroup v1 (e.g. Docker on a v1 host): cumulative nanoseconds.
    if let Some(ns) = read(Path::new(V1_CPUACCT)).and_then(|t| t.trim().parse::<u64>().ok()) {
        return Some(ns / 1000);
    }
    // /proc/stat: "cpu user nice system idle iowait irq softirq steal ..." in USER_HZ (100).
    let text = read(Path::new("/proc/stat"))?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let busy: u64 = [0usize, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|i| f.get(*i))
        .sum();
    Some(busy * 10_000)
}

fn host_cpus() -> f64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as f64)
        .unwrap_or(1.0)
}

fn cpu_count(cg: Option<&Path>) -> f64 {
    let v2 = cg.and_then(|d| read(&d.join("cpu.max"))).and_then(|t| {
        let mut it = t.split_whitespace();
        let q = it.next()?.parse::<f64>().ok()?;
        let p = it.next()?.parse::<f64>().ok()?;
        (p > 0.0).then_some(q / p)
    });
    let v1 = || {
        let q = read(Path::new(V1_CPU_QUOTA))?.trim().parse::<f64>().ok()?;
        let p = read(Path::new(V1_CPU_PERIOD))?.trim().parse::<f64>().ok()?;
        (q > 0.0 && p > 0.0).then_some(q / p)
    };
    let quota = v2.or_else(v1);
    match quota {
        Some(q) if q > 0.0 => q.min(host_cpus()),
        _ => host_cpus(),
    }
}

fn meminfo_kib(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn memory_mib(cg: Option<&Path>) -> (f64, f64) {
    const MIB: f64 = 1024.0 * 1024.0;
    let proc_mem = read(Path::new("/proc/meminfo")).unwrap_or_default();
    let host_total = meminfo_kib(&proc_mem, "MemTotal").unwrap_or(0) * 1024;
    if let Some(dir) = cg {
        if let Some(cur) =
            read(&dir.join("memory.current")).and_then(|t| t.trim().parse::<u64>().ok())
        {
            let limit = read(&dir.join("memory.max"))
                .and_then(|t| t.trim().parse::<u64>().ok())
                .filter(|l| *l > 0)
                .map_or(host_total, |l| l.min(host_total.max(1)));
            let inactive = read(&dir.join("memory.stat"))
                .and_then(|t| stat_field(&t, "inactive_file"))
                .unwrap_or(0);
            let used = cur.saturating_sub(inactive);
            return (limit as f64 / MIB, used as f64 / MIB);
        }
    }
    if cg.is_none() {
        if let Some(cur) = read(Path::new(V1_MEM_USAGE)).and_then(|t| t.trim().parse::<u64>().ok())
        {
            // An unlimited v1 cgroup reports a huge limit; cap at the host's memory.
            let limit = read(Path::new(V1_MEM_LIMIT))
                .and_then(|t| t.trim().parse::<u64>().ok())
                .map_or(host_total, |l| l.min(host_total.max(1)));
            let inactive = read(Path::new(V1_MEM_STAT))
                .and_then(|t| stat_field(&t, "total_inactive_file"))
                .unwrap_or(0);
            return (
                limit as f64 / MIB,
                cur.saturating_sub(inactive) as f64 / MIB,
            );
        }
    }
    let avail = meminfo_kib(&proc_mem, "MemAvailable").unwrap_or(0) * 1024;
    (
        host_total as f64 / MIB,
        host_total.saturating_sub(avail) as f64 / MIB,
    )
}

/// Take a CPU reading now.
pub fn sample() -> CpuSample {
    let cg = cgroup_dir();
    CpuSample {
        usage_usec: cpu_usage_usec(cg.as_deref()).unwrap_or(0),
        at: Instant::now(),
    }
}

/// Metrics with CPU usage measured since `prev`; returns the new reading too.
pub fn collect(prev: CpuSample) -> (Metrics, CpuSample) {
    let cg = cgroup_dir();
    let now = CpuSample {
        usage_usec: cpu_usage_usec(cg.as_deref()).unwrap_or(prev.usage_usec),
        at: Instant::now(),
    };
    let cpus = cpu_count(cg.as_deref());
    let wall = now.at.duration_since(prev.at).as_micros() as f64;
    let used = now.usage_usec.saturating_sub(prev.usage_usec) as f64;
    let pct = if wall > 0.0 && cpus > 0.0 {
        (used / (wall * cpus) * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    };
    let (total, used_mem) = memory_mib(cg.as_deref());
    let m = Metrics {
        cpu_count: cpus,
        cpu_used_pct: (pct * 100.0).round() / 100.0,
        mem_total_mib: (total * 100.0).round() / 100.0,
        mem_used_mib: (used_mem * 100.0).round() / 100.0,
        timestamp: chrono::Utc::now().timestamp_millis(),
    };
    (m, now)
}

/// One-shot metrics over a short sampling window.
pub async fn snapshot(window: Duration) -> Metrics {
    let first = sample();
    tokio::time::sleep(window).await;
    collect(first).0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_and_meminfo() {
        assert_eq!(
            stat_field("usage_usec 123\nuser_usec 5\n", "usage_usec"),
            Some(123)
        );
        assert_eq!(
            meminfo_kib(
                "MemTotal:  2048 kB\nMemAvailable: 1024 kB\n",
                "MemAvailable"
            ),
            Some(1024)
        );
    }

    #[tokio::test]
    async fn snapshot_is_sane() {
        let m = snapshot(Duration::from_millis(50)).await;
        assert!(m.cpu_count >= 1.0 || m.cpu_count > 0.0);
        assert!((0.0..=100.0).contains(&m.cpu_used_pct));
        assert!(m.mem_total_mib > 0.0);
        assert!(m.mem_used_mib <= m.mem_total_mib);
    }
}
