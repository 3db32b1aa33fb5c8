//! Handler tests over the in-memory runtime: every validation rule, the error shape, auth,
//! both mounts. Docker behaviour is covered by the end-to-end tests.

use super::*;
use crate::store::Store;
use crate::test_support::FakeRuntime;
use axum::body::Body;
use gatehouse_lifecycle::validate::TimeoutLimits;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use tower::ServiceExt;

const KEY: &str = "test-key";

struct Harness {
    app: Router,
    fake: Arc<FakeRuntime>,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db")).await.unwrap();
    let fake = Arc::new(FakeRuntime::default());
    let limits = TimeoutLimits {
        min_seconds: 60,
        max_seconds: Some(86_400),
    };
    let service = Arc::new(Service::new(store, fake.clone(), limits));
    let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(HttpConnector::new());
    let state = Arc::new(AppState {
        service,
        api_key: Some(KEY.to_string()).into(),
        eip: None,
        endpoint_host: None,
        max_body_bytes: 4096,
        proxy_client: client,
    });
    Harness {
        app: router(state),
        fake,
        _dir: dir,
    }
}

async fn call(app: &Router, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call_raw(app, method, path, body.map(|b| b.to_string()), Some(KEY)).await
}

async fn call_raw(
    app: &Router,
    method: &str,
    path: &str,
    body: Option<String>,
    key: Option<&str>,
) -> (u16, Value) {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "gw.example:8080");
    if let Some(k) = key {
        req = req.header("OPEN-SANDBOX-API-KEY", k);
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    (status, v)
}

fn create_body() -> Value {
    json!({
        "image": {"uri": "busybox"},
        "entrypoint": ["sleep", "1000"],
        "timeout": 600,
        "resourceLimits": {"cpu": "500m", "memory": "512Mi"},
        "metadata": {"project": "apollo"}
    })
}

fn assert_error(v: &Value, code: &str) {
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert_eq!(
        v.as_object().unwrap().len(),
        2,
        "error has exactly code and message: {v}"
    );
}

