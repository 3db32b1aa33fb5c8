//! The servers under test and how each is started: the fixed-cost upstream, the gateway
//! (and its `--variant` builds), nginx (`proxy_pass`, and `auth_request` in front of
//! `bench-auth`) and haproxy, each pinned to the server CPU and waited for until ready.

use crate::cli::Variant;
use crate::client::{self, Req};
use crate::configs::{self, Ports};
use crate::procs::{self, Proc};
use crate::setup::{Bins, Env};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// Which server a case talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// The upstream itself.
    Direct,
    /// nginx, haproxy or nginx + auth service.
    Peer,
    /// A gateway build.
    Gateway,
}

/// A server under test.
pub(crate) struct Target {
    /// Its name (`upstream`, `gw`, `gw:VARIANT`, `nginx`, `nginx-auth`, `haproxy`).
    pub(crate) name: String,
    /// What it is, for humans.
    pub(crate) label: String,
    /// What kind of server it is.
    pub(crate) kind: Kind,
    /// The port it listens on (127.0.0.1).
    pub(crate) port: u16,
    /// Processes whose CPU time counts as "proxy CPU" for this target.
    pub(crate) pids: Vec<u32>,
}

/// A gateway build to start.
pub(crate) struct Gateway {
    /// Its target name.
    name: String,
    label: String,
    path: PathBuf,
    /// Its `RUST_LOG`.
    log: String,
    /// The port it will listen on.
    pub(crate) port: u16,
}

impl Gateway {
    /// The gateway (`gw`) and each variant (`gw:NAME`), each with a free port.
    pub(crate) fn all(gatehouse: &Path, log: &str, variants: &[Variant]) -> Result<Vec<Gateway>> {
        let mut out = vec![Gateway {
            name: "gw".into(),
            label: "gateway".into(),
            path: gatehouse.to_path_buf(),
            log: log.to_string(),
            port: 0,
        }];
        out.extend(variants.iter().map(|v| Gateway {
            name: format!("gw:{}", v.name),
            label: format!("gateway [{}]", v.name),
            path: v.path.clone(),
            log: v.log.clone(),
            port: 0,
        }));
        for g in &mut out {
            g.port = procs::free_port()?;
        }
        Ok(out)
    }
}

/// The servers of a run: those running, and why the others are not.
pub(crate) struct Servers {
    /// The running targets, in start order.
    pub(crate) targets: Vec<Target>,
    /// Targets that do not run: name → why.
    pub(crate) skipped: BTreeMap<String, String>,
    /// The upstream's pid (its CPU time is reported per path).
    pub(crate) upstream_pid: u32,
    /// The gateways' logs and audit files (capped between load runs).
    pub(crate) gateway_logs: Vec<PathBuf>,
    ports: Ports,
    procs: Vec<Proc>,
}

impl Servers {
    /// Picks the peers' ports and starts the upstream.
    pub(crate) fn start_upstream(rt: &Runtime, env: &Env, bin: &Path) -> Result<Servers> {
        let ports = Ports {
            upstream: procs::free_port()?,
            auth: procs::free_port()?,
            nginx: procs::free_port()?,
            nginx_auth: procs::free_port()?,
            haproxy: procs::free_port()?,
        };
        let args = [
            "--listen".into(),
            format!("127.0.0.1:{}", ports.upstream),
            "--api-key".into(),
            gatehouse_benches::fixtures::BACKEND_KEY.into(),
        ];
        let mut upstream = env.spawn("bench-upstream", bin, &args, &[], "upstream.log", "KILL")?;
        rt.block_on(wait_ready(&mut upstream, ports.upstream, "/health", &[200]))?;
        Ok(Servers {
            targets: vec![Target {
                name: "upstream".into(),
                label: "bench-upstream".into(),
                kind: Kind::Direct,
                port: ports.upstream,
                pids: vec![],
            }],
            skipped: BTreeMap::new(),
            upstream_pid: upstream.pid,
            gateway_logs: Vec::new(),
            ports,
            procs: vec![upstream],
        })
    }

    /// Starts every gateway on its port with the bench config (and `[oidc]` for `oidc`).
    pub(crate) fn start_gateways(
        &mut self,
        rt: &Runtime,
        env: &Env,
        gateways: &[Gateway],
        policy: &Path,
        threads: usize,
        oidc: Option<&configs::Oidc>,
    ) -> Result<()> {
        for gw in gateways {
            let port = gw.port;
            let slug = gw.name.replace(':', "-");
            let audit = env.work.join(format!("{slug}-audit.jsonl"));
            let cfg = configs::gateway(port, self.ports.upstream, threads, policy, &audit, oidc);
            let cfg_path = env.work.join(format!("{slug}.toml"));
            std::fs::write(&cfg_path, cfg)?;
            let log = format!("{slug}.log");
            let mut p = env.spawn(
                &gw.name,
                &gw.path,
                &["--config".into(), cfg_path.display().to_string()],
                &[
                    ("RUST_LOG".into(), gw.log.clone()),
                    ("GATEHOUSE_UPSTREAM_API_KEY".into(), String::new()),
                ],
                &log,
                "INT",
            )?;
            rt.block_on(wait_ready(&mut p, port, "/healthz", &[200]))?;
            self.gateway_logs.push(env.work.join(log));
            self.gateway_logs.push(audit);
            self.add(&gw.name, &gw.label, Kind::Gateway, port, vec![p.pid]);
            self.procs.push(p);
        }
        Ok(())
    }

