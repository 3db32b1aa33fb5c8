//! Running the gateway: the role table reloads while it runs, and a backend that goes
//! away is reported, not hidden.

use gatehouse_tests::api::send;
use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::principals::{alice, bob, keyed};
use gatehouse_tests::sandbox::httpd_body;
use gatehouse_tests::stacks::{KeyedStack, ADMIN_KEY};
use gatehouse_tests::wait_for;
use serde_json::json;
use std::time::Duration;

/// bob (read_only) cannot create; the role table is edited to grant read_only the create
/// action, and bob's create succeeds without a restart. Returns the sandbox bob created.
async fn grant_read_only_create(gw: &Gateway) -> String {
    let (url, body) = (gw.at("/v1/sandboxes"), httpd_body(json!({})));
    let create = || send_as_bob(&url, &body);
    assert_eq!(create().await.0, 403);
    let original = std::fs::read_to_string(&gw.policy_path).unwrap();
    let granted = original.replacen(
        "[roles.read_only]\nactions = [",
        "[roles.read_only]\nactions = [\"sandbox:create\", ",
        1,
    );
    assert_ne!(granted, original, "the test edits the read_only role");
    std::fs::write(&gw.policy_path, &granted).unwrap();
    wait_for(
        "the new table to apply",
        Duration::from_secs(10),
        || async {
            let (s, v) = create().await;
            (s == 202).then(|| v["id"].as_str().unwrap().to_string())
        },
    )
    .await
    .unwrap()
}

async fn send_as_bob(url: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    send(&bob(), "POST", url, Some(body)).await
}

/// An edited role table applies without a restart.
#[tokio::test]
async fn role_table_edits_apply_without_a_restart() {
    let st = KeyedStack::start().await.unwrap();
    let id = grant_read_only_create(&st.gw).await;
    let (s, v) = send(
        &bob(),
        "GET",
        &st.gw.at(&format!("/v1/sandboxes/{id}")),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

/// A broken role table is rejected, logged, and the previous table stays in force.
#[tokio::test]
async fn broken_role_table_keeps_the_previous_one() {
    let st = KeyedStack::start().await.unwrap();
    let gw = &st.gw;
    let id = grant_read_only_create(gw).await;
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
    let url = gw.at(&format!("/v1/sandboxes/{id}"));
    let (s, v) = send(&bob(), "GET", &url, None).await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = send(&bob(), "DELETE", &url, None).await;
    assert_eq!(
        s, 403,
        "the old table (create but not delete) is still in force"
    );
    assert_eq!(send(&keyed(ADMIN_KEY), "DELETE", &url, None).await.0, 204);
}

/// Backend down: 502 in the API's error shape without internals, and `/healthz` says so.
#[tokio::test]
async fn backend_down_is_a_502_and_healthz_says_so() {
    let mut st = KeyedStack::start().await.unwrap();
    st.backend.stop();
    let gw = &st.gw;
    let (s, v) = send(&alice(), "GET", &gw.at("/v1/sandboxes"), None).await;
    assert_eq!(
        (s, v["code"].as_str().unwrap()),
        (502, "GATEWAY::UPSTREAM_UNAVAILABLE"),
        "{v}"
    );
    assert!(
        !v["message"].as_str().unwrap().contains("127.0.0.1"),
        "no internals in a 5xx body"
    );
    let (s, v) = send(&keyed(ADMIN_KEY), "GET", &gw.at("/v1/sandboxes/abc"), None).await;
    assert_eq!(s, 502, "{v}");
    let (s, v) = send(&reqwest::Client::new(), "GET", &gw.at("/healthz"), None).await;
    assert_eq!((s, &v["upstream"]), (503, &json!("unreachable")));
}
