//! A proxy request to a paused sandbox is answered at once with a clear error in the
//! API's shape, instead of hanging on a frozen container that accepts and never answers;
//! after resume the same request reaches the sandbox again.

use gatehouse_tests::api::{send, wait_ok};
use gatehouse_tests::principals::alice;
use gatehouse_tests::sandbox::{create_id, httpd_body, wait_state, HELLO};
use gatehouse_tests::stacks::KeyedStack;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn proxy_to_a_paused_sandbox_answers_fast_and_clearly() {
    let st = KeyedStack::start().await.unwrap();
    let base = &st.gw.url;
    let id = create_id(&alice(), base, &httpd_body(json!({})))
        .await
        .unwrap();
    wait_state(&alice(), base, &id, "Running").await.unwrap();
    let page = st
        .gw
        .at(&format!("/v1/sandboxes/{id}/proxy/8080/index.html"));
    let body = wait_ok(&alice(), &page).await.unwrap();
    assert!(body.as_str().unwrap().contains(HELLO));

    let pause = st.gw.at(&format!("/v1/sandboxes/{id}/pause"));
    let (s, _) = send(&alice(), "POST", &pause, None).await;
    assert_eq!(s, 202);
    wait_state(&alice(), base, &id, "Paused").await.unwrap();

    let started = Instant::now();
    let (s, v) = send(&alice(), "GET", &page, None).await;
    let took = started.elapsed();
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["code"], "SANDBOX::INVALID_STATE");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("paused") && msg.contains("Resume"), "{msg}");
    assert!(took < Duration::from_secs(2), "answered after {took:?}");

    let resume = st.gw.at(&format!("/v1/sandboxes/{id}/resume"));
    let (s, _) = send(&alice(), "POST", &resume, None).await;
    assert_eq!(s, 202);
    wait_state(&alice(), base, &id, "Running").await.unwrap();
    let body = wait_ok(&alice(), &page).await.unwrap();
    assert!(body.as_str().unwrap().contains(HELLO));
}

/// A backend (or an upstream server in front of a frozen sandbox) that accepts the proxy
/// request and never answers: the proxy route gives up after `proxy_read_timeout_ms`
/// with 504 `GATEWAY::SANDBOX_TIMEOUT` and a sentence that says what to do.
#[tokio::test]
async fn proxy_route_gives_up_after_its_read_timeout() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let key = "silent-backend-key-0123456789";
    let gw = gatehouse_tests::gateway::Gateway::start_tuned(
        gatehouse_tests::free_port(),
        &url,
        key,
        "proxy_read_timeout_ms = 400",
        "",
    )
    .await
    .unwrap();
    let c = reqwest::Client::new();
    let started = Instant::now();
    let r = c
        .get(gw.at("/v1/sandboxes/sbx-1/proxy/8080/"))
        .header("OPEN-SANDBOX-API-KEY", key)
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(r.status(), 504);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], "GATEWAY::SANDBOX_TIMEOUT");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("did not answer within 0.4 s") && msg.contains("resume"),
        "{msg}"
    );
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
}
