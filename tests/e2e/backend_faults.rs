//! The Docker engine goes away mid-test and comes back. This test runs its own private
//! engine so stopping it cannot disturb the other tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::docker::docker_at;
use gatehouse_tests::{repo_root, test_image, wait_for, Backend, BackendOptions};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

struct Engine {
    name: String,
    host: String,
}

fn script(name: &str) -> std::path::PathBuf {
    std::env::var("GATEHOUSE_SCRIPTS")
        .map(Into::into)
        .unwrap_or_else(|_| repo_root().join("scripts"))
        .join(name)
}

impl Engine {
    fn start(name: &str) -> Self {
        let out = Command::new(script("docker-engine.sh"))
            .args(["start", name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "engine start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let host = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let st = Command::new(script("test-image.sh"))
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
        let st = Command::new(script("docker-engine.sh"))
            .args(["stop", &self.name])
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = Command::new(script("docker-engine.sh"))
            .args(["stop", &self.name])
            .status();
    }
}

#[tokio::test]
async fn engine_outage_serves_reads_refuses_writes_and_recovers() {
    let engine = Engine::start(&format!("gh-outage-{}", std::process::id()));
    let b = Backend::start(BackendOptions {
        docker_host: Some(engine.host.clone()),
        reconcile_seconds: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    let c = b.client();
    let body = json!({"image": {"uri": test_image()}, "entrypoint": ["sleep", "3600"], "metadata": {"k": "v"}});
    let r = c
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

    engine.stop();

    // Reads keep working from the store.
    let r = c
        .get(b.at(&format!("/v1/sandboxes/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["metadata"], json!({"k": "v"}));
    let v: Value = c
        .get(b.at("/v1/sandboxes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["pagination"]["totalItems"], 1, "an outage drops nothing");
    // Writes that need the engine get 503 with a clear code.
    for (method, path, body) in [
        ("POST", "/v1/sandboxes".to_string(), Some(body.clone())),
        ("DELETE", format!("/v1/sandboxes/{id}"), None),
        ("POST", format!("/v1/sandboxes/{id}/pause"), None),
    ] {
        let mut rb = c.request(method.parse().unwrap(), b.at(&path));
        if let Some(body) = body {
            rb = rb.json(&body);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), 503, "{method} {path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "DOCKER::ENGINE_UNAVAILABLE");
        assert!(
            !v["message"].as_str().unwrap().contains("sock"),
            "no internals in a 5xx body: {v}"
        );
    }
    // Store-only writes still work.
    let r = c
        .patch(b.at(&format!("/v1/sandboxes/{id}/metadata")))
        .json(&json!({"k": "during-outage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The engine returns (its containers stopped with it); the backend recovers on its own.
    let engine2 = Engine::start(&engine.name);
    assert_eq!(engine2.host, engine.host);
    std::mem::forget(engine2);
    let v = wait_for(
        "the backend to see the engine again",
        Duration::from_secs(60),
        || async {
            let v: Value = c
                .get(b.at(&format!("/v1/sandboxes/{id}")))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (v["status"]["state"] != "Running").then_some(v)
        },
    )
    .await
    .unwrap();
    assert_eq!(v["metadata"], json!({"k": "during-outage"}));
    let r = c
        .delete(b.at(&format!("/v1/sandboxes/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = c
        .post(b.at("/v1/sandboxes"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "creates work again");
    let id2 = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        c.delete(b.at(&format!("/v1/sandboxes/{id2}")))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(docker_at(&engine.host, &["ps", "-aq"]).unwrap(), "");
}
