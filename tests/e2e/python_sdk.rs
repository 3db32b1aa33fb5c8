//! The real OpenSandbox Python SDK (`SandboxManager`) against `gatehouse-backend`:
//! list, get, renew and kill, as a user's automation would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::docker::containers_of;
use gatehouse_tests::{repo_root, test_image, Backend, BackendOptions};
use serde_json::{json, Value};

#[tokio::test]
async fn sdk_manager_lists_gets_renews_and_kills() {
    let python = std::env::var("GATEHOUSE_PYTHON")
        .expect("GATEHOUSE_PYTHON is not set: run through `make test`, which builds the SDK venv");
    let b = Backend::start(BackendOptions::default()).await.unwrap();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let body = json!({
        "image": {"uri": test_image()},
        "entrypoint": ["sleep", "3600"],
        "timeout": 600,
        "metadata": {"suite": token},
    });
    let r = b
        .client()
        .post(b.at("/v1/sandboxes"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Another sandbox the metadata filter must exclude.
    let other = b.client().post(b.at("/v1/sandboxes")).json(&json!({
        "image": {"uri": test_image()}, "entrypoint": ["sleep", "3600"], "metadata": {"suite": "other"}
    })).send().await.unwrap().json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();

    let domain = b.url.trim_start_matches("http://").to_string();
    let out = tokio::process::Command::new(&python)
        .arg(repo_root().join("tests/python/sdk_manager.py"))
        .args([&domain, &b.api_key, &id, &token])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "SDK script failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();

    assert_eq!(seen["listed_ids"], json!([id]), "{seen}");
    assert_eq!(seen["total"], 1);
    assert!(
        seen["state"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("running"),
        "{seen}"
    );
    assert_eq!(seen["metadata"], json!({"suite": token}));
    let renewed =
        chrono::DateTime::parse_from_rfc3339(seen["renewed_expires_at"].as_str().unwrap()).unwrap();
    let hours = (renewed.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
    assert!(
        (115..=120).contains(&hours),
        "renewed about two hours ahead: {seen}"
    );
    assert!(
        seen["after_kill"].as_str().unwrap().contains("404")
            || seen["after_kill"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("not found"),
        "{seen}"
    );

    let r = b
        .client()
        .get(b.at(&format!("/v1/sandboxes/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(containers_of(&id).unwrap().is_empty());
    assert_eq!(
        b.client()
            .delete(b.at(&format!("/v1/sandboxes/{other}")))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
}

/// The SDK pointed at the gateway with the backend's own key works unchanged: the key is
/// passed through as `service_admin`, byte for byte.
#[tokio::test]
async fn sdk_manager_through_the_gateway_with_the_backend_key() {
    let python = std::env::var("GATEHOUSE_PYTHON")
        .expect("GATEHOUSE_PYTHON is not set: run through `make test`, which builds the SDK venv");
    let b = Backend::start(BackendOptions::default()).await.unwrap();
    let gw = gatehouse_tests::gateway::Gateway::start(&b.url, &b.api_key, "")
        .await
        .unwrap();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let client = b.client();
    let r = client
        .post(gw.at("/v1/sandboxes"))
        .json(&json!({"image": {"uri": test_image()}, "entrypoint": ["sleep", "3600"], "timeout": 600, "metadata": {"suite": token}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let domain = gw.url.trim_start_matches("http://").to_string();
    let out = tokio::process::Command::new(&python)
        .arg(repo_root().join("tests/python/sdk_manager.py"))
        .args([&domain, &b.api_key, &id, &token])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "SDK script failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    assert_eq!(seen["listed_ids"], json!([id]), "{seen}");
    assert_eq!(
        seen["metadata"],
        json!({"suite": token}),
        "no scope metadata for the passthrough key"
    );
    assert!(
        seen["after_kill"].as_str().unwrap().contains("404")
            || seen["after_kill"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("not found"),
        "{seen}"
    );
    assert!(containers_of(&id).unwrap().is_empty());
    // The SDK's calls are audited as the backend key, never with the key itself.
    let events = gw.audit_events();
    assert!(events.iter().any(|e| e["action"] == "sandbox:delete"
        && e["sandbox_id"] == id.as_str()
        && e["principal"]["auth_method"] == "backend_key"));
    assert!(!gw.audit_raw().contains(&b.api_key));
}
