//! `gatehouse-backend` as a process against the real Docker engine, one scenario per test,
//! each on a fresh backend:
//! - `lifecycle`: create, the container's hardening, endpoints and the server proxy,
//!   pause/resume, renew, metadata, the list query and delete;
//! - `durability`: expiry, restarts (timers, metadata, reconciliation with the engine) and
//!   concurrent deletes;
//! - `validation`: bad input gets the right code and leaves nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "backend_docker/durability.rs"]
mod durability;
#[path = "backend_docker/lifecycle.rs"]
mod lifecycle;
#[path = "backend_docker/validation.rs"]
mod validation;

use gatehouse_tests::sandbox::{self, httpd_body, with_limits};
use gatehouse_tests::{Backend, BackendOptions};
use serde_json::{json, Value};

/// An httpd sandbox with limits, `GREETING=hi` in its environment, `timeout` seconds (or
/// none) and `metadata`.
fn spec(timeout: Option<i64>, metadata: Value) -> Value {
    let mut body = with_limits(httpd_body(metadata));
    body["timeout"] = json!(timeout);
    body["env"] = json!({"GREETING": "hi"});
    body
}

/// A backend whose minimum sandbox timeout is 2 s, for the expiry scenarios.
async fn short_timeouts_backend() -> Backend {
    Backend::start(BackendOptions {
        server_extra: "min_sandbox_timeout_seconds = 2".into(),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Creates `body` on `b` (202); the answer.
async fn create(b: &Backend, body: Value) -> Value {
    sandbox::create(&b.client(), &b.url, &body).await.unwrap()
}

/// Creates `body` on `b` (202); the id.
async fn create_id(b: &Backend, body: Value) -> String {
    sandbox::create_id(&b.client(), &b.url, &body)
        .await
        .unwrap()
}

/// `GET` of the sandbox on `b`.
async fn get(b: &Backend, id: &str) -> (u16, Value) {
    sandbox::get(&b.client(), &b.url, id).await
}

/// Waits for the sandbox on `b` to be in `state`; its last answer.
async fn wait_state(b: &Backend, id: &str, state: &str) -> Value {
    sandbox::wait_state(&b.client(), &b.url, id, state)
        .await
        .unwrap()
}
