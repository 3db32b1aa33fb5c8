//! The gateway in front of `gatehouse-backend` on the real Docker engine: the role matrix,
//! team isolation through every per-sandbox route, list scoping, create injection, header
//! spoofing, path-normalization bypass attempts, bad bodies, backend down, policy hot
//! reload and the audit events each case writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::{test_image, wait_for, Backend, BackendOptions};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// The trusted proxy the tests pretend to be; 127.0.0.1 is an untrusted client.
const TRUSTED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const ADMIN_KEY: &str = "gw-admin-key-0123456789";
const TEAMB_KEY: &str = "gw-teamb-bot-key-9876543210";

struct Stack {
    backend: Backend,
    gw: Gateway,
}

async fn stack() -> Stack {
    let backend = Backend::start(BackendOptions::default()).await.unwrap();
    let extra = format!(
        "[auth]\nmode = \"api_key_and_user\"\n\n\
         [auth.trusted_header]\ntrusted_proxies = [\"127.0.0.2/32\"]\n\n\
         [[auth.api_keys]]\nname = \"ci-admin\"\nsha256 = \"{}\"\nrole = \"service_admin\"\n\n\
         [[auth.api_keys]]\nname = \"teamb-bot\"\nsha256 = \"{}\"\nrole = \"operator\"\nteam = \"team-b\"\n",
        hex::encode(Sha256::digest(ADMIN_KEY)),
        hex::encode(Sha256::digest(TEAMB_KEY)),
    );
    let gw = Gateway::start(&backend.url, &backend.api_key, &extra)
        .await
        .unwrap();
    Stack { backend, gw }
}

fn user(name: &str, team: Option<&str>, roles: Option<&str>) -> reqwest::Client {
    let mut h = HeaderMap::new();
    h.insert("X-OpenSandbox-User", HeaderValue::from_str(name).unwrap());
    if let Some(t) = team {
        h.insert("X-OpenSandbox-Team", HeaderValue::from_str(t).unwrap());
    }
    if let Some(r) = roles {
        h.insert("X-OpenSandbox-Roles", HeaderValue::from_str(r).unwrap());
    }
    reqwest::Client::builder()
        .local_address(TRUSTED)
        .default_headers(h)
        .build()
        .unwrap()
}

fn alice() -> reqwest::Client {
    user("alice", Some("team-a"), Some("operator"))
}
fn bob() -> reqwest::Client {
    user("bob", Some("team-a"), None)
}
fn carol() -> reqwest::Client {
    user("carol", Some("team-b"), Some("operator"))
}
fn keyed(key: &str) -> reqwest::Client {
    let mut h = HeaderMap::new();
    h.insert("OPEN-SANDBOX-API-KEY", HeaderValue::from_str(key).unwrap());
    reqwest::Client::builder()
        .default_headers(h)
        .build()
        .unwrap()
}

