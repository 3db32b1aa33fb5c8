//! The real upstream OpenSandbox server (`opensandbox-server` 1.1.1) runs offline against
//! the test engine with the stand-in execd image, and answers the way the gateway expects.
//! The facts asserted here (response shapes and codes, auth gaps, metadata rules) are
//! summarized in the module docs of `gatehouse_tests::upstream`; if upstream changes one of
//! them, the test of that fact says which. Each test starts its own server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::api::{get_text, host_port, item_ids, send_req};
use gatehouse_tests::docker::{containers_of, docker};
use gatehouse_tests::sandbox::{httpd_body, with_limits, HELLO, HTTPD};
use gatehouse_tests::upstream::{Upstream, UpstreamOptions};
use gatehouse_tests::{test_image, wait_for};
use serde_json::{json, Value};
use std::time::Duration;

const OWNER: &str = "alice.k3j5-q9x_2.dev";
const TEAM: &str = "team-a.blue_1";

/// A create body upstream accepts: note that `resourceLimits` is required.
fn body(metadata: Value) -> Value {
    with_limits(httpd_body(metadata))
}

async fn create(up: &Upstream, body: Value) -> (u16, Value) {
    send_req(up.client().post(up.at("/v1/sandboxes")).json(&body)).await
}

async fn get(up: &Upstream, id: &str) -> (u16, Value) {
    send_req(up.client().get(up.at(&format!("/v1/sandboxes/{id}")))).await
}

/// Ids listed with the raw (already URL-encoded) `metadata` query value.
async fn list_ids(up: &Upstream, metadata_param: &str) -> Vec<String> {
    let url = up.at(&format!(
        "/v1/sandboxes?pageSize=200&metadata={metadata_param}"
    ));
    let (s, v) = send_req(up.client().get(url)).await;
    assert_eq!(s, 200, "list answered {v}");
    item_ids(&v)
}

async fn start() -> Upstream {
    let up = Upstream::start(UpstreamOptions::default()).await.unwrap();
    eprintln!("upstream healthy at {} after {:?}", up.url, up.startup);
    up
}

/// A server with one sandbox created with access metadata (dots and dashes in keys and
/// values) and `suite=<token>`.
struct Created {
    up: Upstream,
    id: String,
    suite: String,
    created: Value,
}

impl Created {
    async fn start() -> Self {
        let up = start().await;
        let suite = uuid::Uuid::new_v4().simple().to_string();
        let md = json!({"access.owner": OWNER, "access.team": TEAM, "suite": suite});
        let (s, created) = create(&up, body(md)).await;
        assert_eq!(s, 202, "create answered {created}");
        let id = created["id"].as_str().unwrap().to_string();
        Self {
            up,
            id,
            suite,
            created,
        }
    }

    /// `GET /v1/sandboxes/{id}{rest}` with the key.
    async fn get(&self, rest: &str) -> (u16, Value) {
        let url = self.up.at(&format!("/v1/sandboxes/{}{rest}", self.id));
        send_req(self.up.client().get(url)).await
    }
}

/// Create is synchronous (Running when it answers); metadata round-trips, with the
/// image's labels folded in; one container of this instance.
#[tokio::test]
async fn create_is_synchronous_and_metadata_round_trips() {
    let t = Created::start().await;
    let created = &t.created;
    assert_eq!(created["status"]["state"], "Running", "{created}");
    assert_eq!(created["metadata"]["access.owner"], OWNER);
    assert_eq!(created["metadata"]["access.team"], TEAM);
    assert!(created["expiresAt"].is_string());
    let got = wait_for("Running", Duration::from_secs(30), || async {
        let (s, v) = get(&t.up, &t.id).await;
        (s == 200 && v["status"]["state"] == "Running").then_some(v)
    })
    .await
    .unwrap();
    assert_eq!(got["image"]["uri"], test_image());
    assert_eq!(got["entrypoint"], json!(HTTPD));
    assert_eq!(got["metadata"]["access.owner"], OWNER);
    assert_eq!(got["metadata"]["access.team"], TEAM);
    let labels = [
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &test_image(),
    ];
    let image_labels: Value = serde_json::from_str(&docker(&labels).unwrap()).unwrap();
    for (k, v) in image_labels.as_object().into_iter().flatten() {
        assert_eq!(&got["metadata"][k], v, "image label {k} in {got}");
    }
    assert_eq!(containers_of(&t.id).unwrap().len(), 1);
    assert_eq!(t.up.containers().unwrap().len(), 1);
}

