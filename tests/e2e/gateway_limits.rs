//! The automation limits end to end, through a real gateway in front of
//! `gatehouse-backend` on a real Docker engine: idempotent create (also when the first
//! answer was lost mid-flight), quotas per team, rate limits with the real Python SDK
//! retrying after a 429, and 503 + `Retry-After` when the store behind personal keys is
//! down.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::api::{host_port, item_ids, send_req};
use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::postgres::Postgres;
use gatehouse_tests::sandbox::httpd_body;
use gatehouse_tests::sdk;
use gatehouse_tests::stacks::{KeyedStack, ADMIN_KEY, TEAMB_KEY};
use gatehouse_tests::{free_port, repo_root};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const KEY: &str = "OPEN-SANDBOX-API-KEY";

fn body(token: &str) -> Value {
    httpd_body(json!({ "suite": token }))
}

async fn create(gw: &Gateway, key: &str, idem: Option<&str>, body: &Value) -> (u16, Value) {
    let mut rb = reqwest::Client::new()
        .post(gw.at("/v1/sandboxes"))
        .header(KEY, key)
        .json(body);
    if let Some(k) = idem {
        rb = rb.header("Idempotency-Key", k);
    }
    send_req(rb).await
}

/// The ids of team-b's sandboxes tagged `suite=token`, as the team-b key lists them.
async fn listed(gw: &Gateway, token: &str) -> Vec<String> {
    let rb = reqwest::Client::new()
        .get(gw.at(&format!(
            "/v1/sandboxes?metadata=suite%3D{token}&pageSize=100"
        )))
        .header(KEY, TEAMB_KEY);
    let (s, v) = send_req(rb).await;
    assert_eq!(s, 200, "{v}");
    let mut ids = item_ids(&v);
    ids.sort();
    ids
}

async fn delete(gw: &Gateway, key: &str, id: &str) -> u16 {
    let rb = reqwest::Client::new()
        .delete(gw.at(&format!("/v1/sandboxes/{id}")))
        .header(KEY, key);
    send_req(rb).await.0
}

/// Sends a create with `idem` on a raw connection and closes it as soon as the request
/// is written, before any answer: the client never learns what happened.
async fn create_and_hang_up(gw: &Gateway, idem: &str, body: &Value) {
    let text = body.to_string();
    let addr = host_port(&gw.url).to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "POST /v1/sandboxes HTTP/1.1\r\nHost: {addr}\r\n{KEY}: {TEAMB_KEY}\r\n\
         Idempotency-Key: {idem}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{text}",
        text.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    s.flush().await.unwrap();
    drop(s);
}

