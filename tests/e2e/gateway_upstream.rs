//! The gateway in front of the real, unchanged upstream `opensandbox-server` 1.1.1: the
//! SDK with the upstream key works unchanged through it, users are scoped by team, the
//! reserved metadata cannot be patched away, and the proxy route (open on upstream) needs
//! credentials at the gateway.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::upstream::{Upstream, UpstreamOptions};
use gatehouse_tests::{repo_root, test_image, wait_for};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

const TRUSTED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn user(name: &str, team: &str, roles: Option<&str>) -> reqwest::Client {
    let mut h = HeaderMap::new();
    h.insert("X-OpenSandbox-User", HeaderValue::from_str(name).unwrap());
    h.insert("X-OpenSandbox-Team", HeaderValue::from_str(team).unwrap());
    if let Some(r) = roles {
        h.insert("X-OpenSandbox-Roles", HeaderValue::from_str(r).unwrap());
    }
    reqwest::Client::builder()
        .local_address(TRUSTED)
        .default_headers(h)
        .build()
        .unwrap()
}

async fn send(c: &reqwest::Client, method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
    let mut rb = c.request(method.parse().unwrap(), url);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn body(md: Value) -> Value {
    json!({
        "image": {"uri": test_image()},
        "entrypoint": ["httpd", "-f", "-p", "8080", "-h", "/www"],
        "timeout": 600,
        "resourceLimits": {"cpu": "500m", "memory": "128Mi"},
        "metadata": md,
    })
}

#[tokio::test]
async fn gateway_in_front_of_the_real_upstream_server() {
    let up = Upstream::start(UpstreamOptions::default()).await.unwrap();
    let extra = "[auth.trusted_header]\ntrusted_proxies = [\"127.0.0.2/32\"]\n";
    let gw = Gateway::start(&up.url, &up.api_key, extra).await.unwrap();
    let alice = user("alice", "team-a", Some("operator"));
    let bob = user("bob", "team-a", None);
    let carol = user("carol", "team-b", Some("operator"));
    let token = uuid::Uuid::new_v4().simple().to_string();

    // Alice creates through the gateway: the scope is injected, the upstream accepts it.
    let (s, v) = send(
        &alice,
        "POST",
        &gw.at("/v1/sandboxes"),
        Some(&body(json!({"suite": token, "access.team": "team-b"}))),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let a1 = v["id"].as_str().unwrap().to_string();
    let (s, v) = send(&alice, "GET", &gw.at(&format!("/v1/sandboxes/{a1}")), None).await;
    assert_eq!(s, 200, "{v}");
    let team_a = v["metadata"]["access.team"].clone();
    assert!(team_a.as_str().unwrap().starts_with("team-a."), "{v}");
    assert!(
        v["metadata"]["access.owner"]
            .as_str()
            .unwrap()
            .starts_with("alice."),
        "{v}"
    );

    // Scoping holds on the upstream: carol sees nothing of team-a, bob cannot mutate.
    let (s, v) = send(
        &carol,
        "GET",
        &gw.at(&format!("/v1/sandboxes?metadata=suite%3D{token}")),
        None,
    )
    .await;
    assert_eq!((s, &v["pagination"]["totalItems"]), (200, &json!(0)), "{v}");
    let (s, v) = send(
        &alice,
        "GET",
        &gw.at(&format!("/v1/sandboxes?metadata=suite%3D{token}")),
        None,
    )
    .await;
    assert_eq!((s, &v["pagination"]["totalItems"]), (200, &json!(1)), "{v}");
    let (s, v) = send(&bob, "GET", &gw.at("/v1/sandboxes?pageSize=200"), None).await;
    assert_eq!(s, 200);
    let items = v["items"].as_array().unwrap();
    assert!(
        items.iter().any(|i| i["id"] == a1.as_str()),
        "bob sees his team's sandbox"
    );
    assert!(
        items.iter().all(|i| i["metadata"]["access.team"] == team_a),
        "and only his team's"
    );
    for (m, path) in [
        ("GET", format!("/v1/sandboxes/{a1}")),
        ("DELETE", format!("/v1/sandboxes/{a1}")),
        ("GET", format!("/v1/sandboxes/{a1}/endpoints/8080")),
    ] {
        let (s, v) = send(&carol, m, &gw.at(&path), None).await;
        assert_eq!(s, 404, "carol {m} {path}: {v}");
    }
    let (s, _) = send(&bob, "DELETE", &gw.at(&format!("/v1/sandboxes/{a1}")), None).await;
    assert_eq!(s, 403);
    // The upstream lets a patch rewrite access.*; the gateway does not.
    let (s, v) = send(
        &alice,
        "PATCH",
        &gw.at(&format!("/v1/sandboxes/{a1}/metadata")),
        Some(&json!({"access.team": "team-b"})),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str().unwrap_or("")),
        (400, "GATEWAY::RESERVED_METADATA")
    );
    let (s, _) = send(
        &alice,
        "PATCH",
        &gw.at(&format!("/v1/sandboxes/{a1}/metadata")),
        Some(&json!({"stage": "qa"})),
    )
    .await;
    assert_eq!(s, 200);

    // The proxy route is open on the upstream, closed at the gateway without credentials.
    let direct = reqwest::get(up.at(&format!("/v1/sandboxes/{a1}/proxy/8080/index.html")))
        .await
        .unwrap();
    assert_ne!(direct.status(), 401, "upstream leaves its proxy route open");
    let (s, _) = send(
        &reqwest::Client::new(),
        "GET",
        &gw.at(&format!("/v1/sandboxes/{a1}/proxy/8080/index.html")),
        None,
    )
    .await;
    assert_eq!(s, 401);
    let page = wait_for(
        "the sandbox through the gateway",
        Duration::from_secs(30),
        || async {
            let (s, v) = send(
                &alice,
                "GET",
                &gw.at(&format!("/v1/sandboxes/{a1}/proxy/8080/index.html")),
                None,
            )
            .await;
            (s == 200).then_some(v)
        },
    )
    .await
    .unwrap();
    assert!(page
        .as_str()
        .unwrap_or("")
        .contains("hello from a gatehouse sandbox"));
    let (_, v) = send(
        &alice,
        "GET",
        &gw.at(&format!(
            "/v1/sandboxes/{a1}/endpoints/8080?use_server_proxy=true"
        )),
        None,
    )
    .await;
    assert_eq!(
        v["endpoint"],
        format!(
            "{}/v1/sandboxes/{a1}/proxy/8080",
            gw.url.trim_start_matches("http://")
        )
    );

    // The real SDK with the upstream's own key works unchanged through the gateway.
    let python = std::env::var("GATEHOUSE_PYTHON")
        .expect("GATEHOUSE_PYTHON is not set: run through `make test`");
    let sdk_token = uuid::Uuid::new_v4().simple().to_string();
    let (s, v) = send(
        &up.client(),
        "POST",
        &gw.at("/v1/sandboxes"),
        Some(&body(json!({"suite": sdk_token}))),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let s1 = v["id"].as_str().unwrap().to_string();
    let out = tokio::process::Command::new(&python)
        .arg(repo_root().join("tests/python/sdk_manager.py"))
        .args([
            gw.url.trim_start_matches("http://"),
            &up.api_key,
            &s1,
            &sdk_token,
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "SDK failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    assert_eq!(seen["listed_ids"], json!([s1]), "{seen}");

    let (s, _) = send(
        &alice,
        "DELETE",
        &gw.at(&format!("/v1/sandboxes/{a1}")),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let events = gw.audit_events();
    assert!(events.iter().any(|e| e["action"] == "sandbox:create"
        && e["sandbox_id"] == a1.as_str()
        && e["principal"]["subject"] == "alice"));
    assert!(events.iter().any(|e| e["action"] == "sandbox:delete"
        && e["sandbox_id"] == s1.as_str()
        && e["principal"]["auth_method"] == "backend_key"));
    assert!(!gw.audit_raw().contains(&up.api_key) && !gw.log().contains(&up.api_key));
}
