//! The real upstream OpenSandbox server (`opensandbox-server` 1.1.1) runs offline against
//! the test engine with the stand-in execd image, and answers the way the gateway expects.
//! The facts asserted here (response shapes and codes, auth gaps, metadata rules) are
//! summarized in the module docs of `gatehouse_tests::upstream`; if upstream changes one of
//! them, this test says which.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::docker::{containers_of, docker};
use gatehouse_tests::upstream::{Upstream, UpstreamOptions};
use gatehouse_tests::{test_image, wait_for};
use serde_json::{json, Value};
use std::time::Duration;

const HTTPD: [&str; 6] = ["httpd", "-f", "-p", "8080", "-h", "/www"];
const HELLO: &str = "hello from a gatehouse sandbox";

/// A create body upstream accepts: note that `resourceLimits` is required.
fn httpd_body(metadata: Value) -> Value {
    json!({
        "image": {"uri": test_image()},
        "entrypoint": HTTPD,
        "timeout": 600,
        "resourceLimits": {"cpu": "500m", "memory": "64Mi"},
        "metadata": metadata,
    })
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn create(up: &Upstream, body: Value) -> (u16, Value) {
    send(up.client().post(up.at("/v1/sandboxes")).json(&body)).await
}

async fn get(up: &Upstream, id: &str) -> (u16, Value) {
    send(up.client().get(up.at(&format!("/v1/sandboxes/{id}")))).await
}

/// Ids listed with the raw (already URL-encoded) `metadata` query value.
async fn list_ids(up: &Upstream, metadata_param: &str) -> Vec<String> {
    let (s, v) = send(up.client().get(up.at(&format!(
        "/v1/sandboxes?pageSize=200&metadata={metadata_param}"
    ))))
    .await;
    assert_eq!(s, 200, "list answered {v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

async fn http_get_text(url: &str) -> Option<String> {
    let r = reqwest::get(url).await.ok()?;
    r.status().is_success().then_some(())?;
    r.text().await.ok()
}

async fn start() -> Upstream {
    let up = Upstream::start(UpstreamOptions::default()).await.unwrap();
    eprintln!("upstream healthy at {} after {:?}", up.url, up.startup);
    up
}

/// Create → Running → endpoint answers → list filter → DELETE → gone, through HTTP with
/// the API key; metadata with dots and dashes in keys and values round-trips.
#[tokio::test]
async fn upstream_lifecycle_offline() {
    let up = start().await;
    let c = up.client();
    let suite = uuid::Uuid::new_v4().simple().to_string();
    let owner = "alice.k3j5-q9x_2.dev";
    let team = "team-a.blue_1";

    let (s, created) = create(
        &up,
        httpd_body(json!({"access.owner": owner, "access.team": team, "suite": suite})),
    )
    .await;
    assert_eq!(s, 202, "create answered {created}");
    let id = created["id"].as_str().unwrap().to_string();
    // Create is synchronous: the sandbox is Running when it answers.
    assert_eq!(created["status"]["state"], "Running", "{created}");
    assert_eq!(created["metadata"]["access.owner"], owner);
    assert_eq!(created["metadata"]["access.team"], team);
    assert!(created["expiresAt"].is_string());

    let got = wait_for(
        &format!("{id} Running"),
        Duration::from_secs(30),
        || async {
            let (s, v) = get(&up, &id).await;
            (s == 200 && v["status"]["state"] == "Running").then_some(v)
        },
    )
    .await
    .unwrap();
    assert_eq!(got["image"]["uri"], test_image());
    assert_eq!(got["entrypoint"], json!(HTTPD));
    assert_eq!(got["metadata"]["access.owner"], owner);
    assert_eq!(got["metadata"]["access.team"], team);
    // Upstream folds the image's labels into the metadata it returns.
    let image_labels: Value = serde_json::from_str(
        &docker(&[
            "image",
            "inspect",
            "--format",
            "{{json .Config.Labels}}",
            &test_image(),
        ])
        .unwrap(),
    )
    .unwrap();
    for (k, v) in image_labels.as_object().into_iter().flatten() {
        assert_eq!(&got["metadata"][k], v, "image label {k} in {got}");
    }

    // One container, created by this instance, labelled with the sandbox id.
    let cids = containers_of(&id).unwrap();
    assert_eq!(cids.len(), 1);
    assert_eq!(up.containers().unwrap().len(), 1);

    // The 8080 endpoint is a bare host:port on 127.0.0.1 and serves the web root.
    let (s, ep) = send(c.get(up.at(&format!("/v1/sandboxes/{id}/endpoints/8080")))).await;
    assert_eq!(s, 200, "{ep}");
    let endpoint = ep["endpoint"].as_str().unwrap().to_string();
    assert!(endpoint.starts_with("127.0.0.1:"), "{ep}");
    let url = format!("http://{endpoint}/");
    let body = wait_for("the sandbox's httpd", Duration::from_secs(20), || {
        http_get_text(&url)
    })
    .await
    .unwrap();
    assert_eq!(body.trim(), HELLO);

    // The stand-in execd answers /ping on the execd port (other ports are reported as
    // `<execd host:port>/proxy/<port>`).
    let (s, ep) = send(c.get(up.at(&format!("/v1/sandboxes/{id}/endpoints/44772")))).await;
    assert_eq!(s, 200, "{ep}");
    let execd = ep["endpoint"].as_str().unwrap();
    let (execd_addr, rest) = execd.split_once('/').unwrap();
    assert_eq!(rest, "proxy/44772");
    assert!(execd_addr.starts_with("127.0.0.1:"), "{ep}");
    let ping = format!("http://{execd_addr}/ping");
    let pong = wait_for("execd /ping", Duration::from_secs(20), || {
        http_get_text(&ping)
    })
    .await
    .unwrap();
    assert_eq!(pong.trim(), "pong");

    // The server proxy endpoint, and the proxy itself, which needs NO API key.
    let (s, ep) = send(c.get(up.at(&format!(
        "/v1/sandboxes/{id}/endpoints/8080?use_server_proxy=true"
    ))))
    .await;
    assert_eq!(s, 200, "{ep}");
    let host_port = up.url.trim_start_matches("http://");
    assert_eq!(
        ep["endpoint"],
        format!("{host_port}/v1/sandboxes/{id}/proxy/8080")
    );
    let proxied = up.at(&format!("/v1/sandboxes/{id}/proxy/8080/"));
    let anon = reqwest::get(&proxied).await.unwrap();
    assert_eq!(anon.status(), 200, "the proxy route is not authenticated");
    assert_eq!(anon.text().await.unwrap().trim(), HELLO);
    let wrong = reqwest::Client::new()
        .get(&proxied)
        .header("OPEN-SANDBOX-API-KEY", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 200);
    // Routes are served at the root too, not only under /v1.
    let (s, _) = send(c.get(up.at(&format!("/sandboxes/{id}")))).await;
    assert_eq!(s, 200);

    // The list filter: one URL-encoded `metadata` parameter, AND of exact matches.
    let enc_suite = format!("suite%3D{suite}");
    assert_eq!(
        list_ids(&up, &format!("access.team%3D{team}%26{enc_suite}")).await,
        vec![id.clone()]
    );
    assert_eq!(
        list_ids(&up, &format!("access.owner%3D{owner}%26{enc_suite}")).await,
        vec![id.clone()]
    );
    assert!(list_ids(&up, &format!("access.team%3Dx%26{enc_suite}"))
        .await
        .is_empty());
    // A bare `=` (not encoded) is decoded the same way by the query parser.
    assert_eq!(
        list_ids(&up, &format!("access.team={team}%26{enc_suite}")).await,
        vec![id.clone()]
    );
    let (s, v) = send(c.get(up.at("/v1/sandboxes?metadata=access.team"))).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["code"], "INVALID_METADATA_FORMAT");
    assert_eq!(
        v["message"],
        "Invalid metadata format: bad query field: 'access.team'"
    );

    // PATCH metadata can rewrite access.* keys, and the filter then follows it.
    let (s, v) = send(
        c.patch(up.at(&format!("/v1/sandboxes/{id}/metadata")))
            .json(&json!({"access.owner": "mallory"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["metadata"]["access.owner"], "mallory");
    assert_eq!(
        list_ids(&up, &format!("access.owner%3Dmallory%26{enc_suite}")).await,
        vec![id.clone()]
    );

    // DELETE → 204, then it is gone everywhere.
    let (s, v) = send(c.delete(up.at(&format!("/v1/sandboxes/{id}")))).await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = get(&up, &id).await;
    assert_eq!(s, 404);
    assert_eq!(
        v,
        json!({"code": "DOCKER::SANDBOX_NOT_FOUND", "message": format!("Sandbox {id} not found.")})
    );
    assert!(list_ids(&up, &enc_suite).await.is_empty());
    assert!(containers_of(&id).unwrap().is_empty());
    let (s, _) = send(c.delete(up.at(&format!("/v1/sandboxes/{id}")))).await;
    assert_eq!(s, 404);
}

/// The exact error answers the gateway passes through or must mimic: 401s, 404s, FastAPI
/// 422s and upstream's 400 for bad metadata.
#[tokio::test]
async fn upstream_error_shapes() {
    let up = start().await;
    let c = up.client();
    let anon = reqwest::Client::new();

    // /health needs no key.
    let (s, v) = send(anon.get(up.at("/health"))).await;
    assert_eq!((s, v), (200, json!({"status": "healthy"})));

    // 401s, checked before routing: an unknown route without a key is 401 too.
    let missing = json!({
        "code": "MISSING_API_KEY",
        "message": "Authentication credentials are missing. Provide API key via OPEN-SANDBOX-API-KEY header.",
    });
    assert_eq!(
        send(anon.get(up.at("/v1/sandboxes"))).await,
        (401, missing.clone())
    );
    assert_eq!(send(anon.get(up.at("/v1/nope"))).await, (401, missing));
    assert_eq!(
        send(
            anon.get(up.at("/v1/sandboxes"))
                .header("OPEN-SANDBOX-API-KEY", "wrong")
        )
        .await,
        (
            401,
            json!({
                "code": "INVALID_API_KEY",
                "message": "Authentication credentials are invalid. Check your API key and try again.",
            })
        )
    );

    // Unknown route / unknown sandbox.
    assert_eq!(
        send(c.get(up.at("/v1/nope"))).await,
        (404, json!({"detail": "Not Found"}))
    );
    assert_eq!(
        send(c.get(up.at("/v1/sandboxes/nope"))).await,
        (
            404,
            json!({"code": "DOCKER::SANDBOX_NOT_FOUND", "message": "Sandbox nope not found."})
        )
    );
    let (s, v) = send(anon.get(up.at("/v1/sandboxes/nope/proxy/8080/"))).await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["code"], "DOCKER::SANDBOX_NOT_FOUND");

    // FastAPI 422s.
    let (s, v) = create(&up, json!({"image": {}})).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(
        v,
        json!({"detail": [{"type": "missing", "loc": ["body", "image", "uri"], "msg": "Field required", "input": {}}]})
    );
    let (s, v) = send(
        c.post(up.at("/v1/sandboxes"))
            .header("content-type", "application/json")
            .body("{"),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["detail"][0]["type"], "json_invalid");
    assert_eq!(v["detail"][0]["loc"], json!(["body", 1]));
    let (s, v) = create(
        &up,
        json!({"image": {"uri": test_image()}, "entrypoint": ["sleep", "60"], "timeout": 60}),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["detail"][0]["type"], "value_error");
    assert_eq!(v["detail"][0]["loc"], json!(["body"]));
    assert_eq!(
        v["detail"][0]["msg"],
        "Value error, resourceLimits is required when poolRef is not provided."
    );

    // Metadata follows Kubernetes label rules (400, nothing created).
    for (key, value) in [
        ("access.owner", "alice.k3j5..."),
        ("access.owner", "alice@example.com"),
        ("access.owner", &"a".repeat(64)[..]),
        ("opensandbox.io/owner", "alice"),
        ("access.team/x/y", "x"),
    ] {
        let (s, v) = create(&up, httpd_body(json!({ key: value }))).await;
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
    let (s, created) = create(&up, httpd_body(json!({"purpose": "drop-test"}))).await;
    assert_eq!(s, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(containers_of(&id).unwrap().len(), 1);
    let log_path = up.log_path.clone();
    drop(up);
    assert!(containers_of(&id).unwrap().is_empty());
    assert!(!log_path.exists(), "the temporary directory is removed");
}