    /// Starts nginx (with `bench-auth`) and haproxy when installed and not `no_peers`;
    /// a peer that does not start is reported as skipped, with why.
    pub(crate) fn start_peers(&mut self, rt: &Runtime, env: &Env, bins: &Bins, no_peers: bool) {
        let peers: [(&str, &[&str]); 2] = [
            ("nginx", &["nginx", "nginx-auth"]),
            ("haproxy", &["haproxy"]),
        ];
        for (program, names) in peers {
            let started = if no_peers {
                Err("peers disabled".to_string())
            } else if procs::which(program).is_none() {
                Err(format!("{program} is not installed"))
            } else {
                let r = match program {
                    "nginx" => self.start_nginx(rt, env, &bins.auth),
                    _ => self.start_haproxy(rt, env),
                };
                r.map_err(|e| {
                    let msg = format!("{program} failed to start: {e:#}");
                    eprintln!("{msg}");
                    msg
                })
            };
            if let Err(why) = started {
                for name in names {
                    self.skipped.insert(name.to_string(), why.clone());
                }
            }
        }
    }

    /// Starts bench-auth and nginx: targets `nginx` (master + worker) and `nginx-auth`
    /// (the same nginx, plus the auth service).
    fn start_nginx(&mut self, rt: &Runtime, env: &Env, auth_bin: &Path) -> Result<()> {
        let ports = self.ports;
        let listen = format!("127.0.0.1:{}", ports.auth);
        let mut auth = env.spawn(
            "bench-auth",
            auth_bin,
            &["--listen".into(), listen],
            &[],
            "auth.log",
            "KILL",
        )?;
        rt.block_on(wait_ready(&mut auth, ports.auth, "/auth", &[401]))?;
        let conf = env.work.join("nginx.conf");
        std::fs::write(&conf, configs::nginx(&env.work, ports, running_as_root()))?;
        let nginx = procs::which("nginx").context("nginx")?;
        let args = [
            "-p".into(),
            env.work.display().to_string(),
            "-c".into(),
            conf.display().to_string(),
            "-e".into(),
            env.work.join("nginx-error.log").display().to_string(),
        ];
        let mut p = env.spawn("nginx", &nginx, &args, &[], "nginx.log", "TERM")?;
        rt.block_on(wait_ready(&mut p, ports.nginx, "/health", &[200]))?;
        let mut pids = vec![p.pid];
        pids.extend(workers(p.pid)?);
        let mut with_auth = pids.clone();
        with_auth.push(auth.pid);
        self.procs.extend([auth, p]);
        self.add("nginx", "nginx", Kind::Peer, ports.nginx, pids);
        let label = "nginx auth_request + bench-auth";
        self.add("nginx-auth", label, Kind::Peer, ports.nginx_auth, with_auth);
        Ok(())
    }

    /// Starts haproxy: target `haproxy`.
    fn start_haproxy(&mut self, rt: &Runtime, env: &Env) -> Result<()> {
        let cfg = env.work.join("haproxy.cfg");
        std::fs::write(&cfg, configs::haproxy(self.ports))?;
        let haproxy = procs::which("haproxy").context("haproxy")?;
        let args = ["-db".into(), "-f".into(), cfg.display().to_string()];
        let mut p = env.spawn("haproxy", &haproxy, &args, &[], "haproxy.log", "TERM")?;
        rt.block_on(wait_ready(&mut p, self.ports.haproxy, "/health", &[200]))?;
        self.add(
            "haproxy",
            "haproxy",
            Kind::Peer,
            self.ports.haproxy,
            vec![p.pid],
        );
        self.procs.push(p);
        Ok(())
    }

    fn add(&mut self, name: &str, label: &str, kind: Kind, port: u16, pids: Vec<u32>) {
        self.targets.push(Target {
            name: name.into(),
            label: label.into(),
            kind,
            port,
            pids,
        });
    }

    /// The running target named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// The running gateways: `(target name, port)`.
    pub(crate) fn gateways(&self) -> Vec<(String, u16)> {
        self.targets
            .iter()
            .filter(|t| t.kind == Kind::Gateway)
            .map(|t| (t.name.clone(), t.port))
            .collect()
    }

    /// Fails when a server died; truncates gateway logs that grew past 32 MiB.
    pub(crate) fn check(&mut self) -> Result<()> {
        for p in &mut self.procs {
            procs::ensure_running(p)?;
        }
        for l in &self.gateway_logs {
            procs::cap_log(l, 32 << 20);
        }
        Ok(())
    }

    /// Stops every server, the last started first.
    pub(crate) fn stop(&mut self) {
        for p in self.procs.iter_mut().rev() {
            p.stop(Duration::from_secs(3));
        }
    }
}

impl Env {
    /// Starts a server, pinned, with its output in `log` in the work directory.
    fn spawn(
        &self,
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
        log: &str,
        stop_signal: &'static str,
    ) -> Result<Proc> {
        let log = self.work.join(log);
        Proc::spawn(name, program, args, envs, self.cpu(), log, stop_signal)
    }
}

/// Whether this process runs as root (nginx then needs `user root;`).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The worker processes of the nginx master `pid`, once there are some (5 s at most).
fn workers(pid: u32) -> Result<Vec<u32>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let kids = procs::children(pid);
        if !kids.is_empty() {
            return Ok(kids);
        }
        if Instant::now() > deadline {
            bail!("nginx started no worker");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (60 s at most) until `p` answers `GET path` on `port` with one of `ok`.
async fn wait_ready(p: &mut Proc, port: u16, path: &str, ok: &[u16]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let req = Req::get(path);
    loop {
        procs::ensure_running(p)?;
        if let Ok(r) = client::once(port, &req, Duration::from_secs(2)).await {
            if ok.contains(&r.status) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not become ready on port {port}; log:\n{}",
                p.name,
                p.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
