//! Driving the paths: the preflight request of each, then warm-up and the load rounds
//! (`wrk` or the built-in generator, paths alternating in a rotated order), with each
//! proxy's and the upstream's CPU time read around every run.

use crate::cases::Case;
use crate::client::{self, Sample};
use crate::targets::Servers;
use crate::{procs, wrk};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::runtime::Runtime;

/// The load generator.
#[derive(Clone, Copy)]
pub(crate) enum LoadGen {
    /// `wrk`, with a Lua script per path.
    Wrk,
    /// The built-in closed-loop generator of `client.rs`.
    Builtin,
}

/// One round of one case.
pub(crate) struct Round {
    /// What the load generator measured.
    pub(crate) sample: Sample,
    /// CPU ticks of the target's processes during the run.
    pub(crate) proxy_ticks: u64,
    /// CPU ticks of the upstream during the run.
    pub(crate) upstream_ticks: u64,
}

/// How long each path is loaded: warm-up (not recorded), then `rounds` of `duration` s.
pub(crate) struct Schedule {
    /// Warm-up seconds per path.
    pub(crate) warmup: f64,
    /// Rounds.
    pub(crate) rounds: usize,
    /// Seconds per path per round.
    pub(crate) duration: f64,
}

/// Sends each active case's request once and checks the answer (and, for an auth peer,
/// that it refuses the request without the credential); a case whose target is not
/// running is skipped, one whose answer is wrong fails.
pub(crate) fn preflight(rt: &Runtime, cases: &mut [Case], servers: &Servers) {
    for c in cases.iter_mut().filter(|c| c.active()) {
        let Some(port) = servers.get(&c.target).map(|t| t.port) else {
            c.skip = Some(format!("target {} not running", c.target));
            continue;
        };
        let timeout = Duration::from_secs(10);
        let mut checked = rt
            .block_on(client::once(port, &c.req, timeout))
            .and_then(|r| c.check(&r));
        if let (Ok(()), Some(anon)) = (&checked, &c.anonymous) {
            checked = rt
                .block_on(client::once(port, anon, timeout))
                .and_then(|r| c.check_refused(&r));
        }
        if let Err(e) = checked {
            c.error = Some(format!("preflight: {e:#}"));
        }
        match &c.error {
            Some(e) => eprintln!("FAIL {:<22} {e}", c.id),
            None => eprintln!("ok   {:<22} {}", c.id, c.label),
        }
    }
}

/// A load generator, ready for the active cases.
pub(crate) struct Load {
    gen: LoadGen,
    wrk: wrk::WrkOpts,
    /// wrk's script per case id.
    scripts: BTreeMap<String, PathBuf>,
}

impl Load {
    /// `gen` with `wrk` settings; writes a wrk script for each active case into `work`.
    pub(crate) fn new(
        gen: LoadGen,
        wrk: wrk::WrkOpts,
        cases: &[Case],
        work: &Path,
    ) -> Result<Load> {
        let mut scripts = BTreeMap::new();
        if matches!(gen, LoadGen::Wrk) {
            for c in cases.iter().filter(|c| c.active()) {
                let id = c.id.replace(':', "-");
                scripts.insert(c.id.clone(), wrk::script(work, &id, &c.req)?);
            }
        }
        Ok(Load { gen, wrk, scripts })
    }

    /// Loads case `c` on `port` for `d`.
    fn run(&self, rt: &Runtime, c: &Case, port: u16, d: Duration) -> Result<Sample> {
        match self.gen {
            LoadGen::Wrk => {
                let script = self
                    .scripts
                    .get(&c.id)
                    .with_context(|| format!("no wrk script for {}", c.id))?;
                wrk::run(&self.wrk, port, &c.req.path, script, d)
            }
            LoadGen::Builtin => {
                rt.block_on(client::builtin_load(port, &c.req, self.wrk.connections, d))
            }
        }
    }

    /// Warms up every active case, then runs the rounds, each case once per round in an
    /// order rotated from round to round; a case whose load fails is marked failed.
    /// Returns the rounds by case index. `tick_us`: µs per CPU tick.
    pub(crate) fn rounds(
        &self,
        rt: &Runtime,
        cases: &mut [Case],
        servers: &mut Servers,
        schedule: &Schedule,
        tick_us: f64,
    ) -> Result<BTreeMap<usize, Vec<Round>>> {
        let active: Vec<usize> = (0..cases.len()).filter(|&i| cases[i].active()).collect();
        let mut rounds: BTreeMap<usize, Vec<Round>> = BTreeMap::new();
        if schedule.warmup > 0.0 {
            eprintln!("warm-up: {} paths x {} s", active.len(), schedule.warmup);
            for &i in &active {
                let c = &cases[i];
                let port = servers.get(&c.target).map(|t| t.port).unwrap_or_default();
                let d = Duration::from_secs_f64(schedule.warmup);
                if let Err(e) = self.run(rt, c, port, d) {
                    eprintln!("warm-up {}: {e:#}", c.id);
                }
            }
        }
        for r in 0..schedule.rounds {
            eprintln!("round {}/{}", r + 1, schedule.rounds);
            let n = active.len().max(1);
            let order: Vec<usize> = (0..active.len())
                .map(|k| active[(k + r * n / schedule.rounds.max(1)) % n])
                .collect();
            for i in order {
                servers.check()?;
                let c = &cases[i];
                let Some(t) = servers.get(&c.target) else {
                    continue;
                };
                let p0 = procs::cpu_ticks_all(&t.pids);
                let u0 = procs::cpu_ticks(servers.upstream_pid).unwrap_or(0);
                let res = self.run(rt, c, t.port, Duration::from_secs_f64(schedule.duration));
                let p1 = procs::cpu_ticks_all(&t.pids);
                let u1 = procs::cpu_ticks(servers.upstream_pid).unwrap_or(0);
                match res {
                    Ok(s) => {
                        let cpu = (!t.pids.is_empty() && s.requests > 0)
                            .then(|| (p1 - p0) as f64 * tick_us / s.requests as f64);
                        print_run(&c.id, &s, cpu);
                        rounds.entry(i).or_default().push(Round {
                            sample: s,
                            proxy_ticks: p1.saturating_sub(p0),
                            upstream_ticks: u1.saturating_sub(u0),
                        });
                    }
                    Err(e) => {
                        eprintln!("  {:<22} failed: {e:#}", c.id);
                        cases[i].error.get_or_insert(format!("load: {e:#}"));
                    }
                }
            }
        }
        Ok(rounds)
    }
}

/// One line on stderr for one load run: req/s, p99, proxy CPU per request, errors.
fn print_run(id: &str, s: &Sample, cpu_us: Option<f64>) {
    let cpu = match cpu_us {
        Some(us) => format!("{us:.1} µs"),
        None => String::from("-"),
    };
    eprintln!(
        "  {:<22} {:>9.0} req/s  p99 {:>7.3} ms  cpu/req {cpu}{}",
        id,
        s.requests as f64 / s.duration_s.max(1e-9),
        s.hist.value_at_quantile(0.99) as f64 / 1000.0,
        if s.status_errors + s.io_errors > 0 {
            format!("  ERRORS {} status, {} io", s.status_errors, s.io_errors)
        } else if s.reconnects > 0 {
            format!("  ({} responses closed the connection)", s.reconnects)
        } else {
            String::new()
        }
    );
}
