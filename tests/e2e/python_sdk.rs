//! The real OpenSandbox Python SDK (`SandboxManager`) against `gatehouse-backend`, and
//! through the gateway with the backend's key: list, get, renew and kill, as a user's
//! automation would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::api::{host_port, send_req};
use gatehouse_tests::docker::containers_of;
use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::sandbox::{create_id, get};
use gatehouse_tests::sdk;
use gatehouse_tests::{test_image, Backend, BackendOptions};
use serde_json::{json, Value};

/// A sleeping sandbox with metadata `suite=token`.
fn body(token: &str) -> Value {
    json!({
        "image": {"uri": test_image()},
        "entrypoint": ["sleep", "3600"],
        "timeout": 600,
        "metadata": {"suite": token},
    })
}

#[tokio::test]
async fn sdk_manager_lists_gets_renews_and_kills() {
    sdk::python().unwrap();
    let b = Backend::start(BackendOptions::default()).await.unwrap();
    let c = b.client();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let id = create_id(&c, &b.url, &body(&token)).await.unwrap();
    // Another sandbox the metadata filter must exclude.
    let mut other = body("other");
    other.as_object_mut().unwrap().remove("timeout");
    let other = create_id(&c, &b.url, &other).await.unwrap();

    let seen = sdk::sandbox_manager(host_port(&b.url), &b.api_key, &id, &token)
        .await
        .unwrap();
    assert_eq!(seen["listed_ids"], json!([id]), "{seen}");
    assert_eq!(seen["total"], 1);
    let state = seen["state"].as_str().unwrap().to_lowercase();
    assert!(state.contains("running"), "{seen}");
    assert_eq!(seen["metadata"], json!({"suite": token}));
    let renewed =
        chrono::DateTime::parse_from_rfc3339(seen["renewed_expires_at"].as_str().unwrap()).unwrap();
    let minutes = (renewed.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
    assert!(
        (115..=120).contains(&minutes),
        "renewed about two hours ahead: {seen}"
    );
    assert!(sdk::killed(&seen), "{seen}");

    assert_eq!(get(&c, &b.url, &id).await.0, 404);
    assert!(containers_of(&id).unwrap().is_empty());
    let (s, _) = send_req(c.delete(b.at(&format!("/v1/sandboxes/{other}")))).await;
    assert_eq!(s, 204);
}

/// The SDK pointed at the gateway with the backend's own key works unchanged: the key is
/// passed through as `service_admin`, byte for byte.
#[tokio::test]
async fn sdk_manager_through_the_gateway_with_the_backend_key() {
    sdk::python().unwrap();
    let b = Backend::start(BackendOptions::default()).await.unwrap();
    let gw = Gateway::start(&b.url, &b.api_key, "").await.unwrap();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let id = create_id(&b.client(), &gw.url, &body(&token))
        .await
        .unwrap();
    let seen = sdk::sandbox_manager(host_port(&gw.url), &b.api_key, &id, &token)
        .await
        .unwrap();
    assert_eq!(seen["listed_ids"], json!([id]), "{seen}");
    assert_eq!(
        seen["metadata"],
        json!({"suite": token}),
        "no scope metadata for the passthrough key"
    );
    assert!(sdk::killed(&seen), "{seen}");
    assert!(containers_of(&id).unwrap().is_empty());
    // The SDK's calls are audited as the backend key, never with the key itself.
    let events = gw.audit_events();
    assert!(events.iter().any(|e| e["action"] == "sandbox:delete"
        && e["sandbox_id"] == id.as_str()
        && e["principal"]["auth_method"] == "backend_key"));
    assert!(!gw.audit_raw().contains(&b.api_key));
}

/// A personal key alice creates works with the real SDK through the gateway and is scoped
/// exactly like alice: the SDK lists her team's sandbox and not another team's with the
/// same metadata, renews and kills it; the audit trail names alice and the key.
#[tokio::test]
async fn sdk_with_a_personal_key_is_scoped_like_its_owner() {
    use gatehouse_tests::principals::{alice, carol, TRUSTED_PROXY_SECTION};
    sdk::python().unwrap();
    let b = Backend::start(BackendOptions::default()).await.unwrap();
    let gw = Gateway::start(&b.url, &b.api_key, TRUSTED_PROXY_SECTION)
        .await
        .unwrap();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let mine = create_id(&alice(), &gw.url, &body(&token)).await.unwrap();
    let theirs = create_id(&carol(), &gw.url, &body(&token)).await.unwrap();
    let r = alice()
        .post(gw.at("/gatehouse/v1/keys"))
        .json(&json!({"name": "sdk", "expiresInDays": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_string();

    let seen = sdk::sandbox_manager(host_port(&gw.url), &key, &mine, &token)
        .await
        .unwrap();
    assert_eq!(seen["listed_ids"], json!([mine]), "{seen}");
    assert_eq!(seen["total"], 1);
    assert!(sdk::killed(&seen), "{seen}");
    assert_eq!(get(&carol(), &gw.url, &theirs).await.0, 200);

    let url = gw.at(&format!(
        "/gatehouse/v1/audit?sandbox={mine}&action=sandbox:delete"
    ));
    let page = gatehouse_tests::wait_for(
        "the kill's audit event",
        std::time::Duration::from_secs(10),
        || async {
            let r = reqwest::Client::new()
                .get(&url)
                .header("OPEN-SANDBOX-API-KEY", &b.api_key)
                .send()
                .await
                .ok()?;
            let v: Value = r.json().await.ok()?;
            v["items"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
                .then_some(v)
        },
    )
    .await
    .unwrap();
    let e = &page["items"][0];
    assert_eq!(e["principal"]["subject"], "alice", "{page}");
    assert_eq!(e["principal"]["auth_method"], "api_key");
    assert!(e["principal"]["key_name"]
        .as_str()
        .unwrap()
        .starts_with("sdk (gk_"));
    assert!(!gw.exposes(&key));
    let (s, _) = send_req(carol().delete(gw.at(&format!("/v1/sandboxes/{theirs}")))).await;
    assert_eq!(s, 204);
}
