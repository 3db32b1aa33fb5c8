//! Operating the gateway and the backend as a platform engineer would: probes, metrics
//! scraped from both admin listeners, `SIGHUP` reloads, the CLI's checks and a port
//! already in use. Real processes and the real Docker engine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::principals::keyed;
use gatehouse_tests::sandbox::{create_id, delete, httpd_body};
use gatehouse_tests::{bin_dir, free_port, wait_for, Backend, BackendOptions};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::process::Command;
use std::time::Duration;

const ADMIN_KEY: &str = "ops-admin-key-0123456789";
const NEW_KEY: &str = "ops-new-key-0123456789abc";

fn key_entry(name: &str, key: &str, role: &str) -> String {
    format!(
        "[[auth.api_keys]]\nname = \"{name}\"\nsha256 = \"{}\"\nrole = \"{role}\"\n",
        hex::encode(Sha256::digest(key))
    )
}

async fn scrape(url: &str) -> String {
    let r = reqwest::get(url).await.expect("scrape");
    assert_eq!(r.status(), 200, "{url}");
    r.text().await.unwrap()
}

/// The value of one exposition series (`name{labels}` exactly as printed), 0 if absent.
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

async fn get_json(c: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = c.get(url).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn hup(pid: u32) {
    let st = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[tokio::test]
async fn metrics_move_in_both_processes() {
    let backend_admin = free_port();
    let backend = Backend::start(BackendOptions {
        sections: format!("[admin]\nlisten = \"127.0.0.1:{backend_admin}\"\n"),
        ..Default::default()
    })
    .await
    .unwrap();
    let gw_admin = free_port();
    let extra = format!(
        "[admin]\nlisten = \"localhost:{gw_admin}\"\n\n{}",
        key_entry("ops-admin", ADMIN_KEY, "service_admin")
    );
    let gw = Gateway::start(&backend.url, &backend.api_key, &extra)
        .await
        .unwrap();
    let gw_metrics = format!("http://127.0.0.1:{gw_admin}/metrics");
    let be_metrics = format!("http://127.0.0.1:{backend_admin}/metrics");
    let before_gw = scrape(&gw_metrics).await;
    let before_be = scrape(&be_metrics).await;

    let admin = keyed(ADMIN_KEY);
    let list =
        r#"gatehouse_requests_total{action="sandbox:list",outcome="forwarded",status="2xx"}"#;
    let create =
        r#"gatehouse_requests_total{action="sandbox:create",outcome="forwarded",status="2xx"}"#;
    let bad_key = r#"gatehouse_auth_failures_total{method="api_key",reason="INVALID_API_KEY"}"#;
    for _ in 0..3 {
        let (s, _) = get_json(&admin, &gw.at("/v1/sandboxes")).await;
        assert_eq!(s, 200);
    }
    let (s, _) = get_json(&keyed("not-a-key-at-all-000000"), &gw.at("/v1/sandboxes")).await;
    assert_eq!(s, 401);
    let id = create_id(&admin, &gw.url, &httpd_body(json!({"purpose": "metrics"})))
        .await
        .unwrap();

    let after_gw = scrape(&gw_metrics).await;
    let after_be = scrape(&be_metrics).await;
    assert_eq!(series(&after_gw, list) - series(&before_gw, list), 3.0);
    assert_eq!(series(&after_gw, create) - series(&before_gw, create), 1.0);
    let bad = series(&after_gw, bad_key) - series(&before_gw, bad_key);
    assert_eq!(bad, 1.0, "{after_gw}");
    let added = "gatehouse_gateway_added_seconds_count";
    assert!(series(&after_gw, added) >= series(&before_gw, added) + 5.0);
    let creates = "gatehouse_backend_create_seconds_count";
    assert_eq!(
        series(&after_be, creates) - series(&before_be, creates),
        1.0
    );
    let sandboxes: f64 = after_be
        .lines()
        .filter(|l| l.starts_with("gatehouse_backend_sandboxes{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(sandboxes, 1.0, "{after_be}");
    // The admin listener serves only what it says it serves; no secret in the exposition.
    assert!(!after_gw.contains(ADMIN_KEY) && !after_gw.contains(&backend.api_key));
    assert_eq!(delete(&admin, &gw.url, &id).await, 204);
    // The access log: one info line per request with the action, no key (written in
    // batches, at the latest 100 ms later).
    let log = gw.settled_log();
    assert!(
        log.contains("sandbox:create") && log.contains("INFO"),
        "{log}"
    );
    assert!(!gw.exposes(ADMIN_KEY));
    // Normal operation is calm: nothing at ERROR in either process.
    for (who, log) in [("gateway", log), ("backend", backend.log())] {
        let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
        assert!(errors.is_empty(), "{who}: {errors:?}");
    }
}

#[tokio::test]
async fn probes_tell_liveness_from_readiness() {
    let mut backend = Backend::start(BackendOptions::default()).await.unwrap();
    let gw = Gateway::start(&backend.url, &backend.api_key, "")
        .await
        .unwrap();
    let c = reqwest::Client::new();
    let (s, v) = get_json(&c, &gw.at("/readyz")).await;
    assert_eq!((s, &v["checks"]["backend"]), (200, &json!("ok")), "{v}");
    let (s, v) = get_json(&c, &backend.at("/readyz")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["checks"], json!({"store": "ok", "engine": "ok"}));
    assert_eq!(get_json(&c, &backend.at("/livez")).await.0, 200);

    backend.stop();
    let (s, v) = get_json(&c, &gw.at("/livez")).await;
    assert_eq!((s, v), (200, json!({"status": "alive"})));
    let (s, v) = get_json(&c, &gw.at("/readyz")).await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["checks"]["backend"], "unreachable");
    assert_eq!(get_json(&c, &gw.at("/healthz")).await.0, 503);
}

#[tokio::test]
async fn sighup_reloads_keys_and_keeps_a_bad_file_out() {
    let backend = Backend::start(BackendOptions::default()).await.unwrap();
    let extra = key_entry("ops-admin", ADMIN_KEY, "service_admin");
    let gw = Gateway::start(&backend.url, &backend.api_key, &extra)
        .await
        .unwrap();
    let pid = gw.pid().unwrap();
    let url = gw.at("/v1/sandboxes");
    assert_eq!(get_json(&keyed(NEW_KEY), &url).await.0, 401);

    let original = std::fs::read_to_string(&gw.config_path).unwrap();
    let added = format!("{original}\n{}", key_entry("ops-new", NEW_KEY, "read_only"));
    std::fs::write(&gw.config_path, &added).unwrap();
    hup(pid);
    wait_for("the new key", Duration::from_secs(10), || {
        let url = url.clone();
        async move { (get_json(&keyed(NEW_KEY), &url).await.0 == 200).then_some(()) }
    })
    .await
    .unwrap();

    // A role the table does not define: refused, the running keys stay.
    let broken = format!(
        "{added}\n{}",
        key_entry("ops-bad", "x-key-0123456789abcdef", "nope")
    );
    std::fs::write(&gw.config_path, broken).unwrap();
    hup(pid);
    wait_for("the refusal in the log", Duration::from_secs(10), || {
        let log = gw.log();
        async move { log.contains("reload refused").then_some(()) }
    })
    .await
    .unwrap();
    assert!(gw.log().contains("auth.api_keys[2].role"), "{}", gw.log());
    assert_eq!(get_json(&keyed(NEW_KEY), &url).await.0, 200);
    assert_eq!(get_json(&keyed(ADMIN_KEY), &url).await.0, 200);

    // The backend survives SIGHUP too.
    hup(backend.pid().unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        get_json(&backend.client(), &backend.at("/health")).await.0,
        200
    );
    assert!(backend.log().contains("SIGHUP"), "{}", backend.log());
}

fn scratch() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("gatehouse-ops-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gatehouse(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin_dir().join("gatehouse"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env_remove("GATEHOUSE_CONFIG")
        .current_dir(gatehouse_tests::repo_root())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_checks_explains_and_makes_keys() {
    let (code, out, _) = gatehouse(&[
        "policy",
        "explain",
        "--role",
        "read_only",
        "DELETE",
        "/v1/sandboxes/x",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("decision: DENY"));
    let (code, out, _) = gatehouse(&[
        "policy",
        "explain",
        "--role",
        "read_only",
        "GET",
        "/v1/sandboxes",
    ]);
    assert_eq!(code, 0, "{out}");
    for path in ["/livez", "/readyz", "/healthz", "/auth/me", "/console/"] {
        let (code, out, _) = gatehouse(&["policy", "explain", "--role", "read_only", "GET", path]);
        assert_eq!(code, 0, "{path}: {out}");
        assert!(out.contains("the gateway's own route"), "{out}");
    }
    let (code, out, _) = gatehouse(&["policy", "check", "policies/roles.toml"]);
    assert_eq!(code, 0);
    assert!(out.contains("operator"), "{out}");

    let dir = scratch();
    let file = dir.join("gw.toml");
    std::fs::write(
        &file,
        format!(
            "[upstream]\nurl = \"http://127.0.0.1:1\"\napi_key = \"k\"\n[policy]\npath = \"{}\"\n{}",
            gatehouse_tests::repo_root().join("policies/roles.toml").display(),
            key_entry("ci", "some-key-0123456789abcdef", "operatr")
        ),
    )
    .unwrap();
    let (code, _, err) = gatehouse(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("gw.toml") && err.contains("auth.api_keys[0].role"),
        "{err}"
    );
    assert!(
        !err.contains("backtrace") && err.lines().count() == 1,
        "{err}"
    );

    // Any key from the environment, named in its error with its variable, in plain words.
    let out = Command::new(bin_dir().join("gatehouse"))
        .args(["config", "check", file.to_str().unwrap()])
        .env("GATEHOUSE__SERVER__THREADS", "many")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("gw.toml") && err.contains("`server.threads`"),
        "{err}"
    );
    assert!(err.contains("(set by GATEHOUSE__SERVER__THREADS)"), "{err}");
    assert!(
        err.contains("expected a whole number") && !err.contains("usize"),
        "{err}"
    );

    let (code, out, _) = gatehouse(&["keys", "new", "ci-bot", "--role", "operator"]);
    assert_eq!(code, 0);
    let key = out.lines().find(|l| l.starts_with("ghk_")).unwrap();
    let digest = hex::encode(Sha256::digest(key));
    assert!(out.contains(&format!("sha256 = \"{digest}\"")), "{out}");
    assert!(out.contains("role = \"operator\""));
    let (code, _, err) = gatehouse(&["keys", "new", "ci-bot", "--role", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("expected one of"), "{err}");
}

#[test]
fn a_port_in_use_fails_the_start() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let dir = scratch();
    let file = dir.join("gw.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[upstream]\nurl = \"http://127.0.0.1:1\"\napi_key = \"k\"\n[policy]\npath = \"{}\"\n",
            gatehouse_tests::repo_root().join("policies/roles.toml").display()
        ),
    )
    .unwrap();
    let out = Command::new(bin_dir().join("gatehouse"))
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.listen: cannot listen on"), "{err}");
    assert!(!err.contains("gatehouse ready"), "{err}");
}

#[tokio::test]
async fn one_trace_spans_the_gateway_and_the_backend() {
    let rx = gatehouse_tests::otlp::OtlpReceiver::start().await.unwrap();
    let telemetry = format!("[telemetry]\notlp_endpoint = \"{}\"\n", rx.endpoint);
    let backend = Backend::start(BackendOptions {
        sections: telemetry.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let extra = format!(
        "{telemetry}\n{}",
        key_entry("ops-admin", ADMIN_KEY, "service_admin")
    );
    let gw = Gateway::start(&backend.url, &backend.api_key, &extra)
        .await
        .unwrap();
    // The client's W3C trace context: the gateway's spans join it and pass it on.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = keyed(ADMIN_KEY)
        .get(gw.at("/v1/sandboxes"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let spans = wait_for("spans of both processes", Duration::from_secs(15), || {
        let spans: Vec<_> = rx
            .spans()
            .into_iter()
            .filter(|s| s.trace_id.eq_ignore_ascii_case(trace_id))
            .collect();
        let both = spans.iter().any(|s| s.service == "gatehouse")
            && spans.iter().any(|s| s.service == "gatehouse-backend");
        async move { both.then_some(spans) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; received: {:?}", rx.spans()));
    let names = |svc: &str| -> Vec<String> {
        spans
            .iter()
            .filter(|s| s.service == svc)
            .map(|s| s.name.clone())
            .collect()
    };
    let gw_names = names("gatehouse");
    for want in ["request", "authn", "authz", "scope", "upstream"] {
        assert!(gw_names.iter().any(|n| n == want), "{want} in {gw_names:?}");
    }
    assert!(names("gatehouse-backend").iter().any(|n| n == "request"));
}

/// A CGI at `/cgi-bin/slow` that answers after one second, and `/index.html` (httpd on
/// port 8080).
const SLOW_SCRIPT: &str = concat!(
    "mkdir -p /tmp/www/cgi-bin; echo ok > /tmp/www/index.html; ",
    "printf '%s\\n' '#!/bin/sh' 'sleep 1' 'printf \"Content-Type: text/plain\\r\\n\\r\\nslow done\\n\"' > /tmp/www/cgi-bin/slow; ",
    "chmod +x /tmp/www/cgi-bin/slow; exec httpd -f -p 8080 -h /tmp/www"
);

#[tokio::test]
async fn sigterm_drains_requests_in_flight() {
    let backend = Backend::start(BackendOptions::default()).await.unwrap();
    let extra = key_entry("ops-admin", ADMIN_KEY, "service_admin");
    // The drain window is the grace period (the generated file says 0; the environment
    // beats the file).
    let grace = [("GATEHOUSE__SERVER__GRACE_PERIOD_SECONDS", "3")];
    let gw = Gateway::start_with_env(free_port(), &backend.url, &backend.api_key, &extra, &grace)
        .await
        .unwrap();
    let admin = keyed(ADMIN_KEY);
    let id = create_id(
        &admin,
        &gw.url,
        &gatehouse_tests::sandbox::script_body(SLOW_SCRIPT),
    )
    .await
    .unwrap();
    let index = gw.at(&format!("/v1/sandboxes/{id}/proxy/8080/index.html"));
    wait_for("the sandbox's httpd", Duration::from_secs(30), || {
        let (admin, index) = (admin.clone(), index.clone());
        async move {
            let r = admin.get(&index).send().await.ok()?;
            (r.status() == 200).then_some(())
        }
    })
    .await
    .unwrap();

    let slow = gw.at(&format!("/v1/sandboxes/{id}/proxy/8080/cgi-bin/slow"));
    let in_flight = tokio::spawn({
        let admin = admin.clone();
        async move {
            let r = admin.get(&slow).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let term = Command::new("kill")
        .args(["-TERM", &gw.pid().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let (status, body) = in_flight.await.unwrap();
    assert_eq!((status, body.trim()), (200, "slow done"));
    // Then the gateway is gone: new connections are refused.
    let fresh = reqwest::Client::new();
    wait_for("the gateway to exit", Duration::from_secs(10), || {
        let (fresh, url) = (fresh.clone(), gw.at("/livez"));
        async move { fresh.get(&url).send().await.is_err().then_some(()) }
    })
    .await
    .unwrap();
    assert_eq!(delete(&backend.client(), &backend.url, &id).await, 204);
}

#[tokio::test]
async fn readiness_waits_for_the_identity_provider() {
    let st = gatehouse_tests::stacks::OidcStack::start("", "")
        .await
        .unwrap();
    let c = reqwest::Client::new();
    let url = st.gw.at("/readyz");
    let v = wait_for("the gateway to be ready", Duration::from_secs(15), || {
        let (c, url) = (c.clone(), url.clone());
        async move {
            let (s, v) = get_json(&c, &url).await;
            (s == 200).then_some(v)
        }
    })
    .await
    .unwrap();
    assert_eq!(
        v["checks"],
        json!({"backend": "ok", "idp_discovery": "ok", "store": "ok"})
    );
    let log = st.gw.log();
    assert!(log.contains("OpenID provider discovered"), "{log}");
    assert!(!log.contains(" ERROR "), "{log}");
}
