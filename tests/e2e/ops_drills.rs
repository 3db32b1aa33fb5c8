//! Fault drills a platform engineer runs before trusting the gateway, as tests: the
//! governance store goes down (the gateway fails static and says so on `/readyz`), the
//! gateway is replaced by a new process under load (Pingora's graceful upgrade: no failed
//! request), the IdP goes down (existing sessions keep working, a new login is a clear 503)
//! and the backend takes a new API key on `SIGHUP`. Real processes, PostgreSQL and the dev
//! IdP; the long versions with wrk are in `benches/soak.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::login::login;
use gatehouse_tests::postgres::Postgres;
use gatehouse_tests::principals::keyed;
use gatehouse_tests::stacks::OidcStack;
use gatehouse_tests::{bin_dir, free_port, wait_for, Backend, BackendOptions};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const ADMIN_KEY: &str = "drill-admin-key-0123456789";

fn key_entry(name: &str, key: &str, role: &str) -> String {
    format!(
        "[[auth.api_keys]]\nname = \"{name}\"\nsha256 = \"{}\"\nrole = \"{role}\"\n",
        hex::encode(Sha256::digest(key))
    )
}

/// No request of a drill waits longer than this: a process that accepted a connection
/// and never answers fails the drill with its logs instead of hanging the run.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

