//! Driving `wrk`: a Lua script per case sets the method, headers and body, and its
//! `done()` prints the run's counters and the full latency histogram (every distinct
//! microsecond value with its count) as one JSON line, so rounds merge exactly.

use crate::client::{new_hist, Req, Sample};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

// wrk's `latency(i)` does not expose bucket counts, so `done()` samples the quantile
// function instead: every 0.1% up to p99 and every 0.01% above (p100 = max). Each sample
// stands for its share of the requests when rounds are merged.
const DONE: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"q":[',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
  for k = 1, 990 do
    io.write(string.format("%d,", latency:percentile(k / 10)))
  end
  for k = 1, 99 do
    io.write(string.format("%d,", latency:percentile(99 + k / 100)))
  end
  io.write(string.format("%d]}\n", latency.max))
end
"#;

/// Share of the requests each quantile sample in `q` stands for.
fn quantile_weights() -> Vec<f64> {
    let mut w = vec![0.001; 990];
    w.extend(std::iter::repeat_n(0.0001, 100));
    w
}

fn lua_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// Writes the Lua script for `req` into `dir` and returns its path.
pub fn script(dir: &Path, id: &str, req: &Req) -> Result<PathBuf> {
    let mut lua = format!("wrk.method = {}\n", lua_string(&req.method));
    for (k, v) in &req.headers {
        lua.push_str(&format!(
            "wrk.headers[{}] = {}\n",
            lua_string(k),
            lua_string(v)
        ));
    }
    if let Some(b) = &req.body {
        let text = std::str::from_utf8(b).context("wrk bodies must be UTF-8")?;
        lua.push_str(&format!("wrk.body = {}\n", lua_string(text)));
    }
    lua.push_str(DONE);
    let path = dir.join(format!("{id}.lua"));
    std::fs::write(&path, lua).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[derive(Debug, Deserialize)]
struct Done {
    requests: u64,
    duration_us: u64,
    bytes: u64,
    connect: u64,
    read: u64,
    write: u64,
    status: u64,
    timeout: u64,
    q: Vec<u64>,
}

/// Settings of one wrk invocation.
#[derive(Debug, Clone)]
pub struct WrkOpts {
    pub threads: usize,
    pub connections: usize,
    pub cpu: Option<u32>,
}

/// Runs wrk against `127.0.0.1:port` + `path` for `duration` with `script`.
pub fn run(
    opts: &WrkOpts,
    port: u16,
    path: &str,
    script: &Path,
    duration: Duration,
) -> Result<Sample> {
    let secs = duration.as_secs().max(1);
    let mut cmd = crate::procs::pinned("wrk", opts.cpu);
    cmd.arg(format!("-t{}", opts.threads))
        .arg(format!("-c{}", opts.connections))
        .arg(format!("-d{secs}s"))
        .arg("--timeout")
        .arg("5s")
        .arg("-s")
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}{path}"));
    let out = cmd.output().context("running wrk")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("BENCHJSON ")) else {
        bail!(
            "wrk printed no result (exit {:?}):\n{}\n{}",
            out.status.code(),
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let d: Done = serde_json::from_str(line).context("parsing wrk's result")?;
    let mut hist = new_hist()?;
    let w = quantile_weights();
    if d.q.len() != w.len() {
        bail!(
            "wrk returned {} latency quantiles, want {}",
            d.q.len(),
            w.len()
        );
    }
    for (v, share) in d.q.iter().zip(w) {
        let n = (share * d.requests as f64).round() as u64;
        if n > 0 {
            hist.saturating_record_n((*v).max(1), n);
        }
    }
    Ok(Sample {
        requests: d.requests,
        duration_s: d.duration_us as f64 / 1e6,
        bytes: d.bytes,
        status_errors: d.status,
        io_errors: d.connect + d.write + d.timeout,
        reconnects: d.read,
        hist,
    })
}