#[tokio::test]
async fn health_is_open_everything_else_needs_the_key() {
    let h = harness().await;
    let (s, v) = call_raw(&h.app, "GET", "/health", None, None).await;
    assert_eq!((s, v), (200, json!({"status": "healthy"})));
    let (s, v) = call_raw(&h.app, "GET", "/v1/sandboxes", None, None).await;
    assert_eq!(s, 401);
    assert_error(&v, "MISSING_API_KEY");
    let (s, v) = call_raw(&h.app, "GET", "/v1/sandboxes", None, Some("wrong")).await;
    assert_eq!(s, 401);
    assert_error(&v, "INVALID_API_KEY");
    // Only the exact path is exempt.
    let (s, _) = call_raw(&h.app, "GET", "/health/../v1/sandboxes", None, None).await;
    assert_eq!(s, 401);
    let (s, _) = call_raw(&h.app, "GET", "/healthz", None, None).await;
    assert_eq!(s, 401);
    // The proxy route is not exempt either (upstream leaves it open).
    let (s, _) = call_raw(&h.app, "GET", "/v1/sandboxes/x/proxy/8080/", None, None).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn lifecycle_under_both_mounts() {
    let h = harness().await;
    let (s, created) = call(&h.app, "POST", "/v1/sandboxes", Some(create_body())).await;
    assert_eq!(s, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["status"]["state"], "Running");
    assert!(
        created.get("image").is_none(),
        "create response omits the image"
    );
    assert!(created["expiresAt"].as_str().is_some());
    for prefix in ["", "/v1"] {
        let (s, got) = call(&h.app, "GET", &format!("{prefix}/sandboxes/{id}"), None).await;
        assert_eq!(s, 200);
        assert_eq!(got["image"]["uri"], "busybox");
        assert_eq!(got["metadata"]["project"], "apollo");
    }
    let (s, _) = call(&h.app, "POST", &format!("/v1/sandboxes/{id}/pause"), None).await;
    assert_eq!(s, 202);
    let (s, v) = call(&h.app, "POST", &format!("/v1/sandboxes/{id}/pause"), None).await;
    assert_eq!(s, 409);
    assert_error(&v, "DOCKER::SANDBOX_NOT_RUNNING");
    let (s, _) = call(&h.app, "POST", &format!("/sandboxes/{id}/resume"), None).await;
    assert_eq!(s, 202);
    let (s, _) = call(&h.app, "DELETE", &format!("/v1/sandboxes/{id}"), None).await;
    assert_eq!(s, 204);
    let (s, v) = call(&h.app, "GET", &format!("/v1/sandboxes/{id}"), None).await;
    assert_eq!(s, 404);
    assert_error(&v, "SANDBOX::NOT_FOUND");
}

#[tokio::test]
async fn create_validation_rules() {
    let h = harness().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"image": {"uri": "busybox"}}),
            "SANDBOX::INVALID_ENTRYPOINT",
        ),
        (
            json!({"image": {"uri": "busybox"}, "entrypoint": []}),
            "SANDBOX::INVALID_ENTRYPOINT",
        ),
        (json!({"entrypoint": ["sh"]}), "SANDBOX::INVALID_PARAMETER"),
        (
            json!({"image": {"uri": "busybox"}, "snapshotId": "s", "entrypoint": ["sh"]}),
            "SANDBOX::INVALID_PARAMETER",
        ),
        (
            json!({"image": {"uri": "busybox"}, "entrypoint": ["sh"], "timeout": 59}),
            "SANDBOX::INVALID_PARAMETER",
        ),
        (
            json!({"image": {"uri": "busybox"}, "entrypoint": ["sh"], "timeout": 86401}),
            "SANDBOX::INVALID_PARAMETER",
        ),
        (
            json!({"image": {"uri": "busybox"}, "entrypoint": ["sh"], "timeout": "long"}),
            "SANDBOX::INVALID_REQUEST_BODY",
        ),
        (
            json!({"image": {"uri": "busybox"}, "entrypoint": ["sh"], "metadata": {"opensandbox.io/owner": "x"}}),
            "SANDBOX::INVALID_METADATA_LABEL",
        ),
        (
            json!({"image": {"uri": "busybox"}, "entrypoint": ["sh"], "metadata": {"bad key": "x"}}),
            "SANDBOX::INVALID_METADATA_LABEL",
        ),
        (
            json!({"image": {"uri": "busybox"}, "entrypoint": ["sh"], "metadata": {"k": "bad value"}}),
            "SANDBOX::INVALID_METADATA_LABEL",
        ),
        (
            json!({"image": {"uri": "busybox"}, "entrypoint": ["sh"], "metadata": {"k": "v".repeat(64)}}),
            "SANDBOX::INVALID_METADATA_LABEL",
        ),
        (
            json!({"image": {"uri": "busybox"}, "entrypoint": ["sh"], "resourceLimits": {"cpu": "lots"}}),
            "SANDBOX::INVALID_PARAMETER",
        ),
        (
            json!({"image": {"uri": "busybox"}, "entrypoint": ["sh"], "resourceLimits": {"memory": "12XB"}}),
            "SANDBOX::INVALID_PARAMETER",
        ),
        (
            json!({"image": {"uri": "busybox"}, "entrypoint": ["sh"], "platform": {"os": "plan9", "arch": "amd64"}}),
            "SANDBOX::INVALID_PARAMETER",
        ),
        (
            json!({"image": {"uri": "busybox"}, "entrypoint": ["sh"], "env": {"A=B": "x"}}),
            "SANDBOX::INVALID_PARAMETER",
        ),
        (
            json!({"image": {"uri": "busybox"}, "entrypoint": ["sh"], "networkPolicy": {"defaultAction": "deny"}}),
            "SANDBOX::API_NOT_SUPPORTED",
        ),
        (
            json!({"image": {"uri": "missing"}, "entrypoint": ["sh"]}),
            "DOCKER::SANDBOX_IMAGE_PULL_FAILED",
        ),
    ];
    for (body, code) in cases {
        let (s, v) = call(&h.app, "POST", "/v1/sandboxes", Some(body.clone())).await;
        assert_eq!(s, 400, "{body} -> {v}");
        assert_error(&v, code);
    }
    assert!(
        h.fake.sandboxes.lock().unwrap().is_empty(),
        "no rejected create reaches the engine"
    );

    let (s, v) = call_raw(
        &h.app,
        "POST",
        "/v1/sandboxes",
        Some("{not json".into()),
        Some(KEY),
    )
    .await;
    assert_eq!(s, 400);
    assert_error(&v, "SANDBOX::INVALID_REQUEST_BODY");
    let (s, v) = call_raw(&h.app, "POST", "/v1/sandboxes", None, Some(KEY)).await;
    assert_eq!(s, 400);
    assert_error(&v, "SANDBOX::INVALID_REQUEST_BODY");
    let big =
        json!({"image": {"uri": "busybox"}, "entrypoint": ["sh"], "env": {"X": "y".repeat(5000)}});
    let (s, v) = call(&h.app, "POST", "/v1/sandboxes", Some(big)).await;
    assert_eq!(s, 413);
    assert_error(&v, "SANDBOX::PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn null_timeout_means_no_expiry_and_renew_conflicts() {
    let h = harness().await;
    let mut body = create_body();
    body["timeout"] = Value::Null;
    let (_, created) = call(&h.app, "POST", "/v1/sandboxes", Some(body)).await;
    let id = created["id"].as_str().unwrap();
    assert!(created.get("expiresAt").is_none());
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (s, v) = call(
        &h.app,
        "POST",
        &format!("/v1/sandboxes/{id}/renew-expiration"),
        Some(json!({"expiresAt": future})),
    )
    .await;
    assert_eq!(s, 409);
    assert_error(&v, "DOCKER::INVALID_EXPIRATION");
}

