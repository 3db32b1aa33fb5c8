//! What a request must look like to get through: identity headers only from the trusted
//! proxy, decisions on the canonical path, bodies checked before the backend sees them,
//! and request ids.

use super::TwoTeams;
use gatehouse_tests::api::send;
use gatehouse_tests::principals::{alice, bob, keyed, raw, trusted_nobody};
use gatehouse_tests::sandbox::{get, httpd_body};
use gatehouse_tests::stacks::{KeyedStack, ADMIN_KEY};
use gatehouse_tests::test_image;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

/// Identity headers that claim alice with service_admin.
fn spoofed_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("X-OpenSandbox-User", HeaderValue::from_static("alice"));
    h.insert(
        "X-OpenSandbox-Roles",
        HeaderValue::from_static("service_admin"),
    );
    h
}

/// Identity headers from an untrusted peer are not believed, and a trusted peer without
/// a user header is not anonymous access.
#[tokio::test]
async fn identity_headers_are_believed_only_from_the_trusted_proxy() {
    let st = KeyedStack::start().await.unwrap();
    let gw = &st.gw;
    let untrusted = reqwest::Client::new();
    let (s, v) = send(&untrusted, "GET", &gw.at("/v1/sandboxes"), None).await;
    assert_eq!((s, v["code"].as_str().unwrap()), (401, "MISSING_API_KEY"));
    let r = untrusted
        .get(gw.at("/v1/sandboxes"))
        .headers(spoofed_headers())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (s, v) = send(&trusted_nobody(), "GET", &gw.at("/v1/sandboxes"), None).await;
    assert_eq!(
        (s, v["code"].as_str().unwrap()),
        (401, "GATEWAY::MISSING_IDENTITY")
    );
}

