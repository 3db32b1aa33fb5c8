//! Egress API stub (port 18080).
//!
//! This agent enforces no egress policy, so `GET /policy` reports an allow-all policy
//! (what the SDK's `get_egress_policy` reads, and what lets `Sandbox.create` resolve the
//! egress endpoint). Updates and the Credential Vault answer `501` with a plain-text
//! message: the egress contract's error bodies are `text/plain`.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::json;

use crate::auth::{require_token, AuthPolicy, Secret, EGRESS_AUTH_HEADER, TOKEN_HEADER};

/// Plain-text error, as the egress contract specifies.
fn plain(status: StatusCode, msg: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg,
    )
        .into_response()
}

/// `GET /policy`.
pub async fn get_policy() -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "mode": "allow_all",
        "enforcementMode": "none",
        "reason": "no egress policy is enforced inside this sandbox",
        "policy": { "defaultAction": "allow", "egress": [] }
    }))
}

async fn policy_update(req: Request) -> Response {
    plain(
        StatusCode::NOT_IMPLEMENTED,
        format!(
            "NOT_SUPPORTED: {} /policy: egress policy updates are not supported by this sandbox",
            req.method()
        ),
    )
}

async fn vault(req: Request) -> Response {
    plain(
        StatusCode::NOT_IMPLEMENTED,
        format!(
            "NOT_SUPPORTED: {} {}: the Credential Vault is not supported by this sandbox",
            req.method(),
            req.uri().path()
        ),
    )
}

async fn not_found(req: Request) -> Response {
    plain(
        StatusCode::NOT_FOUND,
        format!("no route {} {}", req.method(), req.uri().path()),
    )
}

/// The egress routes without auth (also the target of `/proxy/18080/...` on execd).
pub fn api_router() -> Router {
    Router::new()
        .route("/policy", get(get_policy).fallback(policy_update))
        .route("/credential-vault", any(vault))
        .route("/credential-vault/{*rest}", any(vault))
        .fallback(not_found)
}

/// The egress listener: accepts the token in `OPENSANDBOX-EGRESS-AUTH` or
/// `X-EXECD-ACCESS-TOKEN`.
pub fn router(token: Option<Secret>) -> Router {
    let policy = Arc::new(AuthPolicy {
        token,
        headers: &[EGRESS_AUTH_HEADER, TOKEN_HEADER],
        plain_text: true,
    });
    api_router().layer(axum::middleware::from_fn_with_state(policy, require_token))
}
