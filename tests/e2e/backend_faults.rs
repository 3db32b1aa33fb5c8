//! The Docker engine goes away mid-test and comes back. Each test runs its own private
//! engine so stopping it cannot disturb the other tests; the engines start one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::api::{send, send_req};
use gatehouse_tests::docker::docker_at;
use gatehouse_tests::sandbox::{create_id, get};
use gatehouse_tests::upstream::scripts_dir;
use gatehouse_tests::{test_image, wait_for, Backend, BackendOptions};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

/// A private Docker engine with the test image (`dev/scripts/docker-engine.sh`); stopped
/// on drop.
struct Engine {
    name: String,
    host: String,
}

/// Held while an engine starts: two `dockerd`s setting up their iptables chains at once
/// fail ("Chain already exists").
static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Engine {
    fn start(name: &str) -> Self {
        let _one_at_a_time = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        let out = Command::new(scripts_dir().join("docker-engine.sh"))
            .args(["start", name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "engine start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let host = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let st = Command::new(scripts_dir().join("test-image.sh"))
            .arg(test_image())
            .env("DOCKER_HOST", &host)
            .status()
            .unwrap();
        assert!(
            st.success(),
            "building the test image in the private engine failed"
        );
        Self {
            name: name.into(),
            host,
        }
    }

    fn stop(&self) {
        let st = Command::new(scripts_dir().join("docker-engine.sh"))
            .args(["stop", &self.name])
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Engine {
    /// Stops the engine and removes its state directory, as `make test` does for its own.
    fn drop(&mut self) {
        let _ = Command::new(scripts_dir().join("docker-engine.sh"))
            .args(["stop", &self.name])
            .status();
        let state = std::env::var("GATEHOUSE_STATE_DIR").unwrap_or_else(|_| "/tmp".into());
        let _ = std::fs::remove_dir_all(std::path::Path::new(&state).join(&self.name));
    }
}

/// A sleeping sandbox with metadata `k=v`.
fn body() -> Value {
    json!({"image": {"uri": test_image()}, "entrypoint": ["sleep", "3600"], "metadata": {"k": "v"}})
}

/// A private engine named `gh-outage-<pid>-<which>`, a backend on it (reconciling every
/// second) with one sandbox, and the engine stopped; the sandbox's id.
async fn outage(which: &str) -> (Engine, Backend, String) {
    let engine = Engine::start(&format!("gh-outage-{}-{which}", std::process::id()));
    let b = Backend::start(BackendOptions {
        docker_host: Some(engine.host.clone()),
        reconcile_seconds: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    let id = create_id(&b.client(), &b.url, &body()).await.unwrap();
    engine.stop();
    (engine, b, id)
}

/// During the outage reads keep working from the store, writes that need the engine get
/// 503 with a clear code and no internals, and store-only writes still work.
#[tokio::test]
async fn engine_outage_serves_reads_and_refuses_engine_writes() {
    let (_engine, b, id) = outage("reads").await;
    let c = b.client();
    let (s, v) = get(&c, &b.url, &id).await;
    assert_eq!(s, 200);
    assert_eq!(v["metadata"], json!({"k": "v"}));
    let (_, v) = send_req(c.get(b.at("/v1/sandboxes"))).await;
    assert_eq!(v["pagination"]["totalItems"], 1, "an outage drops nothing");
    for (method, path, body) in [
        ("POST", "/v1/sandboxes".to_string(), Some(body())),
        ("DELETE", format!("/v1/sandboxes/{id}"), None),
        ("POST", format!("/v1/sandboxes/{id}/pause"), None),
    ] {
        let (s, v) = send(&c, method, &b.at(&path), body.as_ref()).await;
        assert_eq!(s, 503, "{method} {path}");
        assert_eq!(v["code"], "DOCKER::ENGINE_UNAVAILABLE");
        assert!(
            !v["message"].as_str().unwrap().contains("sock"),
            "no internals in a 5xx body: {v}"
        );
    }
    let patch = c
        .patch(b.at(&format!("/v1/sandboxes/{id}/metadata")))
        .json(&json!({"k": "during-outage"}));
    assert_eq!(send_req(patch).await.0, 200);
}

/// The engine returns (its containers stopped with it): the backend recovers on its own,
/// keeps what was written during the outage, deletes and creates again.
#[tokio::test]
async fn backend_recovers_when_the_engine_returns() {
    let (engine, b, id) = outage("recovery").await;
    let c = b.client();
    let patch = c
        .patch(b.at(&format!("/v1/sandboxes/{id}/metadata")))
        .json(&json!({"k": "during-outage"}));
    assert_eq!(send_req(patch).await.0, 200);
    let engine2 = Engine::start(&engine.name);
    assert_eq!(engine2.host, engine.host);
    std::mem::forget(engine2);
    let v = wait_for(
        "the backend to see the engine again",
        Duration::from_secs(60),
        || async {
            let (s, v) = get(&c, &b.url, &id).await;
            (s == 200 && v["status"]["state"] != "Running").then_some(v)
        },
    )
    .await
    .unwrap();
    assert_eq!(v["metadata"], json!({"k": "during-outage"}));
    assert_eq!(
        send_req(c.delete(b.at(&format!("/v1/sandboxes/{id}"))))
            .await
            .0,
        204
    );
    let id2 = create_id(&c, &b.url, &body())
        .await
        .expect("creates work again");
    assert_eq!(
        send_req(c.delete(b.at(&format!("/v1/sandboxes/{id2}"))))
            .await
            .0,
        204
    );
    assert_eq!(docker_at(&engine.host, &["ps", "-aq"]).unwrap(), "");
}
