//! What the run ran on (machine, tools, git revision, release profile), and the criterion
//! results to summarise.

use super::{Machine, Micro};
use std::path::Path;

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
        git: git_revision(repo),
        release_profile: release_profile(repo),
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

/// The short revision of `repo`, marked when the checkout has uncommitted changes.
fn git_revision(repo: &Path) -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .ok()
    };
    let rev = git(&["rev-parse", "--short", "HEAD"])
        .map(|o| first_line(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default();
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|o| !o.stdout.is_empty());
    if rev.is_empty() {
        "unknown".into()
    } else if dirty {
        format!("{rev} (with uncommitted changes)")
    } else {
        rev
    }
}

/// The `[profile.release]` settings of the workspace's `Cargo.toml`, comma separated.
fn release_profile(repo: &Path) -> String {
    let cargo = std::fs::read_to_string(repo.join("Cargo.toml")).unwrap_or_default();
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
    profile.join(", ")
}
