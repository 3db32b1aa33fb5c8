//! The gateway's durable audit trail, end to end: a real gateway process writing to a real
//! PostgreSQL that goes away, a gateway killed with SIGKILL while events wait in its spool,
//! and `GET /gatehouse/v1/audit` as each role sees it (SQLite, the default store).
//!
//! The backend is a closed port: every audited request here is either refused by the
//! gateway (a denial) or a mutation the gateway forwarded and saw fail (an error), both of
//! which the gateway audits without needing a backend.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::postgres::Postgres;
use gatehouse_tests::{free_port, wait_for};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::time::Duration;

const ADMIN: &str = "admin-key-0123456789";
const VIEWER_A: &str = "viewer-a-key-0123456789";
const VIEWER_B: &str = "viewer-b-key-0123456789";
const OP_A: &str = "operator-a-key-0123456789";

fn keys_toml() -> String {
    let k = |name: &str, key: &str, role: &str, team: Option<&str>| {
        format!(
            "[[auth.api_keys]]\nname = \"{name}\"\nsha256 = \"{}\"\nrole = \"{role}\"\n{}\n",
            hex::encode(Sha256::digest(key.as_bytes())),
            team.map(|t| format!("team = \"{t}\"\n"))
                .unwrap_or_default()
        )
    };
    [
        k("admin", ADMIN, "service_admin", None),
        k("viewer-a", VIEWER_A, "read_only", Some("team-a")),
        k("viewer-b", VIEWER_B, "read_only", Some("team-b")),
        k("op-a", OP_A, "operator", Some("team-a")),
    ]
    .concat()
}

fn dead_upstream() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

async fn delete(gw: &Gateway, key: &str, id: &str) -> u16 {
    reqwest::Client::new()
        .delete(gw.at(&format!("/v1/sandboxes/{id}")))
        .header("OPEN-SANDBOX-API-KEY", key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn audit(gw: &Gateway, key: &str, query: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(gw.at(&format!("/gatehouse/v1/audit{query}")))
        .header("OPEN-SANDBOX-API-KEY", key)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Every event the admin can page through.
async fn all_events(gw: &Gateway) -> Option<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, body) = audit(gw, ADMIN, &format!("?limit=1000{cursor}")).await;
        if status != 200 {
            return None;
        }
        out.extend(body["items"].as_array().cloned().unwrap_or_default());
        match body["nextCursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return Some(out),
        }
    }
}

async fn wait_events(gw: &Gateway, n: usize) -> Vec<Value> {
    let r = wait_for(
        &format!("{n} audit rows"),
        Duration::from_secs(30),
        || async { all_events(gw).await.filter(|e| e.len() >= n) },
    )
    .await;
    let events = r.unwrap_or_else(|e| panic!("{e}; log: {}", gw.log()));
    assert_eq!(events.len(), n, "exactly {n} rows");
    events
}

/// The next line of a child's output, as JSON (10 s at most).
async fn next_json(lines: &mut tokio::io::BufReader<tokio::process::ChildStdout>) -> Value {
    use tokio::io::AsyncBufReadExt;
    let mut buf = String::new();
    tokio::time::timeout(Duration::from_secs(10), lines.read_line(&mut buf))
        .await
        .unwrap()
        .unwrap();
    serde_json::from_str(&buf).unwrap()
}

fn spooled(gw: &Gateway) -> usize {
    std::fs::read_to_string(gw.dir().join("audit-spool/audit.spool"))
        .unwrap_or_default()
        .lines()
        .count()
}

