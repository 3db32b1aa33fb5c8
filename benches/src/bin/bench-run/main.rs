//! `bench-run`: the proxy-latency benchmark of issues 6 and 19, end to end.
//!
//! It starts the fixed-cost upstream (`bench-upstream`), the development OpenID provider
//! (`oidc.rs`: a real login and a real JWT for the session-cookie and bearer-JWT paths),
//! the gateway with a bench config, and the peers: when installed, nginx (`proxy_pass`,
//! `auth_request` in front of `bench-auth`, and `auth_request` in front of a real
//! oauth2-proxy validating the same JWT) and haproxy, and the two framework floors (a bare
//! Pingora and a bare hyper proxy), every server pinned to one CPU. It
//! checks each path once (status, scope header, item count), then drives every path with
//! `wrk` (pinned to the other CPU) for a few rounds, alternating the paths, and reads each
//! proxy's CPU time from `/proc`. It measures memory with 1,000 idle keep-alive
//! connections on the fresh processes and again after the load, and writes
//! `target/bench/report.md` and `report.json`.
//!
//! `bench-run --smoke` is the short iteration `make test` runs: only our own binaries
//! (debug builds are fine), the built-in load generator, a fraction of a second per path.
//!
//! One module per job: the command line (`cli`), preparing the run (`setup`), the servers
//! and how each is started (`targets`, `configs`, `procs`, `oidc`), the paths
//! (`cases`, `requests`), driving them (`load`, `wrk`, `client`), the memory measurement
//! (`memory`) and the report (`report`).

mod cases;
mod cli;
mod client;
mod configs;
mod load;
mod memory;
mod oidc;
mod procs;
mod report;
mod requests;
mod setup;
mod targets;
mod wrk;

use anyhow::{bail, Result};
use cases::Case;
use cli::Args;
use load::Load;
use oidc::DevIdp;
use report::Report;
use setup::Setup;
use std::time::Instant;
use targets::{Gateway, Servers};

/// The OIDC paths: the smoke run fails when they do not run.
const SMOKE_OIDC: [&str; 2] = ["gw-session", "gw-jwt"];

fn main() -> Result<()> {
    let started = Instant::now();
    let mut args = Args::from_command_line();
    let mut setup = Setup::prepare(&mut args)?;
    let (rt, env) = (&setup.rt, &setup.env);

    // The servers: the upstream, the dev IdP, the gateways, the peers.
    let mut servers = Servers::start_upstream(rt, env, &setup.bins.upstream)?;
    let gateways = Gateway::all(&setup.bins.gatehouse, &args.gateway_log, &setup.variants)?;
    let gateway_ports: Vec<u16> = gateways.iter().map(|g| g.port).collect();
    let selected = cases::gateway_ids()
        .chain(cases::OIDC_PEERS.map(String::from))
        .any(|id| args.selects(&id));
    let idp = DevIdp::start(rt, &gateway_ports, selected, args.smoke, &mut setup.notes)?;
    let policy = setup.repo.join("policies/roles.toml");
    let oidc = idp.settings();
    servers.start_gateways(
        rt,
        env,
        &gateways,
        &policy,
        args.gateway_threads,
        oidc.as_ref(),
    )?;
    let provider = idp.provider();
    servers.start_peers(
        rt,
        env,
        &setup.bins,
        args.no_peers,
        provider.as_ref().map_err(Clone::clone),
    );

    // The paths: credentials, selection, one checked request each.
    let creds = idp.mint(rt, &servers.gateways());
    let mut cases = cases::all_cases(&setup.variants, &args.variant_cases, &creds);
    cases::select(&mut cases, &servers.skipped, &args);
    load::preflight(rt, &mut cases, &servers);

    // The measurements: memory of the fresh processes, load rounds, memory again; then the
    // servers stop.
    let fresh = memory::fresh(rt, &servers.targets, args.idle_connections);
    let load = Load::new(setup.gen, args.wrk_opts(env.pin), &cases, &env.work)?;
    let tick_us = 1e6 / procs::clk_tck() as f64;
    let rounds = load.rounds(rt, &mut cases, &mut servers, &args.schedule(), tick_us)?;
    let memory = memory::measure(rt, &servers.targets, args.idle_connections, &fresh);
    servers.stop();
    idp.stop(&env.work);

    // The report.
    let micro = if args.smoke {
        Vec::new()
    } else {
        report::criterion(&args.criterion_dir(&setup.repo))
    };
    let paths = report::paths(&cases, &servers.targets, &rounds, tick_us);
    let machine = report::machine(&setup.repo);
    let mut rep = Report::new(machine, setup.settings(&args), paths, memory, micro);
    rep.settings.elapsed_s = started.elapsed().as_secs_f64();
    rep.write(&setup.out)?;
    outcome(&args, &cases, &rep)
}

/// Fails the run when a path failed or had request errors, or a memory measurement
/// failed; the smoke run also when it completed no request, or an OIDC path did not run.
fn outcome(args: &Args, cases: &[Case], rep: &Report) -> Result<()> {
    let failed: Vec<&Case> = cases.iter().filter(|c| c.error.is_some()).collect();
    let errors = rep
        .paths
        .iter()
        .filter(|p| p.status_errors + p.io_errors > 0)
        .count();
    let mem_err = rep.memory.iter().filter(|m| m.error.is_some()).count();
    if !failed.is_empty() || errors > 0 || mem_err > 0 {
        for c in &failed {
            eprintln!("FAILED {}: {}", c.id, c.error.as_deref().unwrap_or(""));
        }
        bail!(
            "{} path(s) failed, {errors} had request errors, {mem_err} memory measurement(s) failed",
            failed.len()
        );
    }
    if !args.smoke {
        return Ok(());
    }
    if rep.paths.iter().all(|p| p.requests == 0) {
        bail!("smoke run completed no request");
    }
    // The OIDC paths must run in the smoke too (node and npm are there in `make test`).
    for p in rep
        .paths
        .iter()
        .filter(|p| SMOKE_OIDC.contains(&p.id.as_str()))
    {
        match &p.skipped {
            Some(why) if why.starts_with("not selected") => {}
            Some(why) => bail!("smoke: {} was skipped: {why}", p.id),
            None if p.requests == 0 => bail!("smoke: {} completed no request", p.id),
            None => {}
        }
    }
    Ok(())
}
