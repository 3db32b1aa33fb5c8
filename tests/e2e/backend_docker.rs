//! `gatehouse-backend` as a process against the real Docker engine: the whole lifecycle,
//! the list query, the server proxy, expiry, restarts and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::docker::{containers_of, docker};
use gatehouse_tests::{test_image, wait_for, Backend, BackendOptions};
use serde_json::{json, Value};
use std::time::Duration;

const HTTPD: [&str; 6] = ["httpd", "-f", "-p", "8080", "-h", "/www"];

fn httpd_body(timeout: Option<i64>, metadata: Value) -> Value {
    json!({
        "image": {"uri": test_image()},
        "entrypoint": HTTPD,
        "timeout": timeout,
        "resourceLimits": {"cpu": "500m", "memory": "64Mi"},
        "env": {"GREETING": "hi"},
        "metadata": metadata,
    })
}

async fn create(b: &Backend, body: Value) -> Value {
    let r = b
        .client()
        .post(b.at("/v1/sandboxes"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 202, "create answered {v}");
    v
}

async fn get(b: &Backend, id: &str) -> (u16, Value) {
    let r = b
        .client()
        .get(b.at(&format!("/v1/sandboxes/{id}")))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn wait_state(b: &Backend, id: &str, state: &str) -> Value {
    wait_for(
        &format!("{id} to be {state}"),
        Duration::from_secs(30),
        || async {
            let (s, v) = get(b, id).await;
            (s == 200 && v["status"]["state"] == state).then_some(v)
        },
    )
    .await
    .unwrap()
}

async fn http_get_text(url: &str) -> Option<String> {
    let r = reqwest::get(url).await.ok()?;
    r.status().is_success().then_some(())?;
    r.text().await.ok()
}

#[tokio::test]
async fn full_lifecycle_on_docker() {
    let b = Backend::start(BackendOptions::default()).await.unwrap();
    let c = b.client();
    let token = uuid::Uuid::new_v4().simple().to_string();

    // Create → Running.
    let created = create(
        &b,
        httpd_body(Some(600), json!({"suite": token, "project": "apollo"})),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["metadata"]["project"], "apollo");
    assert!(created["expiresAt"].is_string());
    let got = wait_state(&b, &id, "Running").await;
    assert_eq!(got["image"]["uri"], test_image());
    assert_eq!(got["entrypoint"], json!(HTTPD));
    assert_eq!(got["status"]["reason"], "CONTAINER_RUNNING");
    assert!(got["status"]["lastTransitionAt"].is_string());
    // Image labels never leak into metadata.
    assert_eq!(
        got["metadata"],
        json!({"suite": token, "project": "apollo"})
    );

    // The container carries the hardening and the limits.
    let cid = containers_of(&id).unwrap();
    assert_eq!(cid.len(), 1);
    let inspect: Value = serde_json::from_str(&docker(&["inspect", &cid[0]]).unwrap()).unwrap();
    let hc = &inspect[0]["HostConfig"];
    assert_eq!(hc["NanoCpus"], 500_000_000);
    assert_eq!(hc["Memory"], 64 * 1024 * 1024);
    assert_eq!(hc["PidsLimit"], 4096);
    assert!(hc["CapDrop"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "NET_RAW" || c == "CAP_NET_RAW"));
    assert!(hc["SecurityOpt"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o.as_str().unwrap().starts_with("no-new-privileges")));
    assert!(inspect[0]["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "GREETING=hi"));

    // The endpoint answers on 127.0.0.1.
    let ep: Value = c
        .get(b.at(&format!("/v1/sandboxes/{id}/endpoints/8080")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = ep["endpoint"].as_str().unwrap().to_string();
    assert!(endpoint.starts_with("127.0.0.1:"), "{endpoint}");
    let page = wait_for("httpd to answer", Duration::from_secs(20), || {
        http_get_text_owned(format!("http://{endpoint}/"))
    })
    .await
    .unwrap();
    assert!(page.contains("hello from a gatehouse sandbox"));

    // The server proxy streams to the same port, under both mounts, and needs the key.
    let ep: Value = c
        .get(b.at(&format!(
            "/sandboxes/{id}/endpoints/8080?use_server_proxy=true"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let host = b.url.trim_start_matches("http://");
    assert_eq!(ep["endpoint"], format!("{host}/sandboxes/{id}/proxy/8080"));
    for prefix in ["", "/v1"] {
        let r = c
            .get(b.at(&format!("{prefix}/sandboxes/{id}/proxy/8080/index.html")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("hello from a gatehouse sandbox"));
    }
    let r = reqwest::get(b.at(&format!("/v1/sandboxes/{id}/proxy/8080/index.html")))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(b.at(&format!("/v1/sandboxes/{id}/proxy/8080/missing.html")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "the sandbox's own status passes through");
    let r = c
        .get(b.at(&format!("/v1/sandboxes/{id}/endpoints/9999")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "DOCKER::ENDPOINT_NOT_AVAILABLE");

    // Pause → Paused → resume → Running.
    let r = c
        .post(b.at(&format!("/v1/sandboxes/{id}/pause")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    wait_state(&b, &id, "Paused").await;
    let r = c
        .post(b.at(&format!("/v1/sandboxes/{id}/pause")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = c
        .post(b.at(&format!("/v1/sandboxes/{id}/resume")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    wait_state(&b, &id, "Running").await;

    // Renew.
    let new_expiry = chrono::Utc::now() + chrono::Duration::hours(3);
    let r = c
        .post(b.at(&format!("/v1/sandboxes/{id}/renew-expiration")))
        .json(&json!({"expiresAt": new_expiry.to_rfc3339()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let (_, got) = get(&b, &id).await;
    assert_eq!(got["expiresAt"], v["expiresAt"]);

    // Metadata patch.
    let r = c
        .patch(b.at(&format!("/v1/sandboxes/{id}/metadata")))
        .json(&json!({"project": null, "stage": "qa"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["metadata"], json!({"suite": token, "stage": "qa"}));

    // A second sandbox, then list with state, metadata and pagination.
    let second = create(
        &b,
        httpd_body(None, json!({"suite": token, "stage": "prod"})),
    )
    .await;
    let id2 = second["id"].as_str().unwrap().to_string();
    wait_state(&b, &id2, "Running").await;
    let list = |q: String| {
        let c = c.clone();
        let url = b.at(&format!("/v1/sandboxes?{q}"));
        async move {
            c.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let suite = format!("suite%3D{token}");
    let v = list(format!("metadata={suite}&pageSize=1")).await;
    assert_eq!(
        v["pagination"],
        json!({"page": 1, "pageSize": 1, "totalItems": 2, "totalPages": 2, "hasNextPage": true})
    );
    assert_eq!(v["items"][0]["id"], id2, "newest first");
    let v = list(format!("metadata={suite}&pageSize=1&page=2")).await;
    assert_eq!(v["items"][0]["id"], id);
    assert_eq!(v["pagination"]["hasNextPage"], false);
    let v = list(format!("metadata={suite}%26stage%3Dqa")).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    assert_eq!(v["items"][0]["id"], id);
    c.post(b.at(&format!("/v1/sandboxes/{id2}/pause")))
        .send()
        .await
        .unwrap();
    wait_state(&b, &id2, "Paused").await;
    let v = list(format!("metadata={suite}&state=paused")).await;
    assert_eq!(v["pagination"]["totalItems"], 1);
    let v = list(format!("metadata={suite}&state=PAUSED&state=running")).await;
    assert_eq!(v["pagination"]["totalItems"], 2);

    // Delete both (a paused one too) → 404 and no container left.
    for sid in [&id, &id2] {
        let r = c
            .delete(b.at(&format!("/v1/sandboxes/{sid}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let (s, v) = get(&b, sid).await;
        assert_eq!(s, 404, "{v}");
        assert!(containers_of(sid).unwrap().is_empty());
    }
    // The API key never reaches the log.
    assert!(!b.log().contains(&b.api_key));
}

async fn http_get_text_owned(url: String) -> Option<String> {
    http_get_text(&url).await
}

#[tokio::test]
async fn expiry_deletes_sandboxes_on_time_and_renewal_postpones_it() {
    let b = Backend::start(BackendOptions {
        server_extra: "min_sandbox_timeout_seconds = 2".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let short = create(&b, httpd_body(Some(3), json!({}))).await;
    let kept = create(&b, httpd_body(Some(3), json!({}))).await;
    let (short, kept) = (
        short["id"].as_str().unwrap().to_string(),
        kept["id"].as_str().unwrap().to_string(),
    );
    let later = chrono::Utc::now() + chrono::Duration::minutes(10);
    let r = b
        .client()
        .post(b.at(&format!("/v1/sandboxes/{kept}/renew-expiration")))
        .json(&json!({"expiresAt": later.to_rfc3339()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    wait_for(
        "the short sandbox to expire",
        Duration::from_secs(30),
        || async {
            (get(&b, &short).await.0 == 404 && containers_of(&short).unwrap().is_empty())
                .then_some(())
        },
    )
    .await
    .unwrap();
    let (s, v) = get(&b, &kept).await;
    assert_eq!(s, 200, "the renewed sandbox outlives its first expiry: {v}");
    assert!(b.log().contains("ttl_expiry"));
    b.client()
        .delete(b.at(&format!("/v1/sandboxes/{kept}")))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn restart_restores_timers_metadata_and_reconciles() {
    let mut b = Backend::start(BackendOptions {
        server_extra: "min_sandbox_timeout_seconds = 2".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let c = b.client();
    let kept = create(&b, httpd_body(Some(600), json!({"k": "v"}))).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let due = create(&b, httpd_body(Some(4), json!({}))).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let vanish = create(&b, httpd_body(None, json!({}))).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.patch(b.at(&format!("/v1/sandboxes/{kept}/metadata")))
        .json(&json!({"k": "patched"}))
        .send()
        .await
        .unwrap();
    let renewed = (chrono::Utc::now() + chrono::Duration::hours(5)).to_rfc3339();
    let v: Value = c
        .post(b.at(&format!("/v1/sandboxes/{kept}/renew-expiration")))
        .json(&json!({"expiresAt": renewed}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let renewed_at = v["expiresAt"].clone();

    b.stop();
    // While the backend is away: one sandbox's timer passes, one container vanishes, and one
    // container appears that the store does not know.
    docker(&["rm", "-f", &containers_of(&vanish).unwrap()[0]]).unwrap();
    let stranger = uuid::Uuid::new_v4().to_string();
    docker(&[
        "run",
        "-d",
        "--name",
        &format!("sandbox-{stranger}"),
        "--label",
        &format!("opensandbox.io/id={stranger}"),
        "--label",
        "opensandbox.io/managed-by=gatehouse-backend",
        "--label",
        &format!("opensandbox.io/instance={}", b.instance),
        "--label",
        "team=adopted",
        &test_image(),
        "sleep",
        "600",
    ])
    .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;

    b.restart(None).await.unwrap();
    let (s, v) = get(&b, &kept).await;
    assert_eq!(s, 200);
    assert_eq!(
        v["metadata"],
        json!({"k": "patched"}),
        "metadata patches survive a restart"
    );
    assert_eq!(v["expiresAt"], renewed_at, "renewals survive a restart");
    wait_for(
        "the overdue sandbox to be expired after restart",
        Duration::from_secs(30),
        || async {
            (get(&b, &due).await.0 == 404 && containers_of(&due).unwrap().is_empty()).then_some(())
        },
    )
    .await
    .unwrap();
    wait_for(
        "the vanished sandbox to be dropped",
        Duration::from_secs(30),
        || async { (get(&b, &vanish).await.0 == 404).then_some(()) },
    )
    .await
    .unwrap();
    let adopted = wait_for(
        "the unknown container to be adopted",
        Duration::from_secs(30),
        || async {
            let (s, v) = get(&b, &stranger).await;
            (s == 200).then_some(v)
        },
    )
    .await
    .unwrap();
    assert_eq!(adopted["metadata"], json!({"team": "adopted"}));
    assert_eq!(adopted["status"]["state"], "Running");
    for id in [&kept, &stranger] {
        assert_eq!(
            c.delete(b.at(&format!("/v1/sandboxes/{id}")))
                .send()
                .await
                .unwrap()
                .status(),
            204
        );
        assert!(containers_of(id).unwrap().is_empty());
    }
}

#[tokio::test]
async fn bad_inputs_get_the_right_code_and_leave_nothing_behind() {
    let b = Backend::start(BackendOptions {
        server_extra: "max_sandbox_timeout_seconds = 3600".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let c = b.client();
    let img = test_image();
    // The cases that reach the engine carry a label, so leftovers can be found even while
    // other tests run containers on the same engine.
    let probe = uuid::Uuid::new_v4().simple().to_string();
    let cases = [
        (
            json!({"image": {"uri": img}}),
            400,
            "SANDBOX::INVALID_ENTRYPOINT",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": []}),
            400,
            "SANDBOX::INVALID_ENTRYPOINT",
        ),
        (
            json!({"entrypoint": ["sh"]}),
            400,
            "SANDBOX::INVALID_PARAMETER",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["sh"], "timeout": 59}),
            400,
            "SANDBOX::INVALID_PARAMETER",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["sh"], "timeout": 3601}),
            400,
            "SANDBOX::INVALID_PARAMETER",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["sh"], "timeout": 1.5}),
            400,
            "SANDBOX::INVALID_REQUEST_BODY",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["sh"], "metadata": {"opensandbox.io/team": "x"}}),
            400,
            "SANDBOX::INVALID_METADATA_LABEL",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["sh"], "metadata": {"-bad": "x"}}),
            400,
            "SANDBOX::INVALID_METADATA_LABEL",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["sh"], "metadata": {"k": "no spaces"}}),
            400,
            "SANDBOX::INVALID_METADATA_LABEL",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["sh"], "metadata": {"k": 1}}),
            400,
            "SANDBOX::INVALID_REQUEST_BODY",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["sh"], "resourceLimits": {"cpu": "-1"}}),
            400,
            "SANDBOX::INVALID_PARAMETER",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["sh"], "resourceLimits": {"memory": "1XB"}}),
            400,
            "SANDBOX::INVALID_PARAMETER",
        ),
        (
            json!({"image": {"uri": "gatehouse/not-there:1"}, "entrypoint": ["sh"], "metadata": {"probe": probe}}),
            400,
            "DOCKER::SANDBOX_IMAGE_PULL_FAILED",
        ),
        (
            json!({"image": {"uri": img}, "entrypoint": ["/no/such/binary"], "metadata": {"probe": probe}}),
            400,
            "DOCKER::INVALID_ENTRYPOINT",
        ),
    ];
    for (body, status, code) in cases {
        let r = c
            .post(b.at("/v1/sandboxes"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (s, v["code"].as_str().unwrap_or("")),
            (status, code),
            "{body} -> {v}"
        );
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let r = c
        .post(b.at("/v1/sandboxes"))
        .header("content-type", "application/json")
        .body("{\"image\":")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "SANDBOX::INVALID_REQUEST_BODY");
    let leftovers = docker(&["ps", "-aq", "--filter", &format!("label=probe={probe}")]).unwrap();
    assert_eq!(leftovers, "", "a failed create leaves no container behind");
    let v: Value = c
        .get(b.at("/v1/sandboxes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["pagination"]["totalItems"], 0, "and no record");
}

#[tokio::test]
async fn concurrent_deletes_are_idempotent() {
    let b = Backend::start(BackendOptions::default()).await.unwrap();
    let id = create(&b, httpd_body(None, json!({}))).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_state(&b, &id, "Running").await;
    let c = b.client();
    let url = b.at(&format!("/v1/sandboxes/{id}"));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move { c.delete(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 204 || *s == 404),
        "{statuses:?}"
    );
    assert!(statuses.contains(&204), "{statuses:?}");
    assert!(containers_of(&id).unwrap().is_empty());
    assert_eq!(get(&b, &id).await.0, 404);
}
