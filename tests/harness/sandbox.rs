//! Sandboxes as the tests create them, against any lifecycle API (the backend, the gateway
//! or upstream): the request bodies, and create / get / wait-for-state over HTTP.

use crate::api::send;
use crate::{test_image, wait_for};
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::time::Duration;

/// busybox httpd on port 8080 serving the image's web root.
pub const HTTPD: [&str; 6] = ["httpd", "-f", "-p", "8080", "-h", "/www"];

/// What the test image's web root (`/www/index.html`) says.
pub const HELLO: &str = "hello from a gatehouse sandbox";

/// A sandbox running [`HTTPD`] for 600 s with `metadata`.
pub fn httpd_body(metadata: Value) -> Value {
    json!({
        "image": {"uri": test_image()},
        "entrypoint": HTTPD,
        "timeout": 600,
        "metadata": metadata,
    })
}

/// `body` with `resourceLimits` of 500m CPU and 64Mi memory (upstream requires limits).
pub fn with_limits(mut body: Value) -> Value {
    body["resourceLimits"] = json!({"cpu": "500m", "memory": "64Mi"});
    body
}

/// A sandbox running `sh -c script` for 600 s.
pub fn script_body(script: &str) -> Value {
    json!({"image": {"uri": test_image()}, "entrypoint": ["sh", "-c", script], "timeout": 600})
}

/// `POST {base}/v1/sandboxes` with `body` as `c`; the answer, which must be a 202.
pub async fn create(c: &reqwest::Client, base: &str, body: &Value) -> Result<Value> {
    let (s, v) = send(c, "POST", &format!("{base}/v1/sandboxes"), Some(body)).await;
    if s != 202 {
        bail!("create answered {s}: {v}");
    }
    Ok(v)
}

/// [`create`], returning the new sandbox's id.
pub async fn create_id(c: &reqwest::Client, base: &str, body: &Value) -> Result<String> {
    let v = create(c, base, body).await?;
    match v["id"].as_str() {
        Some(id) => Ok(id.to_string()),
        None => bail!("create answered no id: {v}"),
    }
}

/// `GET {base}/v1/sandboxes/{id}` as `c`.
pub async fn get(c: &reqwest::Client, base: &str, id: &str) -> (u16, Value) {
    send(c, "GET", &format!("{base}/v1/sandboxes/{id}"), None).await
}

/// `DELETE {base}/v1/sandboxes/{id}` as `c`; the status.
pub async fn delete(c: &reqwest::Client, base: &str, id: &str) -> u16 {
    send(c, "DELETE", &format!("{base}/v1/sandboxes/{id}"), None)
        .await
        .0
}

/// Waits up to 60 s for `GET` of the sandbox (as `c`) to show `state`; its last answer.
/// (A sandbox starts in about a second; the full `make test` runs four heavy tests at
/// once on two cores, where one once took longer than 30 s to start.) A sandbox that ends
/// (`Failed`, `Terminated`) in another state fails the wait at once, with its status.
pub async fn wait_state(c: &reqwest::Client, base: &str, id: &str, state: &str) -> Result<Value> {
    let last = std::sync::Mutex::new(Value::Null);
    let outcome = wait_for(
        &format!("{id} to be {state}"),
        Duration::from_secs(60),
        || async {
            let (s, v) = get(c, base, id).await;
            let now = v["status"]["state"].as_str().unwrap_or_default();
            if s == 200 && now == state {
                return Some(Ok(v));
            }
            if s == 200 && matches!(now, "Failed" | "Terminated") {
                return Some(Err(v));
            }
            if let Ok(mut l) = last.lock() {
                *l = json!({"http": s, "body": v});
            }
            None
        },
    )
    .await;
    match outcome {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(v)) => bail!("{id} ended instead of becoming {state}: {}", v["status"]),
        Err(e) => {
            let seen = last.lock().map(|l| l.to_string()).unwrap_or_default();
            bail!("{e}; its last answer: {seen}")
        }
    }
}