/// The backend key with spoofed identity headers stays the backend key: the headers are
/// stripped, and a create is not attributed to the spoofed user.
#[tokio::test]
async fn backend_key_ignores_spoofed_identity_headers() {
    let st = KeyedStack::start().await.unwrap();
    let backend_key = keyed(&st.backend.api_key);
    let r = backend_key
        .post(st.gw.at("/v1/sandboxes"))
        .headers(spoofed_headers())
        .json(&httpd_body(json!({"k": "v"})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, v) = get(&backend_key, &st.gw.url, &id).await;
    assert_eq!(
        v["metadata"],
        json!({"k": "v"}),
        "no scope injected for the passthrough key"
    );
}

/// The decision is made on the canonical path, which is what is forwarded.
#[tokio::test]
async fn decisions_are_made_on_the_canonical_path() {
    let t = TwoTeams::start().await;
    let (a1, c1) = (&t.a1, &t.c1);
    for path in [
        format!("/v1/sandboxes/{c1}/../{a1}"),
        format!("/v1/sandboxes/{c1}/%2e%2e/{a1}"),
        format!("/v1/sandboxes/{c1}/%2E%2E/{a1}"),
        format!("/v1//sandboxes//{a1}/"),
        format!("/v1/./sandboxes/{a1}"),
        format!("/v1/%73andboxes/{a1}"),
        format!("/x/../v1/sandboxes/{a1}"),
    ] {
        let (s, v) = raw(&t.st.gw.url, "GET", &path, ("carol", "team-b", "operator")).await;
        assert_eq!(s, 404, "carol {path}: {v}");
        let (s, v) = raw(&t.st.gw.url, "GET", &path, ("alice", "team-a", "operator")).await;
        assert_eq!(s, 200, "alice {path}: {v}");
        assert_eq!(v["id"], a1.as_str());
    }
}

/// Paths that cannot be made canonical are refused.
#[tokio::test]
async fn malformed_paths_are_rejected() {
    let t = TwoTeams::start().await;
    for path in [
        format!("/v1/sandboxes/{}%2Fpause", t.a1),
        "/v1/sandboxes/x%2F..%2F..".to_string(),
        "/v1/../../etc/passwd".to_string(),
        "/v1/sandboxes/%zz".to_string(),
        "/v1/sandboxes/a%00b".to_string(),
        "/v1/sandboxes\\x".to_string(),
    ] {
        let (s, v) = raw(&t.st.gw.url, "GET", &path, ("alice", "team-a", "operator")).await;
        assert_eq!(s, 400, "{path}: {v}");
        assert_eq!(v["code"], "GATEWAY::INVALID_PATH");
    }
}

/// Read-only bob cannot reach a mutation through a disguised path.
#[tokio::test]
async fn read_only_cannot_mutate_through_a_disguised_path() {
    let t = TwoTeams::start().await;
    let bob_raw = ("bob", "team-a", "");
    for path in [
        format!("/v1/sandboxes/{}/x/../pause", t.a1),
        format!("/v1/sandboxes/{}/%70ause", t.a1),
    ] {
        let (s, v) = raw(&t.st.gw.url, "POST", &path, bob_raw).await;
        assert_eq!(s, 403, "{path}: {v}");
    }
    let body = httpd_body(json!({}));
    let (s, _) = send(&bob(), "POST", &t.st.gw.at("/v1/sandboxes/"), Some(&body)).await;
    assert_eq!(s, 403);
}

/// Unknown routes are denied to users.
#[tokio::test]
async fn unknown_routes_are_denied_to_users() {
    let st = KeyedStack::start().await.unwrap();
    let (s, v) = send(&alice(), "GET", &st.gw.at("/v1/secrets"), None).await;
    assert_eq!(
        (s, v["code"].as_str().unwrap()),
        (404, "GATEWAY::UNKNOWN_ROUTE")
    );
}

/// Bad bodies never reach the backend; the backend's own validation errors pass through
/// in the API's shape.
#[tokio::test]
async fn bad_bodies_never_reach_the_backend() {
    let st = KeyedStack::start().await.unwrap();
    let gw = &st.gw;
    let create_url = gw.at("/v1/sandboxes");
    let total = || async {
        send(&keyed(ADMIN_KEY), "GET", &create_url, None).await.1["pagination"]["totalItems"]
            .clone()
    };
    let before = total().await;
    let r = alice()
        .post(&create_url)
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
    let (s, v) = send(&alice(), "POST", &create_url, Some(&big)).await;
    assert_eq!(
        (s, v["code"].as_str().unwrap()),
        (413, "GATEWAY::PAYLOAD_TOO_LARGE")
    );
    let (s, v) = send(&alice(), "POST", &create_url, Some(&json!([1, 2]))).await;
    assert_eq!(
        (s, v["code"].as_str().unwrap()),
        (400, "GATEWAY::INVALID_BODY")
    );
    assert_eq!(before, total().await);
    let no_entrypoint = json!({"image": {"uri": test_image()}});
    let (s, v) = send(&alice(), "POST", &create_url, Some(&no_entrypoint)).await;
    assert_eq!(
        (s, v["code"].as_str().unwrap()),
        (400, "SANDBOX::INVALID_ENTRYPOINT")
    );
}

/// Request ids are propagated, or generated; `/healthz` reports the upstream healthy.
#[tokio::test]
async fn request_ids_are_propagated_or_generated() {
    let st = KeyedStack::start().await.unwrap();
    let gw = &st.gw;
    let r = alice()
        .get(gw.at("/v1/sandboxes"))
        .header("X-Request-ID", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-me-42");
    let r = alice().get(gw.at("/v1/sandboxes")).send().await.unwrap();
    assert!(!r.headers()["x-request-id"].is_empty());
    let (s, v) = send(&reqwest::Client::new(), "GET", &gw.at("/healthz"), None).await;
    assert_eq!((s, &v["upstream"]), (200, &json!("healthy")));
}

/// A browser page from another origin gets no CORS grant unless an operator lists the
/// origin: the preflight is refused in the API's error shape, and nothing allows it.
#[tokio::test]
async fn cross_origin_preflight_is_refused_unless_configured() {
    let st = KeyedStack::start().await.unwrap();
    let resp = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, st.gw.at("/v1/sandboxes"))
        .header("Origin", "https://elsewhere.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["code"], "GATEWAY::CORS_ORIGIN_NOT_ALLOWED");
}