async fn get_json(c: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = c.get(url).timeout(REQUEST_TIMEOUT).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn signal(sig: &str, pid: u32) {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Whether `pid` runs (an exited child not yet reaped by its parent is a zombie: not
/// running).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_owned()))
        .is_some_and(|r| !r.starts_with('Z'))
}

#[tokio::test]
async fn a_store_outage_is_reported_and_the_gateway_fails_static() {
    let mut pg = Postgres::start().unwrap();
    let backend = Backend::start(BackendOptions::default()).await.unwrap();
    let extra = format!(
        "{}\n[store]\ntype = \"postgres\"\nurl = \"{}\"\nretry_ms = 200\n",
        key_entry("drill-admin", ADMIN_KEY, "service_admin"),
        pg.url
    );
    let gw = Gateway::start(&backend.url, &backend.api_key, &extra)
        .await
        .unwrap();
    let c = reqwest::Client::new();
    let admin = keyed(ADMIN_KEY);
    let (s, v) = get_json(&c, &gw.at("/readyz")).await;
    assert_eq!(
        (s, &v["status"], &v["checks"]["store"]),
        (200, &"ready".into(), &"ok".into()),
        "{v}"
    );

    pg.pause().unwrap();
    let (s, v) = get_json(&c, &gw.at("/readyz")).await;
    assert_eq!(
        s, 200,
        "a store outage does not take the gateway out of rotation: {v}"
    );
    assert_eq!(v["status"], "degraded", "{v}");
    assert!(
        v["checks"]["store"]
            .as_str()
            .unwrap()
            .starts_with("unreachable"),
        "{v}"
    );
    // Named keys and the role table need no store: requests keep being served.
    for _ in 0..5 {
        assert_eq!(get_json(&admin, &gw.at("/v1/sandboxes")).await.0, 200);
    }

    pg.resume().unwrap();
    wait_for("the store back on /readyz", Duration::from_secs(20), || {
        let (c, url) = (c.clone(), gw.at("/readyz"));
        async move {
            let (_, v) = get_json(&c, &url).await;
            (v["checks"]["store"] == "ok" && v["status"] == "ready").then_some(())
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn an_upgrade_under_load_fails_no_request() {
    let backend = Backend::start(BackendOptions::default()).await.unwrap();
    let admin_port = free_port();
    let extra = format!(
        "[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\n{}",
        key_entry("drill-admin", ADMIN_KEY, "service_admin")
    );
    let grace = [("GATEHOUSE__SERVER__GRACE_PERIOD_SECONDS", "2")];
    let gw = Gateway::start_with_env(free_port(), &backend.url, &backend.api_key, &extra, &grace)
        .await
        .unwrap();
    let old = gw.pid().unwrap();

    // Load: four keep-alive clients asking in a loop until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
        let (client, url) = (keyed(ADMIN_KEY), gw.at("/v1/sandboxes"));
        load.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match client.get(&url).timeout(REQUEST_TIMEOUT).send().await {
                    Ok(r) if r.status() == 200 => {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        errors.push(format!("{other:?}"));
                    }
                }
            }
            errors
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The new process takes the socket over; the old one drains and exits.
    let mut new = Upgraded::start(&gw.config_path, &grace);
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal("-QUIT", old);
    let before = served.load(Ordering::Relaxed);
    let logs = |new: &Upgraded| format!("\nold: {}\nnew: {}", gw.log(), new.log());
    if let Err(e) = wait_for(
        "the old process to exit",
        Duration::from_secs(30),
        || async { (!alive(old)).then_some(()) },
    )
    .await
    {
        panic!("{e}{}", logs(&new));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut errors = Vec::new();
    for l in load {
        errors.extend(l.await.unwrap());
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed requests during the upgrade: {errors:?}{}",
        logs(&new)
    );
    assert!(
        served.load(Ordering::Relaxed) > before,
        "no request served after the hand-over{}",
        logs(&new)
    );
    // The new process serves on the same port, and its admin listener took the port over.
    assert!(alive(new.child.id()), "{}", logs(&new));
    assert_eq!(
        get_json(&keyed(ADMIN_KEY), &gw.at("/v1/sandboxes")).await.0,
        200
    );
    let metrics = format!("http://127.0.0.1:{admin_port}/metrics");
    if let Err(e) = wait_for("the new admin listener", Duration::from_secs(20), || {
        let m = metrics.clone();
        async move {
            let r = reqwest::Client::new().get(&m).timeout(REQUEST_TIMEOUT);
            r.send().await.ok().filter(|r| r.status() == 200)
        }
    })
    .await
    {
        panic!("{e}{}", logs(&new));
    }
    signal("-INT", new.child.id());
    let exited = wait_for("the new process to exit", Duration::from_secs(15), || {
        let status = new.child.try_wait().ok().flatten();
        async move { status }
    })
    .await;
    if let Err(e) = exited {
        panic!("{e} after SIGINT{}", logs(&new));
    }
}

/// The gateway started with `--upgrade` by a drill; killed if the drill ends early.
struct Upgraded {
    child: std::process::Child,
    log_path: std::path::PathBuf,
}

impl Upgraded {
    /// Starts the gateway binary on `config` with `--upgrade`, stderr to `upgraded.log`
    /// beside the config.
    fn start(config: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let log_path = config.with_file_name("upgraded.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(bin_dir().join("gatehouse"))
            .arg("--config")
            .arg(config)
            .arg("--upgrade")
            .env_remove("GATEHOUSE_UPSTREAM_API_KEY")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Self { child, log_path }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Upgraded {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test]
async fn idp_down_keeps_sessions_and_refuses_new_logins_clearly() {
    let mut st = OidcStack::start("", "").await.unwrap();
    let session = login(&st.gw.url, &st.idp, "alice", "/console/")
        .await
        .unwrap();
    st.idp.stop();

    // The session is the gateway's own: it keeps working.
    let me = reqwest::Client::new()
        .get(st.gw.at("/auth/me"))
        .header("Cookie", session.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    // A new login is not sent to a dead IdP (once the last probe's answer, at most
    // idp_probe::REUSE old, has expired).
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = st.gw.at("/auth/login");
    let v = wait_for("a 503 from /auth/login", Duration::from_secs(10), || {
        let (b, url) = (browser.clone(), url.clone());
        async move {
            let r = b.get(&url).send().await.ok()?;
            (r.status() == 503).then_some(())?;
            r.json::<Value>().await.ok()
        }
    })
    .await
    .unwrap();
    assert_eq!(v["code"], "GATEWAY::IDP_UNAVAILABLE", "{v}");
}

#[tokio::test]
async fn the_backend_takes_a_new_api_key_on_sighup() {
    let backend = Backend::start(BackendOptions::default()).await.unwrap();
    let url = backend.at("/v1/sandboxes");
    let with = |k: &str| keyed(k);
    assert_eq!(get_json(&with(&backend.api_key), &url).await.0, 200);
    let new_key = format!("rotated-{}", uuid::Uuid::new_v4().simple());
    let text = std::fs::read_to_string(&backend.config_path).unwrap();
    std::fs::write(
        &backend.config_path,
        text.replace(&backend.api_key, &new_key),
    )
    .unwrap();
    signal("-HUP", backend.pid().unwrap());
    wait_for("the new key", Duration::from_secs(10), || {
        let (c, url) = (with(&new_key), url.clone());
        async move { (get_json(&c, &url).await.0 == 200).then_some(()) }
    })
    .await
    .unwrap();
    assert_eq!(get_json(&with(&backend.api_key), &url).await.0, 401);
    assert!(
        backend.log().contains("API key replaced"),
        "{}",
        backend.log()
    );
    assert!(!backend.log().contains(&new_key), "the key is never logged");
}