#[tokio::test]
async fn renew_rules() {
    let h = harness().await;
    let (_, created) = call(&h.app, "POST", "/v1/sandboxes", Some(create_body())).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/v1/sandboxes/{id}/renew-expiration");
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let (s, v) = call(&h.app, "POST", &path, Some(json!({"expiresAt": past}))).await;
    assert_eq!(s, 400);
    assert_error(&v, "DOCKER::INVALID_EXPIRATION");
    let (s, v) = call(
        &h.app,
        "POST",
        &path,
        Some(json!({"expiresAt": "tomorrow"})),
    )
    .await;
    assert_eq!(s, 400);
    assert_error(&v, "SANDBOX::INVALID_PARAMETER");
    let (s, v) = call(&h.app, "POST", &path, Some(json!({}))).await;
    assert_eq!(s, 400);
    assert_error(&v, "SANDBOX::INVALID_REQUEST_BODY");
    let future = chrono::Utc::now() + chrono::Duration::hours(2);
    let (s, v) = call(
        &h.app,
        "POST",
        &path,
        Some(json!({"expiresAt": future.to_rfc3339()})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let got = gatehouse_lifecycle::time::parse(v["expiresAt"].as_str().unwrap()).unwrap();
    assert!((got - future).num_milliseconds().abs() < 1);
    let (s, _) = call(
        &h.app,
        "POST",
        "/v1/sandboxes/nope/renew-expiration",
        Some(json!({"expiresAt": future.to_rfc3339()})),
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn metadata_merge_patch() {
    let h = harness().await;
    let (_, created) = call(&h.app, "POST", "/v1/sandboxes", Some(create_body())).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/v1/sandboxes/{id}/metadata");
    let (s, v) = call(
        &h.app,
        "PATCH",
        &path,
        Some(json!({"env": "prod", "project": null, "gone": null})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["metadata"], json!({"env": "prod"}));
    let (s, v) = call(&h.app, "PATCH", &path, Some(json!({}))).await;
    assert_eq!((s, &v["metadata"]), (200, &json!({"env": "prod"})));
    for bad in [
        json!({"opensandbox.io/owner": "x"}),
        json!({"opensandbox.io/owner": null}),
        json!({"k": 5}),
        json!({"k": "a b"}),
    ] {
        let (s, v) = call(&h.app, "PATCH", &path, Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad}");
        assert_error(&v, "SANDBOX::INVALID_METADATA_LABEL");
    }
    let (s, v) = call(&h.app, "PATCH", &path, Some(json!(["not", "an", "object"]))).await;
    assert_eq!(s, 400);
    assert_error(&v, "SANDBOX::INVALID_PARAMETER");
    let (_, v) = call(&h.app, "GET", &format!("/v1/sandboxes/{id}"), None).await;
    assert_eq!(
        v["metadata"],
        json!({"env": "prod"}),
        "a rejected patch changes nothing"
    );
}

#[tokio::test]
async fn list_filters_and_pages() {
    let h = harness().await;
    for i in 0..5 {
        let mut b = create_body();
        b["metadata"] =
            json!({"project": if i % 2 == 0 { "even" } else { "odd" }, "n": i.to_string()});
        call(&h.app, "POST", "/v1/sandboxes", Some(b)).await;
    }
    let (s, v) = call(
        &h.app,
        "GET",
        "/v1/sandboxes?metadata=project%3Deven&pageSize=2",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        v["pagination"],
        json!({"page": 1, "pageSize": 2, "totalItems": 3, "totalPages": 2, "hasNextPage": true})
    );
    let (_, v) = call(
        &h.app,
        "GET",
        "/v1/sandboxes?metadata=project%3Deven%26n%3D4",
        None,
    )
    .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (_, v) = call(
        &h.app,
        "GET",
        "/v1/sandboxes?state=running&state=Paused",
        None,
    )
    .await;
    assert_eq!(v["pagination"]["totalItems"], 5);
    let (_, v) = call(&h.app, "GET", "/v1/sandboxes?state=paused", None).await;
    assert_eq!(v["pagination"]["totalItems"], 0);
    for bad in ["page=0", "pageSize=0", "pageSize=201", "page=x"] {
        let (s, v) = call(&h.app, "GET", &format!("/v1/sandboxes?{bad}"), None).await;
        assert_eq!(s, 400, "{bad}");
        assert_error(&v, "SANDBOX::INVALID_PARAMETER");
    }
    let (s, v) = call(&h.app, "GET", "/v1/sandboxes?metadata=broken", None).await;
    assert_eq!(s, 400);
    assert_error(&v, "INVALID_METADATA_FORMAT");
}

#[tokio::test]
async fn endpoints_direct_and_server_proxy() {
    let h = harness().await;
    let (_, created) = call(&h.app, "POST", "/v1/sandboxes", Some(create_body())).await;
    let id = created["id"].as_str().unwrap();
    let (s, v) = call(
        &h.app,
        "GET",
        &format!("/v1/sandboxes/{id}/endpoints/8080"),
        None,
    )
    .await;
    assert_eq!((s, v), (200, json!({"endpoint": "127.0.0.1:40080"})));
    let (_, v) = call(
        &h.app,
        "GET",
        &format!("/v1/sandboxes/{id}/endpoints/8080?use_server_proxy=true"),
        None,
    )
    .await;
    assert_eq!(
        v["endpoint"],
        format!("gw.example:8080/v1/sandboxes/{id}/proxy/8080")
    );
    let (_, v) = call(
        &h.app,
        "GET",
        &format!("/sandboxes/{id}/endpoints/8080?use_server_proxy=true"),
        None,
    )
    .await;
    assert_eq!(
        v["endpoint"],
        format!("gw.example:8080/sandboxes/{id}/proxy/8080")
    );
    for bad in ["0", "65536", "http"] {
        let (s, v) = call(
            &h.app,
            "GET",
            &format!("/v1/sandboxes/{id}/endpoints/{bad}"),
            None,
        )
        .await;
        assert_eq!(s, 400);
        assert_error(&v, "SANDBOX::INVALID_PORT");
    }
    let (s, v) = call(
        &h.app,
        "GET",
        &format!("/v1/sandboxes/{id}/endpoints/8080?use_server_proxy=maybe"),
        None,
    )
    .await;
    assert_eq!(s, 400);
    assert_error(&v, "SANDBOX::INVALID_PARAMETER");
}

#[tokio::test]
async fn engine_down_serves_reads_and_refuses_mutations() {
    let h = harness().await;
    let (_, created) = call(&h.app, "POST", "/v1/sandboxes", Some(create_body())).await;
    let id = created["id"].as_str().unwrap();
    h.fake.down.store(true, Ordering::SeqCst);
    let (s, v) = call(&h.app, "GET", &format!("/v1/sandboxes/{id}"), None).await;
    assert_eq!((s, &v["status"]["state"]), (200, &json!("Running")));
    let (s, v) = call(&h.app, "GET", "/v1/sandboxes", None).await;
    assert_eq!((s, &v["pagination"]["totalItems"]), (200, &json!(1)));
    let (s, v) = call(&h.app, "DELETE", &format!("/v1/sandboxes/{id}"), None).await;
    assert_eq!(s, 503);
    assert_error(&v, "DOCKER::ENGINE_UNAVAILABLE");
    let (s, v) = call(&h.app, "POST", "/v1/sandboxes", Some(create_body())).await;
    assert_eq!(s, 503);
    assert_error(&v, "DOCKER::ENGINE_UNAVAILABLE");
    h.fake.down.store(false, Ordering::SeqCst);
    let (s, _) = call(&h.app, "DELETE", &format!("/v1/sandboxes/{id}"), None).await;
    assert_eq!(s, 204);
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_error_shape() {
    let h = harness().await;
    let (s, v) = call(&h.app, "GET", "/v1/nothing", None).await;
    assert_eq!(s, 404);
    assert_error(&v, "SANDBOX::ROUTE_NOT_FOUND");
    let (s, v) = call(&h.app, "PUT", "/v1/sandboxes", None).await;
    assert_eq!(s, 405);
    assert_error(&v, "SANDBOX::METHOD_NOT_ALLOWED");
    let (s, v) = call(&h.app, "GET", "/v1/snapshots/s1", None).await;
    assert_eq!(s, 501);
    assert_error(&v, "SANDBOX::API_NOT_SUPPORTED");
}

#[tokio::test]
async fn request_id_is_propagated_or_generated() {
    let h = harness().await;
    let req = http::Request::get("/health")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .unwrap();
    let resp = h.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
    let req = http::Request::get("/health").body(Body::empty()).unwrap();
    let resp = h.app.clone().oneshot(req).await.unwrap();
    assert!(uuid::Uuid::parse_str(resp.headers()["x-request-id"].to_str().unwrap()).is_ok());
}

#[tokio::test]
async fn agent_endpoints_carry_the_token_and_other_ports_go_through_the_agent() {
    let h = harness().await;
    h.fake.execd.store(true, Ordering::SeqCst);
    let (s, created) = call(&h.app, "POST", "/v1/sandboxes", Some(create_body())).await;
    assert_eq!(s, 202);
    let id = created["id"].as_str().unwrap();
    let (s, v) = call(
        &h.app,
        "GET",
        &format!("/v1/sandboxes/{id}/endpoints/44772"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["endpoint"], "127.0.0.1:40772");
    let token = v["headers"]["X-EXECD-ACCESS-TOKEN"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    let (_, v) = call(
        &h.app,
        "GET",
        &format!("/v1/sandboxes/{id}/endpoints/18080"),
        None,
    )
    .await;
    assert_eq!(v["endpoint"], "127.0.0.1:40080");
    assert_eq!(v["headers"]["X-EXECD-ACCESS-TOKEN"], token.as_str());
    // A published user port: no token.
    let (_, v) = call(
        &h.app,
        "GET",
        &format!("/v1/sandboxes/{id}/endpoints/8080"),
        None,
    )
    .await;
    assert_eq!(v, json!({"endpoint": "127.0.0.1:40080"}));
    // An unpublished port: through the agent's proxy, with the token.
    let (s, v) = call(
        &h.app,
        "GET",
        &format!("/v1/sandboxes/{id}/endpoints/9999"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["endpoint"], "127.0.0.1:40772/proxy/9999");
    assert_eq!(v["headers"]["X-EXECD-ACCESS-TOKEN"], token.as_str());
    // Server-proxy endpoints never carry the token: the backend adds it itself.
    let (_, v) = call(
        &h.app,
        "GET",
        &format!("/v1/sandboxes/{id}/endpoints/44772?use_server_proxy=true"),
        None,
    )
    .await;
    assert_eq!(
        v,
        json!({"endpoint": format!("gw.example:8080/v1/sandboxes/{id}/proxy/44772")})
    );
    // Another sandbox gets another token.
    let (_, other) = call(&h.app, "POST", "/v1/sandboxes", Some(create_body())).await;
    let oid = other["id"].as_str().unwrap();
    let (_, v) = call(
        &h.app,
        "GET",
        &format!("/v1/sandboxes/{oid}/endpoints/44772"),
        None,
    )
    .await;
    assert_ne!(v["headers"]["X-EXECD-ACCESS-TOKEN"], token.as_str());
    // The token never appears in the sandbox's API view.
    let (_, v) = call(&h.app, "GET", &format!("/v1/sandboxes/{id}"), None).await;
    assert!(!v.to_string().contains(&token));
}

#[tokio::test]
async fn upstream_compat_routes() {
    let h = harness().await;
    let (s, v) = call_raw(&h.app, "GET", "/version", None, None).await;
    assert_eq!(s, 200);
    assert!(v["version"].is_string());
    let (s, _) = call(
        &h.app,
        "POST",
        "/v1/metrics/events",
        Some(json!({"event": "x"})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call_raw(&h.app, "POST", "/v1/metrics/events", None, None).await;
    assert_eq!(s, 401);
    for path in ["/v1/pools", "/pools", "/v1/pools/p1"] {
        let (s, v) = call(&h.app, "GET", path, None).await;
        assert_eq!(s, 501, "{path}");
        assert_eq!(v["code"], "KUBERNETES::POOL_NOT_SUPPORTED");
    }
    let (s, v) = call(&h.app, "GET", "/v1/snapshots?pageSize=5", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["items"], json!([]));
    assert_eq!(v["pagination"]["pageSize"], 5);
    assert_eq!(v["pagination"]["totalItems"], 0);
    let (s, _) = call(&h.app, "GET", "/v1/snapshots?pageSize=0", None).await;
    assert_eq!(s, 400);
    // A trailing slash redirects to the path without it, as upstream.
    let req = http::Request::builder()
        .uri("/v1/sandboxes/?page=2")
        .header("OPEN-SANDBOX-API-KEY", KEY)
        .body(Body::empty())
        .unwrap();
    let resp = h.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 307);
    assert_eq!(resp.headers()["location"], "/v1/sandboxes?page=2");
    // Diagnostics: the fake has no logs (501), an unknown scope is 400.
    let (_, created) = call(&h.app, "POST", "/v1/sandboxes", Some(create_body())).await;
    let id = created["id"].as_str().unwrap();
    let (s, v) = call(
        &h.app,
        "GET",
        &format!("/v1/sandboxes/{id}/diagnostics/logs?scope=bogus"),
        None,
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v["code"], "DIAGNOSTICS_SCOPE_UNSUPPORTED");
    let (s, _) = call(
        &h.app,
        "GET",
        &format!("/v1/sandboxes/{id}/diagnostics/logs?scope=container"),
        None,
    )
    .await;
    assert_eq!(s, 501);
    let (s, _) = call(
        &h.app,
        "GET",
        "/v1/sandboxes/nope/diagnostics/logs?scope=container",
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, v) = call(
        &h.app,
        "GET",
        &format!("/v1/sandboxes/{id}/diagnostics/summary"),
        None,
    )
    .await;
    assert_eq!(s, 501);
    assert_eq!(v["code"], "SANDBOX::API_NOT_SUPPORTED");
}