/// The 8080 endpoint is a bare host:port on 127.0.0.1 and serves the web root.
#[tokio::test]
async fn endpoint_is_a_bare_loopback_address_serving_the_web_root() {
    let t = Created::start().await;
    let (s, ep) = t.get("/endpoints/8080").await;
    assert_eq!(s, 200, "{ep}");
    let endpoint = ep["endpoint"].as_str().unwrap().to_string();
    assert!(endpoint.starts_with("127.0.0.1:"), "{ep}");
    let page = wait_for("the sandbox's httpd", Duration::from_secs(20), || {
        get_text(format!("http://{endpoint}/"))
    })
    .await
    .unwrap();
    assert_eq!(page.trim(), HELLO);
}

/// The stand-in execd answers /ping on the execd port (other ports are reported as
/// `<execd host:port>/proxy/<port>`).
#[tokio::test]
async fn execd_standin_answers_ping() {
    let t = Created::start().await;
    let (s, ep) = t.get("/endpoints/44772").await;
    assert_eq!(s, 200, "{ep}");
    let (execd_addr, rest) = ep["endpoint"].as_str().unwrap().split_once('/').unwrap();
    assert_eq!(rest, "proxy/44772");
    assert!(execd_addr.starts_with("127.0.0.1:"), "{ep}");
    let pong = wait_for("execd /ping", Duration::from_secs(20), || {
        get_text(format!("http://{execd_addr}/ping"))
    })
    .await
    .unwrap();
    assert_eq!(pong.trim(), "pong");
}

/// The server proxy endpoint, and the proxy itself, which needs NO API key; routes are
/// served at the root too, not only under /v1.
#[tokio::test]
async fn server_proxy_is_not_authenticated() {
    let t = Created::start().await;
    let (up, id) = (&t.up, &t.id);
    let (s, ep) = t.get("/endpoints/8080?use_server_proxy=true").await;
    assert_eq!(s, 200, "{ep}");
    assert_eq!(
        ep["endpoint"],
        format!("{}/v1/sandboxes/{id}/proxy/8080", host_port(&up.url))
    );
    let proxied = up.at(&format!("/v1/sandboxes/{id}/proxy/8080/"));
    // The sandbox's web server may still be starting (the upstream answers 502 then).
    let mut anon = reqwest::get(&proxied).await.unwrap();
    for _ in 0..50 {
        if anon.status() != 502 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        anon = reqwest::get(&proxied).await.unwrap();
    }
    assert_eq!(anon.status(), 200, "the proxy route is not authenticated");
    assert_eq!(anon.text().await.unwrap().trim(), HELLO);
    let wrong = reqwest::Client::new()
        .get(&proxied)
        .header("OPEN-SANDBOX-API-KEY", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 200);
    let (s, _) = send_req(up.client().get(up.at(&format!("/sandboxes/{id}")))).await;
    assert_eq!(s, 200);
}

/// The list filter: one URL-encoded `metadata` parameter, AND of exact matches; a bare
/// `=` works too; a key without `=` is a 400.
#[tokio::test]
async fn list_filter_is_one_encoded_query() {
    let t = Created::start().await;
    let (up, me) = (&t.up, vec![t.id.clone()]);
    let suite = format!("suite%3D{}", t.suite);
    assert_eq!(
        list_ids(up, &format!("access.team%3D{TEAM}%26{suite}")).await,
        me
    );
    assert_eq!(
        list_ids(up, &format!("access.owner%3D{OWNER}%26{suite}")).await,
        me
    );
    assert!(list_ids(up, &format!("access.team%3Dx%26{suite}"))
        .await
        .is_empty());
    assert_eq!(
        list_ids(up, &format!("access.team={TEAM}%26{suite}")).await,
        me
    );
    let (s, v) = send_req(up.client().get(up.at("/v1/sandboxes?metadata=access.team"))).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["code"], "INVALID_METADATA_FORMAT");
    assert_eq!(
        v["message"],
        "Invalid metadata format: bad query field: 'access.team'"
    );
}

/// PATCH metadata can rewrite access.* keys, and the filter then follows it.
#[tokio::test]
async fn metadata_patch_can_rewrite_access_keys() {
    let t = Created::start().await;
    let url = t.up.at(&format!("/v1/sandboxes/{}/metadata", t.id));
    let patch =
        t.up.client()
            .patch(url)
            .json(&json!({"access.owner": "mallory"}));
    let (s, v) = send_req(patch).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["metadata"]["access.owner"], "mallory");
    let filter = format!("access.owner%3Dmallory%26suite%3D{}", t.suite);
    assert_eq!(list_ids(&t.up, &filter).await, vec![t.id.clone()]);
}