fn sandbox_body(md: Value) -> Value {
    json!({
        "image": {"uri": test_image()},
        "entrypoint": ["httpd", "-f", "-p", "8080", "-h", "/www"],
        "timeout": 600,
        "metadata": md,
    })
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

/// Sends a request with the path exactly as written (HTTP clients normalize `..` and
/// `%2e%2e` themselves, which would hide what the gateway does), as a trusted-proxy user.
async fn raw(
    gw: &Gateway,
    method: &str,
    path: &str,
    user: &str,
    team: &str,
    roles: &str,
) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr: std::net::SocketAddr = gw.url.trim_start_matches("http://").parse().unwrap();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind((TRUSTED, 0).into()).unwrap();
    let mut stream = sock.connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nX-OpenSandbox-User: {user}\r\nX-OpenSandbox-Team: {team}\r\n\
         X-OpenSandbox-Roles: {roles}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    // Chunked bodies: take the JSON object inside.
    let json = body
        .find('{')
        .and_then(|a| body.rfind('}').map(|b| &body[a..=b]))
        .unwrap_or("");
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

async fn create_as(c: &reqwest::Client, gw: &Gateway, md: Value) -> String {
    let (s, v) = send(c, "POST", &gw.at("/v1/sandboxes"), Some(&sandbox_body(md))).await;
    assert_eq!(s, 202, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn wait_running(gw: &Gateway, c: &reqwest::Client, id: &str) {
    wait_for("sandbox running", Duration::from_secs(30), || async {
        let (s, v) = send(c, "GET", &gw.at(&format!("/v1/sandboxes/{id}")), None).await;
        (s == 200 && v["status"]["state"] == "Running").then_some(())
    })
    .await
    .unwrap();
}

fn events_for<'a>(events: &'a [Value], action: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["action"] == action).collect()
}

#[tokio::test]
async fn role_matrix_scope_isolation_and_audit() {
    let st = stack().await;
    let gw = &st.gw;

    // Create: scope metadata is injected from the principal, whatever the client sent.
    let a1 = create_as(
        &alice(),
        gw,
        json!({"project": "apollo", "access.owner": "mallory", "access.team": "team-b"}),
    )
    .await;
    let c1 = create_as(&carol(), gw, json!({"project": "apollo"})).await;
    let (s, v) = send(
        &alice(),
        "GET",
        &gw.at(&format!("/v1/sandboxes/{a1}")),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let owner = v["metadata"]["access.owner"].as_str().unwrap().to_string();
    let team = v["metadata"]["access.team"].as_str().unwrap().to_string();
    assert!(owner.starts_with("alice."), "{owner}");
    assert!(team.starts_with("team-a."), "{team}");
    assert_eq!(v["metadata"]["project"], "apollo");
    wait_running(gw, &alice(), &a1).await;
    wait_running(gw, &carol(), &c1).await;

    // Lists are scoped: pagination counts only the caller's team; client filters still work.
    for (who, client, mine, other) in [
        ("alice", alice(), &a1, &c1),
        ("bob", bob(), &a1, &c1),
        ("carol", carol(), &c1, &a1),
    ] {
        let (s, v) = send(&client, "GET", &gw.at("/v1/sandboxes?pageSize=200"), None).await;
        assert_eq!(s, 200, "{who}: {v}");
        let ids: Vec<&str> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![mine.as_str()], "{who} sees exactly their team");
        assert_eq!(v["pagination"]["totalItems"], 1, "{who}");
        assert!(!ids.contains(&other.as_str()));
        let (_, v) = send(
            &client,
            "GET",
            &gw.at("/v1/sandboxes?metadata=project%3Dapollo&state=running"),
            None,
        )
        .await;
        assert_eq!(
            v["pagination"]["totalItems"], 1,
            "{who}: filters still apply"
        );
        let (_, v) = send(
            &client,
            "GET",
            &gw.at("/v1/sandboxes?metadata=project%3Dnone"),
            None,
        )
        .await;
        assert_eq!(v["pagination"]["totalItems"], 0, "{who}");
        // Filtering on another team's scope key cannot widen the view.
        let (_, v) = send(
            &client,
            "GET",
            &gw.at(&format!("/v1/sandboxes?metadata=access.team%3D{team}")),
            None,
        )
        .await;
        let seen: Vec<&str> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        assert!(
            seen.iter().all(|id| *id == mine.as_str()),
            "{who}: {seen:?}"
        );
    }

    // Every per-sandbox route: carol cannot see or touch alice's sandbox (404, no leak).
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/v1/sandboxes/{a1}"), None),
        ("GET", format!("/sandboxes/{a1}"), None),
        (
            "POST",
            format!("/v1/sandboxes/{a1}/renew-expiration"),
            Some(json!({"expiresAt": future})),
        ),
        ("POST", format!("/v1/sandboxes/{a1}/pause"), None),
        ("POST", format!("/v1/sandboxes/{a1}/resume"), None),
        ("GET", format!("/v1/sandboxes/{a1}/endpoints/8080"), None),
        (
            "PATCH",
            format!("/v1/sandboxes/{a1}/metadata"),
            Some(json!({"x": "y"})),
        ),
        (
            "GET",
            format!("/v1/sandboxes/{a1}/proxy/8080/index.html"),
            None,
        ),
        (
            "POST",
            format!("/v1/sandboxes/{a1}/snapshots"),
            Some(json!({})),
        ),
        ("GET", format!("/v1/sandboxes/{a1}/diagnostics/logs"), None),
        ("DELETE", format!("/v1/sandboxes/{a1}"), None),
    ];
    let (_, missing) = send(
        &carol(),
        "GET",
        &gw.at("/v1/sandboxes/does-not-exist"),
        None,
    )
    .await;
    for (m, path, body) in &routes {
        let (s, v) = send(&carol(), m, &gw.at(path), body.as_ref()).await;
        assert_eq!(s, 404, "carol {m} {path}: {v}");
        assert_eq!(
            v["code"], missing["code"],
            "out of scope looks exactly like missing"
        );
    }
    // Bob (read_only, same team) reads but cannot mutate.
    for (m, path, body) in &routes {
        let (s, v) = send(&bob(), m, &gw.at(path), body.as_ref()).await;
        let read = *m == "GET" && !path.contains("/proxy/") && !path.contains("/diagnostics/");
        if read {
            assert_eq!(s, 200, "bob {m} {path}: {v}");
        } else {
            assert_eq!(s, 403, "bob {m} {path}: {v}");
            assert_eq!(v["code"], "GATEWAY::FORBIDDEN");
        }
    }
    let (s, _) = send(
        &bob(),
        "POST",
        &gw.at("/v1/sandboxes"),
        Some(&sandbox_body(json!({}))),
    )
    .await;
    assert_eq!(s, 403);

    // Alice (operator, owner) can do everything on hers.
    let (s, v) = send(
        &alice(),
        "POST",
        &gw.at(&format!("/v1/sandboxes/{a1}/renew-expiration")),
        Some(&json!({"expiresAt": future})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = send(
        &alice(),
        "PATCH",
        &gw.at(&format!("/v1/sandboxes/{a1}/metadata")),
        Some(&json!({"stage": "qa"})),
    )
    .await;
    assert_eq!((s, &v["metadata"]["stage"]), (200, &json!("qa")));
    for bad in [
        json!({"access.team": "team-b"}),
        json!({"access.owner": null}),
    ] {
        let (s, v) = send(
            &alice(),
            "PATCH",
            &gw.at(&format!("/v1/sandboxes/{a1}/metadata")),
            Some(&bad),
        )
        .await;
        assert_eq!(s, 400, "{bad}: {v}");
        assert_eq!(v["code"], "GATEWAY::RESERVED_METADATA");
    }
    let (s, _) = send(
        &alice(),
        "POST",
        &gw.at(&format!("/v1/sandboxes/{a1}/pause")),
        None,
    )
    .await;
    assert_eq!(s, 202);
    let (s, _) = send(
        &alice(),
        "POST",
        &gw.at(&format!("/v1/sandboxes/{a1}/resume")),
        None,
    )
    .await;
    assert_eq!(s, 202);
    wait_running(gw, &alice(), &a1).await;

    // Endpoints via the server proxy point at the gateway, and the proxy works through it.
    let (s, v) = send(
        &alice(),
        "GET",
        &gw.at(&format!(
            "/v1/sandboxes/{a1}/endpoints/8080?use_server_proxy=true"
        )),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let host = gw.url.trim_start_matches("http://");
    assert_eq!(
        v["endpoint"],
        format!("{host}/v1/sandboxes/{a1}/proxy/8080")
    );
    let page = wait_for(
        "proxy through the gateway",
        Duration::from_secs(20),
        || async {
            let (s, v) = send(
                &alice(),
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
        .unwrap()
        .contains("hello from a gatehouse sandbox"));
    // Anonymous clients cannot use the proxy route (upstream leaves it open).
    let (s, _) = send(
        &reqwest::Client::new(),
        "GET",
        &gw.at(&format!("/v1/sandboxes/{a1}/proxy/8080/index.html")),
        None,
    )
    .await;
    assert_eq!(s, 401);

    // A team-b operator key is scoped like a user of team-b.
    let (s, v) = send(&keyed(TEAMB_KEY), "GET", &gw.at("/v1/sandboxes"), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].clone())
            .collect::<Vec<_>>(),
        vec![json!(c1)]
    );
    let (s, _) = send(
        &keyed(TEAMB_KEY),
        "GET",
        &gw.at(&format!("/v1/sandboxes/{a1}")),
        None,
    )
    .await;
    assert_eq!(s, 404);
    // A service_admin key and the backend's own key see everything.
    for key in [ADMIN_KEY, st.backend.api_key.as_str()] {
        let (s, v) = send(&keyed(key), "GET", &gw.at("/v1/sandboxes"), None).await;
        assert_eq!(s, 200);
        assert_eq!(v["pagination"]["totalItems"], 2);
    }
    // A wrong key is rejected, never retried as another identity.
    let (s, v) = send(&keyed("not-a-key"), "GET", &gw.at("/v1/sandboxes"), None).await;
    assert_eq!(
        (s, v["code"].as_str().unwrap()),
        (401, "GATEWAY::INVALID_API_KEY")
    );

    // Deletes.
    let (s, _) = send(
        &carol(),
        "DELETE",
        &gw.at(&format!("/v1/sandboxes/{c1}")),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = send(
        &alice(),
        "DELETE",
        &gw.at(&format!("/v1/sandboxes/{a1}")),
        None,
    )
    .await;
    assert_eq!(s, 204);

    // Audit: one event per mutation and per denial, with the principal and the sandbox id.
    let events = wait_for("audit events", Duration::from_secs(10), || async {
        let ev = gw.audit_events();
        (events_for(&ev, "sandbox:delete").len() >= 2).then_some(ev)
    })
    .await
    .unwrap();
    let creates = events_for(&events, "sandbox:create");
    let alice_create = creates
        .iter()
        .find(|e| e["principal"]["subject"] == "alice")
        .unwrap();
    assert_eq!(
        alice_create["sandbox_id"], a1,
        "create events carry the id from the response"
    );
    assert_eq!(alice_create["principal"]["team"], "team-a");
    assert_eq!(alice_create["principal"]["role"], "operator");
    assert_eq!(alice_create["principal"]["auth_method"], "trusted_header");
    assert_eq!(alice_create["status"], 202);
    assert_eq!(alice_create["outcome"], "allowed");
    let denials: Vec<&Value> = events.iter().filter(|e| e["outcome"] == "denied").collect();
    assert!(denials.iter().any(|e| e["principal"]["subject"] == "carol"
        && e["sandbox_id"] == a1
        && e["status"] == 404));
    assert!(denials.iter().any(|e| e["principal"]["subject"] == "bob"
        && e["action"] == "sandbox:create"
        && e["status"] == 403));
    assert!(denials.iter().any(|e| e["status"] == 401));
    assert!(events
        .iter()
        .all(|e| e["request_id"].as_str().is_some_and(|r| !r.is_empty())));
    // Reads are not audited; secrets never appear anywhere.
    assert!(events_for(&events, "sandbox:list")
        .iter()
        .all(|e| e["outcome"] == "denied"));
    for secret in [ADMIN_KEY, TEAMB_KEY, st.backend.api_key.as_str()] {
        assert!(!gw.audit_raw().contains(secret));
        assert!(!gw.log().contains(secret));
    }
}

#[tokio::test]
async fn spoofing_normalization_bad_bodies_and_request_ids() {
    let st = stack().await;
    let gw = &st.gw;
    let untrusted = reqwest::Client::new();

    // Identity headers from an untrusted peer are not believed (and never anonymous access).
    let mut h = HeaderMap::new();
    h.insert("X-OpenSandbox-User", HeaderValue::from_static("alice"));
    h.insert(
        "X-OpenSandbox-Roles",
        HeaderValue::from_static("service_admin"),
    );
    let (s, v) = send(&untrusted, "GET", &gw.at("/v1/sandboxes"), None).await;
    assert_eq!(
        (s, v["code"].as_str().unwrap()),
        (401, "GATEWAY::UNAUTHENTICATED")
    );
    let r = untrusted
        .get(gw.at("/v1/sandboxes"))
        .headers(h.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // From the trusted proxy, a missing user header is a 401, not anonymous access.
    let trusted_nobody = reqwest::Client::builder()
        .local_address(TRUSTED)
        .build()
        .unwrap();
    let (s, v) = send(&trusted_nobody, "GET", &gw.at("/v1/sandboxes"), None).await;
    assert_eq!(
        (s, v["code"].as_str().unwrap()),
        (401, "GATEWAY::MISSING_IDENTITY")
    );
    // The backend key with spoofed identity headers stays the backend key: the headers are
    // stripped, and a create is not attributed to the spoofed user.
    let r = keyed(&st.backend.api_key)
        .post(gw.at("/v1/sandboxes"))
        .headers(h)
        .json(&sandbox_body(json!({"k": "v"})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, v) = send(
        &keyed(&st.backend.api_key),
        "GET",
        &gw.at(&format!("/v1/sandboxes/{id}")),
        None,
    )
    .await;
    assert_eq!(
        v["metadata"],
        json!({"k": "v"}),
        "no scope injected for the passthrough key"
    );

    // Path normalization: the decision is made on the canonical path, which is what is forwarded.
    let a1 = create_as(&alice(), gw, json!({})).await;
    let c1 = create_as(&carol(), gw, json!({})).await;
    for path in [
        format!("/v1/sandboxes/{c1}/../{a1}"),
        format!("/v1/sandboxes/{c1}/%2e%2e/{a1}"),
        format!("/v1/sandboxes/{c1}/%2E%2E/{a1}"),
        format!("/v1//sandboxes//{a1}/"),
        format!("/v1/./sandboxes/{a1}"),
        format!("/v1/%73andboxes/{a1}"),
        format!("/x/../v1/sandboxes/{a1}"),
    ] {
        let (s, v) = raw(gw, "GET", &path, "carol", "team-b", "operator").await;
        assert_eq!(s, 404, "carol {path}: {v}");
        let (s, v) = raw(gw, "GET", &path, "alice", "team-a", "operator").await;
        assert_eq!(s, 200, "alice {path}: {v}");
        assert_eq!(v["id"], a1);
    }
    for path in [
        format!("/v1/sandboxes/{a1}%2Fpause"),
        "/v1/sandboxes/x%2F..%2F..".to_string(),
        "/v1/../../etc/passwd".to_string(),
        "/v1/sandboxes/%zz".to_string(),
        "/v1/sandboxes/a%00b".to_string(),
        "/v1/sandboxes\\x".to_string(),
    ] {
        let (s, v) = raw(gw, "GET", &path, "alice", "team-a", "operator").await;
        assert_eq!(s, 400, "{path}: {v}");
        assert_eq!(v["code"], "GATEWAY::INVALID_PATH");
    }
    // Read-only bob cannot reach a mutation through a disguised path.
    let (s, _) = raw(
        gw,
        "POST",
        &format!("/v1/sandboxes/{a1}/x/../pause"),
        "bob",
        "team-a",
        "",
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = raw(
        gw,
        "POST",
        &format!("/v1/sandboxes/{a1}/%70ause"),
        "bob",
        "team-a",
        "",
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = send(
        &bob(),
        "POST",
        &gw.at("/v1/sandboxes/"),
        Some(&sandbox_body(json!({}))),
    )
    .await;
    assert_eq!(s, 403);
    // Unknown routes are denied to users.
    let (s, v) = send(&alice(), "GET", &gw.at("/v1/secrets"), None).await;
    assert_eq!(
        (s, v["code"].as_str().unwrap()),
        (404, "GATEWAY::UNKNOWN_ROUTE")
    );

    // Bad bodies never reach the backend.
    let before = send(&keyed(ADMIN_KEY), "GET", &gw.at("/v1/sandboxes"), None)
        .await
        .1["pagination"]["totalItems"]
        .clone();
    let r = alice()
        .post(gw.at("/v1/sandboxes"))
        .header("content-type", "application/json")
        .body("{\"image\":")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "GATEWAY::INVALID_BODY"
    );
    let big = json!({"image": {"uri": test_image()}, "entrypoint": ["sh"], "env": {"X": "y".repeat(70_000)}});
    let (s, v) = send(&alice(), "POST", &gw.at("/v1/sandboxes"), Some(&big)).await;
    assert_eq!(
        (s, v["code"].as_str().unwrap()),
        (413, "GATEWAY::PAYLOAD_TOO_LARGE")
    );
    let (s, v) = send(
        &alice(),
        "POST",
        &gw.at("/v1/sandboxes"),
        Some(&json!([1, 2])),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str().unwrap()),
        (400, "GATEWAY::INVALID_BODY")
    );
    let after = send(&keyed(ADMIN_KEY), "GET", &gw.at("/v1/sandboxes"), None)
        .await
        .1["pagination"]["totalItems"]
        .clone();
    assert_eq!(before, after);
    // The backend's own validation errors pass through in the API's shape.
    let (s, v) = send(
        &alice(),
        "POST",
        &gw.at("/v1/sandboxes"),
        Some(&json!({"image": {"uri": test_image()}})),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str().unwrap()),
        (400, "SANDBOX::INVALID_ENTRYPOINT")
    );

    // Request ids are propagated, or generated.
    let r = alice()
        .get(gw.at("/v1/sandboxes"))
        .header("X-Request-ID", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-me-42");
    let r = alice().get(gw.at("/v1/sandboxes")).send().await.unwrap();
    assert!(!r.headers()["x-request-id"].is_empty());
    let (s, v) = send(&untrusted, "GET", &gw.at("/healthz"), None).await;
    assert_eq!((s, &v["upstream"]), (200, &json!("healthy")));

    for id in [&id, &a1, &c1] {
        send(
            &keyed(ADMIN_KEY),
            "DELETE",
            &gw.at(&format!("/v1/sandboxes/{id}")),
            None,
        )
        .await;
    }
}

#[tokio::test]
async fn policy_hot_reload_and_backend_down() {
    let mut st = stack().await;
    let gw = &st.gw;
    let (s, _) = send(
        &bob(),
        "POST",
        &gw.at("/v1/sandboxes"),
        Some(&sandbox_body(json!({}))),
    )
    .await;
    assert_eq!(s, 403);

    // Grant read_only the create action: applies without a restart.
    let original = std::fs::read_to_string(&gw.policy_path).unwrap();
    let granted = original.replacen(
        "[roles.read_only]\nactions = [",
        "[roles.read_only]\nactions = [\"sandbox:create\", ",
        1,
    );
    assert_ne!(granted, original, "the test edits the read_only role");
    std::fs::write(&gw.policy_path, &granted).unwrap();
    let id = wait_for(
        "the new table to apply",
        Duration::from_secs(10),
        || async {
            let (s, v) = send(
                &bob(),
                "POST",
                &gw.at("/v1/sandboxes"),
                Some(&sandbox_body(json!({}))),
            )
            .await;
            (s == 202).then(|| v["id"].as_str().unwrap().to_string())
        },
    )
    .await
    .unwrap();
    // A broken file is rejected, logged, and the previous table stays in force.
    std::fs::write(
        &gw.policy_path,
        "[roles.read_only]\nactions = [\"sandbox:explode\"]\n",
    )
    .unwrap();
    wait_for(
        "the rejection to be logged",
        Duration::from_secs(10),
        || async { gw.log().contains("role table rejected").then_some(()) },
    )
    .await
    .unwrap();
    let (s, v) = send(&bob(), "GET", &gw.at(&format!("/v1/sandboxes/{id}")), None).await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = send(
        &bob(),
        "DELETE",
        &gw.at(&format!("/v1/sandboxes/{id}")),
        None,
    )
    .await;
    assert_eq!(
        s, 403,
        "the old table (create but not delete) is still in force"
    );
    send(
        &keyed(ADMIN_KEY),
        "DELETE",
        &gw.at(&format!("/v1/sandboxes/{id}")),
        None,
    )
    .await;

    // Backend down: 502 in the API's error shape, and /healthz says so.
    st.backend.stop();
    let (s, v) = send(&alice(), "GET", &st.gw.at("/v1/sandboxes"), None).await;
    assert_eq!(
        (s, v["code"].as_str().unwrap()),
        (502, "GATEWAY::UPSTREAM_UNAVAILABLE"),
        "{v}"
    );
    assert!(
        !v["message"].as_str().unwrap().contains("127.0.0.1"),
        "no internals in a 5xx body"
    );
    let (s, v) = send(
        &keyed(ADMIN_KEY),
        "GET",
        &st.gw.at("/v1/sandboxes/abc"),
        None,
    )
    .await;
    assert_eq!(s, 502, "{v}");
    let (s, v) = send(&reqwest::Client::new(), "GET", &st.gw.at("/healthz"), None).await;
    assert_eq!((s, &v["upstream"]), (503, &json!("unreachable")));
}

/// The proxy route streams large bodies both ways and passes WebSocket upgrades, through
/// the gateway and the backend to the sandbox.
#[tokio::test]
async fn proxy_streams_large_bodies_and_websocket_upgrades() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let st = stack().await;
    let gw = &st.gw;
    let script = concat!(
        "mkdir -p /tmp/www; echo 0123456789abcdef > /tmp/www/big; i=0; ",
        "while [ $i -lt 17 ]; do cat /tmp/www/big /tmp/www/big > /tmp/www/g; cat /tmp/www/g > /tmp/www/big; i=$((i+1)); done; ",
        "printf '%s\\n' 'while read -r l; do case \"$l\" in \"\"|\"$(printf \"\\r\")\") break;; esac; done' ",
        "'printf \"HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n\\r\\n\"' 'exec cat' > /tmp/ws.sh; ",
        "mkdir -p /tmp/www/cgi-bin; printf '%s\n' '#!/bin/sh' 'n=$(wc -c)' 'printf \"Content-Type: text/plain\\r\\n\\r\\nreceived %s bytes\\n\" $n' > /tmp/www/cgi-bin/sink; ",
        "chmod +x /tmp/www/cgi-bin/sink; ",
        "nc -ll -p 44772 -e sh /tmp/ws.sh & exec httpd -f -p 8080 -h /tmp/www"
    );
    let body =
        json!({"image": {"uri": test_image()}, "entrypoint": ["sh", "-c", script], "timeout": 600});
    let (s, v) = send(&alice(), "POST", &gw.at("/v1/sandboxes"), Some(&body)).await;
    assert_eq!(s, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    wait_running(gw, &alice(), &id).await;

    // A 2 MiB download streams through unchanged.
    let expected = 17usize << 17;
    let big = wait_for("the big file", Duration::from_secs(30), || async {
        let r = alice()
            .get(gw.at(&format!("/v1/sandboxes/{id}/proxy/8080/big")))
            .send()
            .await
            .ok()?;
        if r.status() != 200 {
            return None;
        }
        let b = r.bytes().await.ok()?;
        (b.len() == expected).then_some(b)
    })
    .await
    .unwrap();
    assert!(big.starts_with(b"0123456789abcdef\n0123456789abcdef\n"));
    // A 3 MiB upload is not held to the API's body limit on the proxy route: the sandbox
    // receives every byte.
    let upload = vec![b'x'; 3 << 20];
    let r = alice()
        .post(gw.at(&format!("/v1/sandboxes/{id}/proxy/8080/cgi-bin/sink")))
        .body(upload)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap().trim(),
        format!("received {} bytes", 3 << 20)
    );

    // A WebSocket-style upgrade, from a trusted-proxy user, echoed by the sandbox.
    let addr: std::net::SocketAddr = gw.url.trim_start_matches("http://").parse().unwrap();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind((TRUSTED, 0).into()).unwrap();
    let mut stream = sock.connect(addr).await.unwrap();
    let req = format!(
        "GET /v1/sandboxes/{id}/proxy/44772/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-OpenSandbox-User: alice\r\n\
         X-OpenSandbox-Team: team-a\r\nX-OpenSandbox-Roles: operator\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "connection closed during the handshake: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
        .write_all(b"ping through the gateway\n")
        .await
        .unwrap();
    let mut echo = vec![0u8; 25];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut echo))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echo, b"ping through the gateway\n");

    send(
        &keyed(ADMIN_KEY),
        "DELETE",
        &gw.at(&format!("/v1/sandboxes/{id}")),
        None,
    )
    .await;
}
