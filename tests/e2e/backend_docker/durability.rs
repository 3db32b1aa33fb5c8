//! What outlives a moment: expiry on time, renewals, a restart of the backend (timers,
//! metadata, reconciliation with what happened on the engine meanwhile) and concurrent
//! deletes.

use super::{create_id, get, short_timeouts_backend, spec, wait_state};
use gatehouse_tests::api::send_req;
use gatehouse_tests::docker::{containers_of, docker};
use gatehouse_tests::{test_image, wait_for, Backend, BackendOptions};
use serde_json::{json, Value};
use std::time::Duration;

/// Renews the sandbox on `b` to `at`; the `expiresAt` it answered.
async fn renew(b: &Backend, id: &str, at: chrono::DateTime<chrono::Utc>) -> Value {
    let url = b.at(&format!("/v1/sandboxes/{id}/renew-expiration"));
    let (s, v) = send_req(
        b.client()
            .post(url)
            .json(&json!({"expiresAt": at.to_rfc3339()})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["expiresAt"].clone()
}

/// Waits until the sandbox on `b` is gone: 404 and, with `container`, no container.
async fn wait_gone(b: &Backend, id: &str, what: &str, container: bool) {
    wait_for(what, Duration::from_secs(30), || async {
        (get(b, id).await.0 == 404 && (!container || containers_of(id).unwrap().is_empty()))
            .then_some(())
    })
    .await
    .unwrap();
}

/// Expiry deletes a sandbox on time; a renewal postpones it.
#[tokio::test]
async fn expiry_deletes_on_time_and_renewal_postpones_it() {
    let b = short_timeouts_backend().await;
    let short = create_id(&b, spec(Some(3), json!({}))).await;
    let kept = create_id(&b, spec(Some(3), json!({}))).await;
    renew(
        &b,
        &kept,
        chrono::Utc::now() + chrono::Duration::minutes(10),
    )
    .await;
    wait_gone(&b, &short, "the short sandbox to expire", true).await;
    let (s, v) = get(&b, &kept).await;
    assert_eq!(s, 200, "the renewed sandbox outlives its first expiry: {v}");
    assert!(b.log().contains("ttl_expiry"));
}

/// Metadata patches and renewals are in the store: a restart keeps them.
#[tokio::test]
async fn restart_keeps_metadata_patches_and_renewals() {
    let mut b = short_timeouts_backend().await;
    let kept = create_id(&b, spec(Some(600), json!({"k": "v"}))).await;
    let patch = b
        .client()
        .patch(b.at(&format!("/v1/sandboxes/{kept}/metadata")))
        .json(&json!({"k": "patched"}));
    assert_eq!(send_req(patch).await.0, 200);
    let renewed_at = renew(&b, &kept, chrono::Utc::now() + chrono::Duration::hours(5)).await;
    b.restart(None).await.unwrap();
    let (s, v) = get(&b, &kept).await;
    assert_eq!(s, 200);
    assert_eq!(
        v["metadata"],
        json!({"k": "patched"}),
        "metadata patches survive a restart"
    );
    assert_eq!(v["expiresAt"], renewed_at, "renewals survive a restart");
    let url = b.at(&format!("/v1/sandboxes/{kept}"));
    assert_eq!(send_req(b.client().delete(url)).await.0, 204);
    assert!(containers_of(&kept).unwrap().is_empty());
}

/// Starts, on the engine, a container labelled as a sandbox of `b`'s instance that `b`'s
/// store does not know (metadata `team=adopted`); its sandbox id.
fn plant_stranger(b: &Backend) -> String {
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
    stranger
}

/// While the backend is away, one sandbox's timer passes, one container vanishes and one
/// appears that the store does not know: after the restart, the overdue one is expired,
/// the vanished one dropped and the unknown one adopted.
#[tokio::test]
async fn restart_reconciles_with_the_engine() {
    let mut b = short_timeouts_backend().await;
    let due = create_id(&b, spec(Some(4), json!({}))).await;
    let vanish = create_id(&b, spec(None, json!({}))).await;
    b.stop();
    docker(&["rm", "-f", &containers_of(&vanish).unwrap()[0]]).unwrap();
    let stranger = plant_stranger(&b);
    tokio::time::sleep(Duration::from_secs(5)).await;
    b.restart(None).await.unwrap();
    let overdue = "the overdue sandbox to be expired after restart";
    wait_gone(&b, &due, overdue, true).await;
    wait_gone(&b, &vanish, "the vanished sandbox to be dropped", false).await;
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
    let url = b.at(&format!("/v1/sandboxes/{stranger}"));
    assert_eq!(send_req(b.client().delete(url)).await.0, 204);
    assert!(containers_of(&stranger).unwrap().is_empty());
}

/// Concurrent deletes of one sandbox: every answer is 204 or 404, at least one 204, and
/// the sandbox and its container are gone.
#[tokio::test]
async fn concurrent_deletes_are_idempotent() {
    let b = Backend::start(BackendOptions::default()).await.unwrap();
    let id = create_id(&b, spec(None, json!({}))).await;
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
