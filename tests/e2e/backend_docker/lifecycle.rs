//! The whole lifecycle of one sandbox, a behaviour per test: each starts a backend with a
//! Running httpd sandbox.

use super::{create, create_id, get, spec, wait_state};
use gatehouse_tests::api::{get_text, host_port, send_req};
use gatehouse_tests::docker::{containers_of, docker};
use gatehouse_tests::sandbox::{HELLO, HTTPD};
use gatehouse_tests::{test_image, wait_for, Backend, BackendOptions};
use serde_json::{json, Value};
use std::time::Duration;

/// A backend with one Running httpd sandbox (600 s, metadata `suite=<token>` and
/// `project=apollo`) and what its create answered.
struct Httpd {
    b: Backend,
    id: String,
    token: String,
    created: Value,
}

impl Httpd {
    async fn start() -> Self {
        let b = Backend::start(BackendOptions::default()).await.unwrap();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let created = create(
            &b,
            spec(Some(600), json!({"suite": token, "project": "apollo"})),
        )
        .await;
        let id = created["id"].as_str().unwrap().to_string();
        wait_state(&b, &id, "Running").await;
        Self {
            b,
            id,
            token,
            created,
        }
    }

    /// `METHOD {backend}/v1/sandboxes/{id}{rest}` with the key.
    fn req(&self, method: reqwest::Method, rest: &str) -> reqwest::RequestBuilder {
        let url = self.b.at(&format!("/v1/sandboxes/{}{rest}", self.id));
        self.b.client().request(method, url)
    }
}

/// Create → Running with what was asked; image labels never leak into metadata.
#[tokio::test]
async fn created_sandbox_runs_as_specified() {
    let h = Httpd::start().await;
    assert_eq!(h.created["metadata"]["project"], "apollo");
    assert!(h.created["expiresAt"].is_string());
    let (_, got) = get(&h.b, &h.id).await;
    assert_eq!(got["image"]["uri"], test_image());
    assert_eq!(got["entrypoint"], json!(HTTPD));
    assert_eq!(got["status"]["reason"], "CONTAINER_RUNNING");
    assert!(got["status"]["lastTransitionAt"].is_string());
    assert_eq!(
        got["metadata"],
        json!({"suite": h.token, "project": "apollo"})
    );
}

/// The container carries the hardening and the limits.
#[tokio::test]
async fn container_carries_hardening_and_limits() {
    let h = Httpd::start().await;
    let cid = containers_of(&h.id).unwrap();
    assert_eq!(cid.len(), 1);
    let inspect: Value = serde_json::from_str(&docker(&["inspect", &cid[0]]).unwrap()).unwrap();
    let hc = &inspect[0]["HostConfig"];
    assert_eq!(hc["NanoCpus"], 500_000_000);
    assert_eq!(hc["Memory"], 64 * 1024 * 1024);
    assert_eq!(hc["PidsLimit"], 4096);
    let has = |v: &Value, f: &dyn Fn(&str) -> bool| {
        v.as_array().unwrap().iter().any(|x| f(x.as_str().unwrap()))
    };
    assert!(has(&hc["CapDrop"], &|c| c == "NET_RAW" || c == "CAP_NET_RAW"));
    assert!(has(&hc["SecurityOpt"], &|o| o.starts_with("no-new-privileges")));
    assert!(has(&inspect[0]["Config"]["Env"], &|e| e == "GREETING=hi"));
}

/// The endpoint is a bare `127.0.0.1:port` that answers; an unpublished port has none.
#[tokio::test]
async fn endpoint_answers_on_loopback() {
    let h = Httpd::start().await;
    let (_, ep) = send_req(h.req(reqwest::Method::GET, "/endpoints/8080")).await;
    let endpoint = ep["endpoint"].as_str().unwrap().to_string();
    assert!(endpoint.starts_with("127.0.0.1:"), "{endpoint}");
    let page = wait_for("httpd to answer", Duration::from_secs(20), || {
        get_text(format!("http://{endpoint}/"))
    })
    .await
    .unwrap();
    assert!(page.contains(HELLO));
    let (s, v) = send_req(h.req(reqwest::Method::GET, "/endpoints/9999")).await;
    assert_eq!(s, 404);
    assert_eq!(v["code"], "DOCKER::ENDPOINT_NOT_AVAILABLE");
}

