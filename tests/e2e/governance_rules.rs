//! Issue 15's remaining acceptance points, end to end against real processes:
//!
//! - `auth.backend_key_passthrough = false` refuses the backend's shared key (the same
//!   request passes through a gateway with the default), while named and personal keys
//!   keep working;
//! - bad input on the governance routes (`/gatehouse/v1/...`) is a 400/403/404/413 in the
//!   API's error shape, naming the problem;
//! - `/readyz` shows the governance store's state and the bindings' freshness, and the
//!   metrics carry `gatehouse_bindings_fresh` / `gatehouse_bindings_age_seconds`: with
//!   PostgreSQL stopped the gateway stays ready and the last bindings read still apply
//!   (fail static), and both say so until the store is back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::postgres::Postgres;
use gatehouse_tests::principals::{alice, keyed, user, TRUSTED_PROXY_SECTION};
use gatehouse_tests::{free_port, wait_for, Backend, BackendOptions};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

const ADMIN: &str = "rules-admin-key-0123456789";
const OP_A: &str = "rules-op-a-key-0123456789";

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
        k("rules-admin", ADMIN, "service_admin", None),
        k("rules-op-a", OP_A, "operator", Some("team-a")),
    ]
    .concat()
}

async fn status_and_body(r: reqwest::RequestBuilder) -> (u16, Value) {
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// The API's error shape: a code (`GATEWAY::…` for the gateway's own routes) and a
/// message for people, nothing else.
fn assert_error_shape(what: &str, status: u16, body: &Value, want: u16) {
    assert_eq!(status, want, "{what}: {body}");
    let code = body["code"].as_str().unwrap_or_default();
    assert!(!code.is_empty(), "{what}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{what}: {body}");
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(2),
        "{what}: only code and message: {body}"
    );
}

