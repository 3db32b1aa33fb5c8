//! `/healthz`: the gateway is up; `upstream` says whether the backend answers.

use crate::ctx::RequestCtx;
use crate::reply::Reply;
use crate::state::Gateway;

/// 200 when the backend's `/health` answers, else 503 (`degraded`).
pub async fn healthz(gw: &Gateway, ctx: &RequestCtx) -> Reply {
    let up = gw.backend.upstream_healthy(&ctx.request_id).await;
    let body = serde_json::json!({
        "status": if up { "healthy" } else { "degraded" },
        "gateway": "healthy",
        "upstream": if up { "healthy" } else { "unreachable" },
    });
    Reply::json_value(if up { 200 } else { 503 }, &body)
}
