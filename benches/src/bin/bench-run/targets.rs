//! The servers under test and how each is started: the fixed-cost upstream, the gateway
//! (and its `--variant` builds), nginx (`proxy_pass`, `auth_request` in front of
//! `bench-auth`, and `auth_request` in front of oauth2-proxy), haproxy, and the two
//! framework floors (a bare Pingora and a bare hyper proxy), each pinned to the server CPU
//! and waited for until ready.

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
    /// nginx, haproxy, nginx + auth service, or a floor.
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

/// Every peer target `start_peers` may start.
const PEER_TARGETS: [&str; 6] = [
    "nginx",
    "nginx-auth",
    "nginx-oauth2",
    "haproxy",
    "floor-pingora",
    "floor-hyper",
];

/// A process started and kept in [`Servers`]' list, by pid.
struct ProcRef {
    pid: u32,
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
            oauth2: procs::free_port()?,
            nginx_oauth2: procs::free_port()?,
            floor_pingora: procs::free_port()?,
            floor_hyper: procs::free_port()?,
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

    /// Starts the peers unless `no_peers`: oauth2-proxy (with the dev IdP's `oidc`
    /// settings, or why there are none), nginx (with `bench-auth`) and haproxy when
    /// installed, and the two floors when built. A peer that does not start is reported
    /// as skipped, with why.
    pub(crate) fn start_peers(
        &mut self,
        rt: &Runtime,
        env: &Env,
        bins: &Bins,
        no_peers: bool,
        oidc: Result<&configs::Oidc, String>,
    ) {
        if no_peers {
            for name in PEER_TARGETS {
                self.skipped.insert(name.into(), "peers disabled".into());
            }
            return;
        }
        let failed = |what: &str, e: anyhow::Error| {
            let msg = format!("{what} failed to start: {e:#}");
            eprintln!("{msg}");
            msg
        };
        // oauth2-proxy first: nginx routes `nginx-oauth2` to it when it runs.
        let oauth2 = match (&bins.oauth2_proxy, oidc) {
            (Err(why), _) => Err(why.clone()),
            (_, Err(why)) => Err(format!("no OpenID provider for oauth2-proxy: {why}")),
            (Ok(bin), Ok(o)) => self
                .start_oauth2_proxy(rt, env, bin, o)
                .map_err(|e| failed("oauth2-proxy", e)),
        };
        let nginx = if procs::which("nginx").is_none() {
            Err("nginx is not installed".to_string())
        } else {
            let o2 = oauth2.as_ref().ok().map(|p| p.pid);
            self.start_nginx(rt, env, &bins.auth, o2)
                .map_err(|e| failed("nginx", e))
        };
        match (&nginx, oauth2) {
            (Err(why), _) => {
                for name in ["nginx", "nginx-auth", "nginx-oauth2"] {
                    self.skipped.insert(name.into(), why.clone());
                }
            }
            (Ok(()), Err(why)) => {
                self.skipped.insert("nginx-oauth2".into(), why);
            }
            (Ok(()), Ok(_)) => {}
        }
        let haproxy = if procs::which("haproxy").is_none() {
            Err("haproxy is not installed".to_string())
        } else {
            self.start_haproxy(rt, env)
                .map_err(|e| failed("haproxy", e))
        };
        if let Err(why) = haproxy {
            self.skipped.insert("haproxy".into(), why);
        }
        let floors = [
            (
                "floor-pingora",
                "bare Pingora 0.9 proxy (floor)",
                &bins.floor_pingora,
                self.ports.floor_pingora,
                "INT",
            ),
            (
                "floor-hyper",
                "bare hyper 1 proxy (floor)",
                &bins.floor_hyper,
                self.ports.floor_hyper,
                "TERM",
            ),
        ];
        for (name, label, bin, port, signal) in floors {
            let started = match bin {
                Err(why) => Err(why.clone()),
                Ok(bin) => self
                    .start_floor(rt, env, (name, label), bin, port, signal)
                    .map_err(|e| failed(name, e)),
            };
            if let Err(why) = started {
                self.skipped.insert(name.into(), why);
            }
        }
    }

    /// Starts oauth2-proxy with the dev IdP as its provider (one OS thread for Go code:
    /// `GOMAXPROCS=1`) and waits for its `/ping`; returns it (its pid joins nginx's for
    /// `nginx-oauth2`).
    fn start_oauth2_proxy(
        &mut self,
        rt: &Runtime,
        env: &Env,
        bin: &Path,
        oidc: &configs::Oidc,
    ) -> Result<ProcRef> {
        let port = self.ports.oauth2;
        let args = configs::oauth2_proxy_args(port, oidc);
        let envs = [("GOMAXPROCS".to_string(), "1".to_string())];
        let mut p = env.spawn(
            "oauth2-proxy",
            bin,
            &args,
            &envs,
            "oauth2-proxy.log",
            "TERM",
        )?;
        rt.block_on(wait_ready(&mut p, port, "/ping", &[200]))?;
        let pid = p.pid;
        self.procs.push(p);
        Ok(ProcRef { pid })
    }

    /// Starts a floor proxy in front of the upstream: target `name`.
    fn start_floor(
        &mut self,
        rt: &Runtime,
        env: &Env,
        (name, label): (&str, &str),
        bin: &Path,
        port: u16,
        signal: &'static str,
    ) -> Result<()> {
        let args = [
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--upstream".into(),
            format!("127.0.0.1:{}", self.ports.upstream),
        ];
        let mut p = env.spawn(name, bin, &args, &[], &format!("{name}.log"), signal)?;
        // The upstream's health check, through the proxy.
        rt.block_on(wait_ready(&mut p, port, "/health", &[200]))?;
        self.add(name, label, Kind::Peer, port, vec![p.pid]);
        self.procs.push(p);
        Ok(())
    }

    /// Starts bench-auth and nginx: targets `nginx` (master + worker), `nginx-auth`
    /// (the same nginx, plus the auth service) and, when oauth2-proxy runs (`oauth2`: its
    /// pid), `nginx-oauth2` (the same nginx, plus oauth2-proxy).
    fn start_nginx(
        &mut self,
        rt: &Runtime,
        env: &Env,
        auth_bin: &Path,
        oauth2: Option<u32>,
    ) -> Result<()> {
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
        let as_root = running_as_root();
        std::fs::write(
            &conf,
            configs::nginx(&env.work, ports, as_root, oauth2.is_some()),
        )?;
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
        self.add("nginx", "nginx", Kind::Peer, ports.nginx, pids.clone());
        let label = "nginx auth_request + bench-auth";
        self.add("nginx-auth", label, Kind::Peer, ports.nginx_auth, with_auth);
        if let Some(o2) = oauth2 {
            pids.push(o2);
            let label = "nginx auth_request + oauth2-proxy";
            self.add("nginx-oauth2", label, Kind::Peer, ports.nginx_oauth2, pids);
        }
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