#[tokio::test]
async fn backend_key_passthrough_off_refuses_the_shared_key() {
    let backend = Backend::start(BackendOptions::default()).await.unwrap();
    let extra = format!("{}\n{TRUSTED_PROXY_SECTION}", keys_toml());
    let open = Gateway::start(&backend.url, &backend.api_key, &extra)
        .await
        .unwrap();
    let closed = Gateway::start(
        &backend.url,
        &backend.api_key,
        &format!("{extra}\n[auth]\nbackend_key_passthrough = false\n"),
    )
    .await
    .unwrap();
    let list = |gw: &Gateway, key: &str| keyed(key).get(gw.at("/v1/sandboxes"));

    // The default: the backend's own key passes through as service_admin.
    let (s, b) = status_and_body(list(&open, &backend.api_key)).await;
    assert_eq!(s, 200, "{b}");
    // Switched off: the same key is an unknown key, 401 in the error shape.
    let (s, b) = status_and_body(list(&closed, &backend.api_key)).await;
    assert_error_shape("backend key, passthrough off", s, &b, 401);
    assert_eq!(b["code"], "INVALID_API_KEY");
    let (s, _) = status_and_body(keyed(&backend.api_key).get(closed.at("/auth/me"))).await;
    assert_eq!(s, 401);
    // Every named caller still works: a configured key, and a personal key.
    let (s, b) = status_and_body(list(&closed, OP_A)).await;
    assert_eq!(s, 200, "{b}");
    let (s, created) = status_and_body(
        alice()
            .post(closed.at("/gatehouse/v1/keys"))
            .json(&json!({"name": "laptop"})),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let personal = created["key"].as_str().unwrap();
    let (s, b) = status_and_body(list(&closed, personal)).await;
    assert_eq!(s, 200, "{b}");
    // The refusal is audited, without the key.
    let refused = wait_for(
        "the refusal's audit event",
        Duration::from_secs(10),
        || async {
            closed
                .audit_events()
                .into_iter()
                .find(|e| e["status"] == 401 && e["outcome"] == "denied")
        },
    )
    .await
    .unwrap();
    assert_eq!(refused["principal"]["subject"], "anonymous", "{refused}");
    for gw in [&open, &closed] {
        assert!(!gw.exposes(&backend.api_key));
        assert!(!gw.exposes(personal));
    }
}

#[tokio::test]
async fn governance_routes_answer_bad_input_in_the_error_shape() {
    let extra = format!("{}\n{TRUSTED_PROXY_SECTION}", keys_toml());
    let dead = format!("http://127.0.0.1:{}", free_port());
    let gw = Gateway::start(&dead, "backend-key", &extra).await.unwrap();
    let admin = keyed(ADMIN);
    let audit = |q: &str| admin.get(gw.at(&format!("/gatehouse/v1/audit{q}")));

    // Audit filters: malformed, repeated, unknown, oversized pages and values.
    let long = "x".repeat(300);
    for q in [
        "?limit=1001".to_string(),
        "?limit=-1".into(),
        "?limit=ten".into(),
        "?outcome=maybe".into(),
        "?since=yesterday".into(),
        "?until=2026-13-01T00:00:00Z".into(),
        "?cursor=not-a-cursor".into(),
        "?actor=a&actor=b".into(),
        "?format=xml".into(),
        "?colour=red".into(),
        format!("?team={long}"),
    ] {
        let (s, b) = status_and_body(audit(&q)).await;
        assert_error_shape(&q, s, &b, 400);
        assert!(b["code"]
            .as_str()
            .unwrap_or_default()
            .starts_with("GATEWAY::"));
        assert_eq!(b["code"], "GATEWAY::INVALID_QUERY", "{q}");
    }
    // An operator asking for another team's events: 403.
    let (s, b) = status_and_body(keyed(OP_A).get(gw.at("/gatehouse/v1/audit?team=team-b"))).await;
    assert_error_shape("another team's audit", s, &b, 403);

    // Keys: a role above the creator's is 403; unknown roles, bad names, bad expiries,
    // unknown fields and broken JSON are 400; a body past 16 KiB is 413.
    let keys = gw.at("/gatehouse/v1/keys");
    for (body, want) in [
        (json!({"name": "k", "role": "service_admin"}), 403),
        (json!({"name": "k", "role": "emperor"}), 400),
        (json!({"name": "a/b"}), 400),
        (json!({"name": "x".repeat(65)}), 400),
        (json!({"name": "k", "expiresInDays": 366}), 400),
        (json!({"name": "k", "expiresInDays": -1}), 400),
        (json!({"name": "k", "owner": "bob"}), 400),
        (json!({"role": "operator"}), 400),
        (json!({"name": "k", "team": "team-b"}), 403),
    ] {
        let (s, b) = status_and_body(keyed(OP_A).post(&keys).json(&body)).await;
        assert_error_shape(&body.to_string(), s, &b, want);
    }
    let (s, b) = status_and_body(
        keyed(OP_A)
            .post(&keys)
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_error_shape("broken JSON", s, &b, 400);
    let (s, b) = status_and_body(
        keyed(OP_A)
            .post(&keys)
            .header("content-type", "application/json")
            .body(format!("{{\"name\": \"{}\"}}", "x".repeat(20_000))),
    )
    .await;
    assert_error_shape("oversized body", s, &b, 413);
    let (s, b) = status_and_body(keyed(OP_A).delete(format!("{keys}/no-such-key"))).await;
    assert_error_shape("revoking a missing key", s, &b, 404);
    let (s, b) = status_and_body(keyed(OP_A).get(format!("{keys}?all=true"))).await;
    assert_error_shape("every key, as an operator", s, &b, 403);

    // Bindings: unknown roles and kinds, bad names, missing fields; operators may not.
    let bindings = gw.at("/gatehouse/v1/bindings");
    for body in [
        json!({"kind": "subject", "name": "dave", "role": "emperor"}),
        json!({"kind": "robot", "name": "dave", "role": "operator"}),
        json!({"kind": "subject", "name": "a/b", "role": "operator"}),
        json!({"kind": "subject", "name": "", "role": "operator"}),
        json!({"kind": "subject", "name": "dave"}),
        json!({"kind": "subject", "name": "dave", "role": "operator", "colour": "red"}),
    ] {
        let (s, b) = status_and_body(admin.put(&bindings).json(&body)).await;
        assert_error_shape(&body.to_string(), s, &b, 400);
    }
    let (s, b) = status_and_body(
        admin
            .put(&bindings)
            .json(&json!({"kind": "subject", "name": "dave", "role": "emperor"})),
    )
    .await;
    assert_eq!(
        (s, b["message"].as_str()),
        (400, Some("Unknown role 'emperor'."))
    );
    let (s, b) = status_and_body(
        keyed(OP_A)
            .put(&bindings)
            .json(&json!({"kind": "subject", "name": "dave", "role": "operator"})),
    )
    .await;
    assert_error_shape("an operator binding", s, &b, 403);
    let (s, b) = status_and_body(admin.delete(format!("{bindings}/subject/nobody"))).await;
    assert_error_shape("deleting a missing binding", s, &b, 404);
    let (s, b) = status_and_body(admin.delete(format!("{bindings}/robot/dave"))).await;
    assert_error_shape("deleting a bad kind", s, &b, 404);
    // Nothing was stored by any of it.
    let (s, b) = status_and_body(admin.get(&bindings)).await;
    assert_eq!(
        (s, b["items"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{b}"
    );
}

async fn readyz(gw: &Gateway) -> (u16, Value) {
    status_and_body(reqwest::Client::new().get(gw.at("/readyz"))).await
}

async fn metric(url: &str, name: &str) -> Option<f64> {
    let text = reqwest::get(url).await.ok()?.text().await.ok()?;
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l[name.len()..].trim().parse().ok())
}

#[tokio::test]
async fn readyz_and_metrics_show_the_store_and_bindings_freshness() {
    let mut pg = Postgres::start().unwrap();
    let backend = Backend::start(BackendOptions::default()).await.unwrap();
    let admin_port = free_port();
    let extra = format!(
        "{}\n{TRUSTED_PROXY_SECTION}\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\n\
         [store]\ntype = \"postgres\"\nurl = \"{}\"\nretry_ms = 200\n",
        keys_toml(),
        pg.url
    );
    let gw = Gateway::start(&backend.url, &backend.api_key, &extra)
        .await
        .unwrap();
    let metrics = format!("http://127.0.0.1:{admin_port}/metrics");

    let (s, b) = readyz(&gw).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["checks"]["store"], "ok", "{b}");
    assert_eq!(b["store"]["kind"], "postgres", "{b}");
    assert_eq!(b["store"]["bindings"], "fresh", "{b}");
    assert_eq!(
        metric(&metrics, "gatehouse_bindings_fresh").await,
        Some(1.0)
    );

    // A binding the gateway has read.
    let dave = || user("dave", None, None);
    let role = |c: reqwest::Client| {
        let u = gw.at("/auth/me");
        async move {
            let v: Value = c.get(u).send().await.ok()?.json().await.ok()?;
            v["role"].as_str().map(str::to_string)
        }
    };
    let (s, _) = status_and_body(
        keyed(ADMIN)
            .put(gw.at("/gatehouse/v1/bindings"))
            .json(&json!({"kind": "subject", "name": "dave", "role": "operator"})),
    )
    .await;
    assert_eq!(s, 200);
    wait_for("dave's binding", Duration::from_secs(10), || async {
        (role(dave()).await.as_deref() == Some("operator")).then_some(())
    })
    .await
    .unwrap();

    // PostgreSQL stops answering: still ready (fail static), and /readyz and the metrics
    // say the store is unreachable and the bindings stale.
    pg.pause().unwrap();
    let stale = wait_for(
        "/readyz to see the store down",
        Duration::from_secs(20),
        || async {
            let (s, b) = readyz(&gw).await;
            (b["store"]["bindings"] == "stale").then_some((s, b))
        },
    )
    .await
    .unwrap();
    let (s, b) = stale;
    assert_eq!(s, 200, "the gateway stays ready without its store: {b}");
    assert_eq!(b["status"], "degraded", "{b}");
    assert!(
        b["checks"]["store"]
            .as_str()
            .unwrap_or_default()
            .starts_with("unreachable"),
        "{b}"
    );
    assert!(
        b["store"]["note"]
            .as_str()
            .unwrap_or_default()
            .contains("last bindings"),
        "{b}"
    );
    assert_eq!(
        metric(&metrics, "gatehouse_bindings_fresh").await,
        Some(0.0)
    );
    // The last bindings read still apply: dave is still an operator.
    assert_eq!(role(dave()).await.as_deref(), Some("operator"));
    let age_down = wait_for(
        "the bindings' age to grow",
        Duration::from_secs(10),
        || async {
            metric(&metrics, "gatehouse_bindings_age_seconds")
                .await
                .filter(|a| *a >= 1.0)
        },
    )
    .await
    .unwrap();
    assert!(age_down >= 1.0);

    // Back: fresh again.
    pg.resume().unwrap();
    wait_for(
        "/readyz to see the store back",
        Duration::from_secs(20),
        || async {
            let (_, b) = readyz(&gw).await;
            (b["store"]["bindings"] == "fresh" && b["checks"]["store"] == "ok").then_some(())
        },
    )
    .await
    .unwrap();
    assert_eq!(
        metric(&metrics, "gatehouse_bindings_fresh").await,
        Some(1.0)
    );
}