#[tokio::test]
async fn a_retried_create_with_the_same_key_makes_one_sandbox() {
    let st = KeyedStack::start().await.unwrap();
    let gw = &st.gw;
    let token = uuid::Uuid::new_v4().simple().to_string();
    let b = body(&token);

    // The first create and its retry: one sandbox, the same answer.
    let (s1, first) = create(gw, TEAMB_KEY, Some("create-1"), &b).await;
    assert_eq!(s1, 202, "{first}");
    let (s2, again) = create(gw, TEAMB_KEY, Some("create-1"), &b).await;
    assert_eq!((s2, &again), (202, &first));
    assert_eq!(
        listed(gw, &token).await,
        vec![first["id"].as_str().unwrap()]
    );

    // The same key with another body is refused, clearly.
    let (s, e) = create(gw, TEAMB_KEY, Some("create-1"), &body("other")).await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(e["code"], "GATEWAY::IDEMPOTENCY_KEY_REUSED");
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("different request body"));

    // Unusable keys.
    for bad in ["", &"k".repeat(256)] {
        let (s, e) = create(gw, TEAMB_KEY, Some(bad), &b).await;
        assert_eq!(s, 400, "{e}");
        assert_eq!(e["code"], "GATEWAY::INVALID_IDEMPOTENCY_KEY");
    }

    // Keys are scoped per principal: the admin's "create-1" is another key.
    let (s, other) = create(gw, ADMIN_KEY, Some("create-1"), &b).await;
    assert_eq!(s, 202, "{other}");
    assert_ne!(other["id"], first["id"]);
    assert_eq!(
        delete(gw, ADMIN_KEY, other["id"].as_str().unwrap()).await,
        204
    );

    // The first answer lost mid-flight: the client hangs up right after sending; its
    // retry gets the sandbox the first request made, not a second one.
    create_and_hang_up(gw, "create-2", &b).await;
    let (s, retried) = create(gw, TEAMB_KEY, Some("create-2"), &b).await;
    assert_eq!(s, 202, "{retried}");
    let mut want = vec![
        first["id"].as_str().unwrap().to_string(),
        retried["id"].as_str().unwrap().to_string(),
    ];
    want.sort();
    assert_eq!(listed(gw, &token).await, want);

    // Concurrent duplicates wait for the first and share its answer.
    let racing: Vec<_> = (0..3)
        .map(|_| {
            let b = b.clone();
            let url = gw.at("/v1/sandboxes");
            tokio::spawn(async move {
                let rb = reqwest::Client::new()
                    .post(url)
                    .header(KEY, TEAMB_KEY)
                    .header("Idempotency-Key", "create-3")
                    .json(&b);
                send_req(rb).await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for r in racing {
        let (s, v) = r.await.unwrap();
        assert_eq!(s, 202, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(listed(gw, &token).await.len(), 3);
    assert!(!gw.exposes(TEAMB_KEY));
}

#[tokio::test]
async fn a_team_quota_of_two_refuses_the_third_create_until_a_delete() {
    let st = KeyedStack::start().await.unwrap();
    let gw = &st.gw;
    let token = uuid::Uuid::new_v4().simple().to_string();
    let quota_url = gw.at("/gatehouse/v1/quotas/teams/team-b");
    let put = |key: &'static str, v: Value| {
        let url = quota_url.clone();
        async move { send_req(reqwest::Client::new().put(url).header(KEY, key).json(&v)).await }
    };
    let (s, e) = put(TEAMB_KEY, json!({"maxSandboxes": 2})).await;
    assert_eq!(s, 403, "operators do not set quotas: {e}");
    let (s, q) = put(ADMIN_KEY, json!({"maxSandboxes": 2})).await;
    assert_eq!(s, 200, "{q}");
    let (s, e) = put(ADMIN_KEY, json!({"maxSandboxes": "two"})).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (400, Some("GATEWAY::INVALID_REQUEST"))
    );

    let b = body(&token);
    let (_, one) = create(gw, TEAMB_KEY, None, &b).await;
    let (_, two) = create(gw, TEAMB_KEY, None, &b).await;
    assert!(
        one["id"].is_string() && two["id"].is_string(),
        "{one} {two}"
    );
    let (s, e) = create(gw, TEAMB_KEY, None, &b).await;
    assert_eq!(s, 403, "{e}");
    assert_eq!(e["code"], "GATEWAY::QUOTA_EXCEEDED");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("Team 'team-b'") && msg.contains("maxSandboxes is 2; 2 in use"),
        "{msg}"
    );
    assert_eq!(listed(gw, &token).await.len(), 2);

    // Callers see their own quota and use.
    let (s, mine) = send_req(
        reqwest::Client::new()
            .get(gw.at("/gatehouse/v1/quotas"))
            .header(KEY, TEAMB_KEY),
    )
    .await;
    assert_eq!(s, 200, "{mine}");
    assert_eq!(mine["team"], "team-b");
    assert_eq!(mine["teamLimits"]["maxSandboxes"], 2);
    assert_eq!(mine["teamUsage"]["sandboxes"], 2);

    // A delete frees the slot.
    assert_eq!(
        delete(gw, TEAMB_KEY, one["id"].as_str().unwrap()).await,
        204
    );
    let (s, three) = create(gw, TEAMB_KEY, None, &b).await;
    assert_eq!(s, 202, "{three}");
    // The admin is not bound by team quotas.
    let (s, admin) = create(gw, ADMIN_KEY, None, &b).await;
    assert_eq!(s, 202, "{admin}");
    assert_eq!(
        delete(gw, ADMIN_KEY, admin["id"].as_str().unwrap()).await,
        204
    );
    let denials: Vec<Value> = gw
        .audit_events()
        .into_iter()
        .filter(|e| e["reason"] == "GATEWAY::QUOTA_EXCEEDED")
        .collect();
    assert_eq!(denials.len(), 1, "{denials:?}");
}

#[tokio::test]
async fn a_burst_over_the_rate_limit_gets_429_and_the_sdk_retries_through_it() {
    sdk::python().unwrap();
    let st = KeyedStack::start_with("[rate_limits.roles.operator]\nper_second = 1\nburst = 3\n")
        .await
        .unwrap();
    let gw = &st.gw;
    let list = || {
        reqwest::Client::new()
            .get(gw.at("/v1/sandboxes"))
            .header(KEY, TEAMB_KEY)
            .send()
    };
    let mut statuses = Vec::new();
    let mut refused = None;
    for _ in 0..8 {
        let r = list().await.unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 && refused.is_none() {
            refused = Some(r);
        }
    }
    assert!(statuses.starts_with(&[200, 200, 200]), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    let r = refused.unwrap();
    let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string());
    let retry: u64 = h("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(h("ratelimit-limit").as_deref(), Some("3"));
    assert_eq!(h("ratelimit-remaining").as_deref(), Some("0"));
    assert!(h("ratelimit-reset").is_some());
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["code"], "GATEWAY::RATE_LIMITED");
    // The admin has no limit configured for its role.
    let admin = reqwest::Client::new()
        .get(gw.at("/v1/sandboxes"))
        .header(KEY, ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);

    // The real SDK, over its limit at once, retries after Retry-After and gets through.
    let out = tokio::process::Command::new(sdk::python().unwrap())
        .arg(repo_root().join("tests/python/sdk_rate_limited.py"))
        .args([host_port(&gw.url), TEAMB_KEY, "8"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(seen["ok"], 8, "{seen}");
    let retries = seen["retries"].as_array().unwrap();
    assert!(!retries.is_empty(), "the SDK never hit the limit: {seen}");
    assert!(retries.iter().all(|r| r["status"] == 429), "{seen}");
    assert!(
        retries
            .iter()
            .all(|r| r["backoff_s"].as_f64().unwrap() >= 1.0),
        "the SDK honoured Retry-After: {seen}"
    );
}

#[tokio::test]
async fn an_uncached_personal_key_gets_503_while_the_store_is_down() {
    use gatehouse_tests::principals::{alice, TRUSTED_PROXY_SECTION};
    let mut pg = Postgres::start().unwrap();
    let extra = format!(
        "{TRUSTED_PROXY_SECTION}\n[store]\ntype = \"postgres\"\nurl = \"{}\"\nretry_ms = 200\n",
        pg.url
    );
    let upstream = format!("http://127.0.0.1:{}", free_port());
    let gw = Gateway::start(&upstream, "backend-key", &extra)
        .await
        .unwrap();
    let (s, created) = send_req(
        alice()
            .post(gw.at("/gatehouse/v1/keys"))
            .json(&json!({"name": "ci"})),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let secret = created["key"].as_str().unwrap().to_string();

    pg.pause().unwrap();
    let r = reqwest::Client::new()
        .get(gw.at("/v1/sandboxes"))
        .header(KEY, &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(retry.is_some_and(|v| v.parse::<u64>().is_ok()));
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["code"], "GATEWAY::AUTH_UNAVAILABLE");
    assert!(!e["message"].as_str().unwrap().contains(&secret));

    // Back up: the same key authenticates (the backend is a closed port: 502 past auth).
    pg.resume().unwrap();
    let status = gatehouse_tests::wait_for("the store back", Duration::from_secs(20), || async {
        let r = reqwest::Client::new()
            .get(gw.at("/v1/sandboxes"))
            .header(KEY, &secret)
            .send()
            .await
            .ok()?;
        (r.status() != 503).then_some(r.status().as_u16())
    })
    .await
    .unwrap();
    assert_eq!(status, 502);
    assert!(!gw.exposes(&secret));
}