#[tokio::test]
async fn audit_survives_a_postgres_outage_and_a_sigkilled_gateway() {
    let mut pg = Postgres::start().unwrap();
    let extra = format!(
        "{}\n[store]\ntype = \"postgres\"\nurl = \"{}\"\nretry_ms = 200\n",
        keys_toml(),
        pg.url
    );
    let mut gw = Gateway::start(&dead_upstream(), "backend-key", &extra)
        .await
        .unwrap();

    for n in 0..3 {
        assert_eq!(delete(&gw, ADMIN, &format!("before-{n}")).await, 502);
    }
    wait_events(&gw, 3).await;

    // N mutations while PostgreSQL is down: answered as usual, spooled, not lost.
    pg.pause().unwrap();
    const N: usize = 10;
    for n in 0..N {
        let started = std::time::Instant::now();
        assert_eq!(delete(&gw, ADMIN, &format!("during-{n}")).await, 502);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the request waited for the store"
        );
    }
    let (status, body) = audit(&gw, ADMIN, "").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "GATEWAY::STORE_UNAVAILABLE");
    wait_for("events in the spool", Duration::from_secs(20), || async {
        (spooled(&gw) == N).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {} spooled; log: {}", spooled(&gw), gw.log()));

    // Killed with the events only in its spool; restarted while PostgreSQL is still down.
    gw.kill();
    gw.restart().await.unwrap();
    assert_eq!(spooled(&gw), N);
    pg.resume().unwrap();

    let events = wait_events(&gw, 3 + N).await;
    let ids: HashSet<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), 3 + N, "no duplicates");
    let during: Vec<&str> = events
        .iter()
        .filter_map(|e| e["sandbox_id"].as_str())
        .filter(|s| s.starts_with("during-"))
        .collect();
    assert_eq!(during.len(), N);
    assert!(events
        .iter()
        .all(|e| e["outcome"] == "error" && e["action"] == "sandbox:delete"));
    // The replay emptied the spool; later events go straight to the table.
    wait_for("an empty spool", Duration::from_secs(10), || async {
        (spooled(&gw) == 0).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(delete(&gw, ADMIN, "after").await, 502);
    wait_events(&gw, 4 + N).await;
    assert!(!gw.exposes(ADMIN));
}

#[tokio::test]
async fn audit_api_scopes_filters_pages_and_exports() {
    let gw = Gateway::start(&dead_upstream(), "backend-key", &keys_toml())
        .await
        .unwrap();
    for n in 0..4 {
        assert_eq!(delete(&gw, ADMIN, &format!("adm-{n}")).await, 502);
    }
    for n in 0..3 {
        assert_eq!(delete(&gw, VIEWER_A, &format!("a-{n}")).await, 403);
    }
    for n in 0..2 {
        assert_eq!(delete(&gw, VIEWER_B, &format!("b-{n}")).await, 403);
    }
    let all = wait_events(&gw, 9).await;
    // Newest first.
    let times: Vec<&str> = all.iter().map(|e| e["time"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);
    assert_eq!(all[0]["path"], "/v1/sandboxes/b-1");

    // Filters.
    let (s, b) = audit(&gw, ADMIN, "?outcome=denied").await;
    assert_eq!((s, b["items"].as_array().unwrap().len()), (200, 5));
    let (_, b) = audit(&gw, ADMIN, "?team=team-a").await;
    assert_eq!(b["items"].as_array().unwrap().len(), 3);
    let (_, b) = audit(&gw, ADMIN, "?actor=key:viewer-b&outcome=denied").await;
    assert_eq!(b["items"].as_array().unwrap().len(), 2);
    let (_, b) = audit(&gw, ADMIN, "?sandbox=adm-2&action=sandbox:delete").await;
    assert_eq!(b["items"].as_array().unwrap().len(), 1, "{b}");
    let (_, b) = audit(
        &gw,
        ADMIN,
        "?since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z",
    )
    .await;
    assert_eq!(b["items"].as_array().unwrap().len(), 0);

    // Keyset pages of 4: 4, 4, 1, in order, no overlap.
    let mut seen = Vec::new();
    let mut q = "?limit=4".to_string();
    let mut sizes = Vec::new();
    loop {
        let (s, b) = audit(&gw, ADMIN, &q).await;
        assert_eq!(s, 200);
        let items = b["items"].as_array().unwrap();
        sizes.push(items.len());
        seen.extend(items.iter().map(|e| e["id"].as_str().unwrap().to_string()));
        match b["nextCursor"].as_str() {
            Some(c) => q = format!("?limit=4&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(sizes, [4, 4, 1]);
    let ids: Vec<String> = all
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen, ids);

    // JSON Lines, by parameter and by Accept.
    let client = reqwest::Client::new();
    for (q, accept) in [("?format=jsonl", "*/*"), ("", "application/x-ndjson")] {
        let r = client
            .get(gw.at(&format!("/gatehouse/v1/audit{q}")))
            .header("OPEN-SANDBOX-API-KEY", ADMIN)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], "application/x-ndjson");
        let text = r.text().await.unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 9);
    }

    // An operator sees their team's events only; other roles nothing.
    let (s, b) = audit(&gw, OP_A, "").await;
    assert_eq!(s, 200);
    let items = b["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|e| e["principal"]["team"] == "team-a"));
    let (s, b) = audit(&gw, OP_A, "?team=team-b").await;
    assert_eq!((s, b["code"].as_str()), (403, Some("GATEWAY::FORBIDDEN")));
    let (s, _) = audit(&gw, VIEWER_A, "").await;
    assert_eq!(s, 403);
    let r = client
        .get(gw.at("/gatehouse/v1/audit"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Bad input: 400 in the API's error shape.
    for q in [
        "?limit=5000",
        "?limit=0",
        "?cursor=garbage",
        "?outcome=maybe",
        "?since=now",
        "?colour=red",
    ] {
        let (s, b) = audit(&gw, ADMIN, q).await;
        assert_eq!(s, 400, "{q}");
        assert_eq!(b["code"], "GATEWAY::INVALID_QUERY", "{q}");
        assert!(b["message"].as_str().is_some());
    }
    // The CLI reads the same trail from the store the config names.
    let out = std::process::Command::new(gatehouse_tests::bin_dir().join("gatehouse"))
        .arg("--config")
        .arg(&gw.config_path)
        .args(["audit", "query", "--outcome", "denied", "--team", "team-a"])
        .args(["--action", "sandbox:delete"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines
        .iter()
        .all(|e| e["principal"]["subject"] == "key:viewer-a"));

    // `audit tail` prints the newest events, then new ones as they arrive.
    let mut tail = tokio::process::Command::new(gatehouse_tests::bin_dir().join("gatehouse"))
        .arg("--config")
        .arg(&gw.config_path)
        .args(["audit", "tail", "--interval-ms", "100", "--last", "2"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(tail.stdout.take().unwrap());
    let first = next_json(&mut lines).await;
    let _second = next_json(&mut lines).await;
    assert!(first["time"].is_string());
    assert_eq!(delete(&gw, ADMIN, "tailed").await, 502);
    let fresh = next_json(&mut lines).await;
    assert_eq!(fresh["path"], "/v1/sandboxes/tailed");
    tail.kill().await.unwrap();

    // The SQLite store is the default: the file is beside the config.
    assert!(gw.dir().join("gatehouse.db").exists());
    for k in [ADMIN, VIEWER_A, VIEWER_B, OP_A] {
        assert!(!gw.exposes(k));
    }
}

/// Personal keys: created by a user (never above their role), shown once, acting as the
/// user with the key's role, listed without the secret, refused at once once revoked.
#[tokio::test]
async fn personal_keys_act_as_their_creator_until_revoked() {
    use gatehouse_tests::principals::{alice, bob, carol, keyed, TRUSTED_PROXY_SECTION};
    let extra = format!("{}\n{TRUSTED_PROXY_SECTION}", keys_toml());
    let gw = Gateway::start(&dead_upstream(), "backend-key", &extra)
        .await
        .unwrap();
    let keys_url = gw.at("/gatehouse/v1/keys");
    let post = |c: reqwest::Client, body: Value| {
        let url = keys_url.clone();
        async move {
            let r = c.post(url).json(&body).send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // Bad requests and roles above the creator's.
    for (body, status) in [
        (
            serde_json::json!({"name": "ci", "role": "service_admin"}),
            403,
        ),
        (serde_json::json!({"name": "ci", "role": "emperor"}), 400),
        (serde_json::json!({"name": ""}), 400),
        (serde_json::json!({"name": "ci", "expiresInDays": 0}), 400),
        (serde_json::json!({"name": "ci", "team": "team-b"}), 403),
        (serde_json::json!({"name": "ci", "colour": "red"}), 400),
    ] {
        let (s, b) = post(alice(), body.clone()).await;
        assert_eq!(s, status, "{body} -> {b}");
        assert!(
            b["code"]
                .as_str()
                .is_some_and(|c| c.starts_with("GATEWAY::")),
            "{b}"
        );
    }
    let (s, _) = post(bob(), serde_json::json!({"name": "x", "role": "operator"})).await;
    assert_eq!(s, 403, "read_only cannot mint an operator key");
    let anon = reqwest::Client::new()
        .post(&keys_url)
        .json(&serde_json::json!({"name": "x"}));
    assert_eq!(anon.send().await.unwrap().status(), 401);

    // Created once, with alice's identity and role.
    let (s, created) = post(
        alice(),
        serde_json::json!({"name": "ci", "expiresInDays": 7}),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let secret = created["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with("gk_") && secret.len() == 46, "{secret}");
    assert_eq!(created["subject"], "alice");
    assert_eq!(created["team"], "team-a");
    assert_eq!(created["role"], "operator");
    assert!(created["expiresAt"].as_str().is_some());
    let id = created["id"].as_str().unwrap().to_string();

    // The key is alice, from anywhere, with the key's role.
    let me: Value = keyed(&secret)
        .get(gw.at("/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["subject"], "alice");
    assert_eq!(me["team"], "team-a");
    assert_eq!(me["role"], "operator");
    assert_eq!(me["authMethod"], "api_key");
    // ... and is scoped like her: an operator sees their team's audit events only.
    let r = keyed(&secret)
        .get(gw.at("/gatehouse/v1/audit"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    assert!(page["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["principal"]["team"] == "team-a"));
    // A forged key of the right shape is refused, not passed to the next authenticator.
    let forged = format!("gk_{}", "A".repeat(43));
    assert_eq!(
        keyed(&forged)
            .get(gw.at("/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // Listed (without the secret), with a last-used time.
    let list = wait_for("last-used time", Duration::from_secs(10), || async {
        let v: Value = alice()
            .get(&keys_url)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v["items"][0]["lastUsedAt"].as_str().is_some().then_some(v)
    })
    .await
    .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(list["items"][0].get("key").is_none());
    assert!(!list.to_string().contains(&secret[3..]));
    let other: Value = carol()
        .get(&keys_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(other["items"].as_array().unwrap().len(), 0);
    let r = carol()
        .get(format!("{keys_url}?all=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // service_admin creates team keys and revokes anyone's.
    let (s, team_key) = post(
        keyed(ADMIN),
        serde_json::json!({"name": "team-b-ci", "team": "team-b", "role": "operator"}),
    )
    .await;
    assert_eq!(s, 201, "{team_key}");
    assert_eq!(team_key["team"], "team-b");
    let (_, other) = post(carol(), serde_json::json!({"name": "carols"})).await;
    let r = keyed(ADMIN)
        .delete(format!("{keys_url}/{}", other["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let carols = other["key"].as_str().unwrap();
    assert_eq!(
        keyed(carols)
            .get(gw.at("/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // Only its owner (or service_admin) revokes it; then it is refused at once.
    let r = carol()
        .delete(format!("{keys_url}/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = alice()
        .delete(format!("{keys_url}/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        keyed(&secret)
            .get(gw.at("/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let list: Value = alice()
        .get(&keys_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list["items"][0]["revokedAt"].as_str().is_some());

    // Both changes are in the audit trail; the key is nowhere in logs or audit.
    let events = wait_for("key events", Duration::from_secs(10), || async {
        let (_, b) = audit(&gw, ADMIN, "?actor=alice").await;
        let items = b["items"].as_array().cloned().unwrap_or_default();
        let revoked = items.iter().any(|e| e["action"] == "key:revoke");
        revoked.then_some(items)
    })
    .await
    .unwrap();
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(
        actions.contains(&"key:create") && actions.contains(&"key:revoke"),
        "{actions:?}"
    );
    assert!(!gw.exposes(&secret));
}

/// RBAC bindings: service_admin binds a subject or a group to a role (and team); the
/// change applies within a second; while PostgreSQL is down the last bindings read stay
/// in force (fail static).
#[tokio::test]
async fn bindings_apply_within_a_second_and_fail_static() {
    use gatehouse_tests::principals::{alice, user, TRUSTED_PROXY_SECTION};
    let mut pg = Postgres::start().unwrap();
    let extra = format!(
        "{}\n{TRUSTED_PROXY_SECTION}\n[store]\ntype = \"postgres\"\nurl = \"{}\"\n",
        keys_toml(),
        pg.url
    );
    let gw = Gateway::start(&dead_upstream(), "backend-key", &extra)
        .await
        .unwrap();
    let url = gw.at("/gatehouse/v1/bindings");
    let admin = gatehouse_tests::principals::keyed(ADMIN);
    let me = |c: reqwest::Client| {
        let u = gw.at("/auth/me");
        async move {
            let v: Value = c.get(u).send().await.unwrap().json().await.unwrap();
            (
                v["role"].as_str().unwrap_or_default().to_string(),
                v["team"].clone(),
            )
        }
    };
    let dave = || user("dave", None, None);
    let erin = || user("erin", Some("team-e"), Some("qa"));
    assert_eq!(me(dave()).await.0, "read_only");
    assert_eq!(me(erin()).await.0, "read_only");

    // Only service_admin; bad input is 400.
    let put = |c: reqwest::Client, body: Value| {
        let u = url.clone();
        async move { c.put(u).json(&body).send().await.unwrap().status().as_u16() }
    };
    let b = serde_json::json!({"kind": "subject", "name": "dave", "role": "operator", "team": "team-c"});
    assert_eq!(put(alice(), b.clone()).await, 403);
    assert_eq!(
        put(
            admin.clone(),
            serde_json::json!({"kind": "subject", "name": "dave", "role": "emperor"})
        )
        .await,
        400
    );
    assert_eq!(
        put(
            admin.clone(),
            serde_json::json!({"kind": "robot", "name": "dave", "role": "operator"})
        )
        .await,
        400
    );

    let started = std::time::Instant::now();
    assert_eq!(put(admin.clone(), b).await, 200, "{}", gw.log());
    assert_eq!(
        put(
            admin.clone(),
            serde_json::json!({"kind": "group", "name": "qa", "role": "service_admin"})
        )
        .await,
        200
    );
    wait_for("dave's binding", Duration::from_secs(5), || async {
        (me(dave()).await == ("operator".into(), serde_json::json!("team-c"))).then_some(())
    })
    .await
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    wait_for("erin's group binding", Duration::from_secs(5), || async {
        (me(erin()).await.0 == "service_admin").then_some(())
    })
    .await
    .unwrap();
    let list: Value = admin.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(list["fresh"], true);
    assert_eq!(alice().get(&url).send().await.unwrap().status(), 403);

    // Store down: the last bindings read still apply; nothing fails open.
    pg.pause().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(me(dave()).await.0, "operator");
    assert_eq!(admin.get(&url).send().await.unwrap().status(), 503);
    pg.resume().unwrap();

    // Delete: back to the static table within a second.
    let d = wait_for(
        "delete after the restart",
        Duration::from_secs(10),
        || async {
            let s = admin
                .delete(format!("{url}/subject/dave"))
                .send()
                .await
                .ok()?
                .status();
            (s != 503).then_some(s)
        },
    )
    .await
    .unwrap();
    assert_eq!(d, 204);
    wait_for("dave unbound", Duration::from_secs(5), || async {
        (me(dave()).await.0 == "read_only").then_some(())
    })
    .await
    .unwrap();
    let s = admin
        .delete(format!("{url}/subject/dave"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, 404);

    // Audited.
    let events = wait_for("binding events", Duration::from_secs(10), || async {
        let (_, b) = audit(&gw, ADMIN, "?action=binding:delete").await;
        let items = b["items"].as_array().cloned().unwrap_or_default();
        (!items.is_empty()).then_some(items)
    })
    .await
    .unwrap();
    assert_eq!(events[0]["sandbox_id"], "subject/dave");
    let (_, b) = audit(&gw, ADMIN, "?action=binding:put").await;
    assert_eq!(b["items"].as_array().unwrap().len(), 2);

    // `gatehouse rbac` writes the same store (and the audit table).
    let rbac = |args: &[&str]| {
        let out = std::process::Command::new(gatehouse_tests::bin_dir().join("gatehouse"))
            .arg("--config")
            .arg(&gw.config_path)
            .arg("rbac")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert!(!rbac(&["bind", "subject", "frank", "emperor"]).0);
    assert!(rbac(&["bind", "subject", "frank", "operator", "--team", "team-f"]).0);
    let frank = || user("frank", None, None);
    wait_for("frank's binding", Duration::from_secs(5), || async {
        (me(frank()).await == ("operator".into(), serde_json::json!("team-f"))).then_some(())
    })
    .await
    .unwrap();
    let (ok, listed) = rbac(&["list"]);
    assert!(ok && listed.contains("\"frank\""), "{listed}");
    assert!(rbac(&["unbind", "subject", "frank"]).0);
    assert!(!rbac(&["unbind", "subject", "frank"]).0);
    let (_, b) = audit(&gw, ADMIN, "?action=binding:delete&sandbox=subject/frank").await;
    assert_eq!(b["items"][0]["principal"]["auth_method"], "cli");
}