/// The server proxy streams to the same port, under both mounts, and needs the key; the
/// sandbox's own statuses pass through.
#[tokio::test]
async fn server_proxy_serves_both_mounts_and_needs_the_key() {
    let h = Httpd::start().await;
    let (b, id, c) = (&h.b, &h.id, h.b.client());
    let ep_url = b.at(&format!(
        "/sandboxes/{id}/endpoints/8080?use_server_proxy=true"
    ));
    let (_, ep) = send_req(c.get(ep_url)).await;
    assert_eq!(
        ep["endpoint"],
        format!("{}/sandboxes/{id}/proxy/8080", host_port(&b.url))
    );
    for prefix in ["", "/v1"] {
        let r = c
            .get(b.at(&format!("{prefix}/sandboxes/{id}/proxy/8080/index.html")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains(HELLO));
    }
    let r = reqwest::get(b.at(&format!("/v1/sandboxes/{id}/proxy/8080/index.html")))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (s, _) = send_req(h.req(reqwest::Method::GET, "/proxy/8080/missing.html")).await;
    assert_eq!(s, 404, "the sandbox's own status passes through");
}

/// Pause → Paused (pausing again conflicts) → resume → Running.
#[tokio::test]
async fn pause_and_resume() {
    let h = Httpd::start().await;
    let post = |rest: &str| send_req(h.req(reqwest::Method::POST, rest));
    assert_eq!(post("/pause").await.0, 202);
    wait_state(&h.b, &h.id, "Paused").await;
    assert_eq!(post("/pause").await.0, 409);
    assert_eq!(post("/resume").await.0, 202);
    wait_state(&h.b, &h.id, "Running").await;
}

/// Renewing moves the expiry, as a later get shows.
#[tokio::test]
async fn renew_moves_the_expiry() {
    let h = Httpd::start().await;
    let new_expiry = chrono::Utc::now() + chrono::Duration::hours(3);
    let renew = h
        .req(reqwest::Method::POST, "/renew-expiration")
        .json(&json!({"expiresAt": new_expiry.to_rfc3339()}));
    let (s, v) = send_req(renew).await;
    assert_eq!(s, 200);
    let (_, got) = get(&h.b, &h.id).await;
    assert_eq!(got["expiresAt"], v["expiresAt"]);
}

/// A metadata patch merges: `null` removes a key.
#[tokio::test]
async fn metadata_patch_merges() {
    let h = Httpd::start().await;
    let patch = h
        .req(reqwest::Method::PATCH, "/metadata")
        .json(&json!({"project": null, "stage": "qa"}));
    let (s, v) = send_req(patch).await;
    assert_eq!(s, 200);
    assert_eq!(v["metadata"], json!({"suite": h.token, "stage": "qa"}));
}

/// The list query: metadata filters (AND), state filters (any case, several), pagination
/// newest first.
#[tokio::test]
async fn list_filters_by_metadata_and_state_and_pages() {
    let h = Httpd::start().await;
    let (b, id, c) = (&h.b, &h.id, h.b.client());
    let patch = h
        .req(reqwest::Method::PATCH, "/metadata")
        .json(&json!({"stage": "qa"}));
    assert_eq!(send_req(patch).await.0, 200);
    let id2 = create_id(b, spec(None, json!({"suite": h.token, "stage": "prod"}))).await;
    wait_state(b, &id2, "Running").await;
    let suite = format!("suite%3D{}", h.token);
    let list = |q: String| send_req(c.get(b.at(&format!("/v1/sandboxes?{q}"))));
    let (_, v) = list(format!("metadata={suite}&pageSize=1")).await;
    assert_eq!(
        v["pagination"],
        json!({"page": 1, "pageSize": 1, "totalItems": 2, "totalPages": 2, "hasNextPage": true})
    );
    assert_eq!(v["items"][0]["id"], id2, "newest first");
    let (_, v) = list(format!("metadata={suite}&pageSize=1&page=2")).await;
    assert_eq!(v["items"][0]["id"], id.as_str());
    assert_eq!(v["pagination"]["hasNextPage"], false);
    let (_, v) = list(format!("metadata={suite}%26stage%3Dqa")).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    assert_eq!(v["items"][0]["id"], id.as_str());
    send_req(c.post(b.at(&format!("/v1/sandboxes/{id2}/pause")))).await;
    wait_state(b, &id2, "Paused").await;
    let (_, v) = list(format!("metadata={suite}&state=paused")).await;
    assert_eq!(v["pagination"]["totalItems"], 1);
    let (_, v) = list(format!("metadata={suite}&state=PAUSED&state=running")).await;
    assert_eq!(v["pagination"]["totalItems"], 2);
}

/// Delete (a Running and a Paused sandbox) → 404 and no container left; the API key never
/// reaches the log.
#[tokio::test]
async fn delete_removes_record_and_container() {
    let h = Httpd::start().await;
    let (b, c) = (&h.b, h.b.client());
    let paused = create_id(b, spec(None, json!({}))).await;
    wait_state(b, &paused, "Running").await;
    send_req(c.post(b.at(&format!("/v1/sandboxes/{paused}/pause")))).await;
    wait_state(b, &paused, "Paused").await;
    for sid in [&h.id, &paused] {
        let (s, _) = send_req(c.delete(b.at(&format!("/v1/sandboxes/{sid}")))).await;
        assert_eq!(s, 204);
        let (s, v) = get(b, sid).await;
        assert_eq!(s, 404, "{v}");
        assert!(containers_of(sid).unwrap().is_empty());
    }
    assert!(!b.log().contains(&b.api_key));
}