/// DELETE → 204, then it is gone everywhere; a second DELETE is a 404.
#[tokio::test]
async fn delete_removes_it_everywhere() {
    let t = Created::start().await;
    let (up, id) = (&t.up, &t.id);
    let delete = || send_req(up.client().delete(up.at(&format!("/v1/sandboxes/{id}"))));
    let (s, v) = delete().await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = get(up, id).await;
    assert_eq!(s, 404);
    assert_eq!(
        v,
        json!({"code": "DOCKER::SANDBOX_NOT_FOUND", "message": format!("Sandbox {id} not found.")})
    );
    assert!(list_ids(up, &format!("suite%3D{}", t.suite))
        .await
        .is_empty());
    assert!(containers_of(id).unwrap().is_empty());
    assert_eq!(delete().await.0, 404);
}

/// /health needs no key; 401s are checked before routing (an unknown route without a key
/// is 401 too); unknown routes and sandboxes are 404s in their own shapes.
#[tokio::test]
async fn auth_and_not_found_error_shapes() {
    let up = start().await;
    let (c, anon) = (up.client(), reqwest::Client::new());
    let (s, v) = send_req(anon.get(up.at("/health"))).await;
    assert_eq!((s, v), (200, json!({"status": "healthy"})));
    let missing = json!({
        "code": "MISSING_API_KEY",
        "message": "Authentication credentials are missing. Provide API key via OPEN-SANDBOX-API-KEY header.",
    });
    let list = up.at("/v1/sandboxes");
    assert_eq!(send_req(anon.get(&list)).await, (401, missing.clone()));
    assert_eq!(send_req(anon.get(up.at("/v1/nope"))).await, (401, missing));
    let invalid = json!({
        "code": "INVALID_API_KEY",
        "message": "Authentication credentials are invalid. Check your API key and try again.",
    });
    let wrong_key = anon.get(&list).header("OPEN-SANDBOX-API-KEY", "wrong");
    assert_eq!(send_req(wrong_key).await, (401, invalid));
    let not_found = json!({"detail": "Not Found"});
    assert_eq!(send_req(c.get(up.at("/v1/nope"))).await, (404, not_found));
    let no_sandbox =
        json!({"code": "DOCKER::SANDBOX_NOT_FOUND", "message": "Sandbox nope not found."});
    assert_eq!(
        send_req(c.get(up.at("/v1/sandboxes/nope"))).await,
        (404, no_sandbox)
    );
    let (s, v) = send_req(anon.get(up.at("/v1/sandboxes/nope/proxy/8080/"))).await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["code"], "DOCKER::SANDBOX_NOT_FOUND");
}

/// Bad bodies are FastAPI 422s (`resourceLimits` is required); metadata follows
/// Kubernetes label rules (400, nothing created).
#[tokio::test]
async fn body_and_metadata_error_shapes() {
    let up = start().await;
    let (s, v) = create(&up, json!({"image": {}})).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(
        v,
        json!({"detail": [{"type": "missing", "loc": ["body", "image", "uri"], "msg": "Field required", "input": {}}]})
    );
    let malformed = up
        .client()
        .post(up.at("/v1/sandboxes"))
        .header("content-type", "application/json")
        .body("{");
    let (s, v) = send_req(malformed).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["detail"][0]["type"], "json_invalid");
    assert_eq!(v["detail"][0]["loc"], json!(["body", 1]));
    let no_limits =
        json!({"image": {"uri": test_image()}, "entrypoint": ["sleep", "60"], "timeout": 60});
    let (s, v) = create(&up, no_limits).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["detail"][0]["type"], "value_error");
    assert_eq!(v["detail"][0]["loc"], json!(["body"]));
    assert_eq!(
        v["detail"][0]["msg"],
        "Value error, resourceLimits is required when poolRef is not provided."
    );
    for (key, value) in [
        ("access.owner", "alice.k3j5..."),
        ("access.owner", "alice@example.com"),
        ("access.owner", &"a".repeat(64)[..]),
        ("opensandbox.io/owner", "alice"),
        ("access.team/x/y", "x"),
    ] {
        let (s, v) = create(&up, body(json!({ key: value }))).await;
        assert_eq!(s, 400, "{key}={value} answered {v}");
        assert_eq!(v["code"], "SANDBOX::INVALID_METADATA_LABEL", "{v}");
    }
    assert!(up.containers().unwrap().is_empty());
}

/// Dropping an `Upstream` removes the containers of the sandboxes it created (and only
/// those), even when they were never deleted.
#[tokio::test]
async fn upstream_drop_removes_its_containers() {
    let up = start().await;
    let (s, created) = create(&up, body(json!({"purpose": "drop-test"}))).await;
    assert_eq!(s, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(containers_of(&id).unwrap().len(), 1);
    let log_path = up.log_path.clone();
    drop(up);
    assert!(containers_of(&id).unwrap().is_empty());
    assert!(!log_path.exists(), "the temporary directory is removed");
}
