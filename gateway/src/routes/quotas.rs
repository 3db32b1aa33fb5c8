//! `/gatehouse/v1/quotas`: quotas per team and per user ([`crate::limits::quota`]).
//!
//! - `GET /gatehouse/v1/quotas` (`quota:read`): the caller's team and user limits and
//!   their current use.
//! - `PUT /gatehouse/v1/quotas/teams/{team}` (`quota:write`, service_admin)
//!   `{"maxSandboxes"?, "maxCpuMillis"?, "maxMemoryBytes"?, "maxTimeoutSeconds"?}`
//!   stores the team's override (each field set replaces the configured default).
//! - `DELETE /gatehouse/v1/quotas/teams/{team}` (`quota:write`) removes it (`204`, or
//!   404).
//!
//! Changes are audited (`quota:put`, `quota:delete`).

use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::http::body::ReadError;
use crate::http::inbound::Inbound;
use crate::reply::Reply;
use crate::routes::audit_api::store_error;
use crate::state::Gateway;
use gatehouse_store::{ms_to_rfc3339, QuotaLimits, TeamQuota};
use serde_json::json;

const MAX_BODY: usize = 4 * 1024;

/// The path prefix of a team's override.
pub const TEAM_PREFIX: &str = "/gatehouse/v1/quotas/teams/";

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::new(400, "GATEWAY::INVALID_REQUEST", message)
}

fn team_of(ctx: &RequestCtx) -> Result<String, GatewayError> {
    let t = ctx.path.strip_prefix(TEAM_PREFIX).unwrap_or_default();
    if t.is_empty() || t.len() > 256 || t.contains('/') || t.chars().any(char::is_control) {
        return Err(GatewayError::new(
            404,
            "GATEWAY::UNKNOWN_ROUTE",
            format!("No route {}.", ctx.path),
        ));
    }
    Ok(t.to_owned())
}

/// `GET /gatehouse/v1/quotas`.
pub async fn mine(gw: &Gateway, ctx: &mut RequestCtx) -> Result<Reply, GatewayError> {
    let p = &ctx.principal;
    let report = gw
        .limits
        .quotas
        .report(
            &gw.backend,
            &gw.keys,
            &p.subject,
            p.team.as_deref(),
            &ctx.request_id,
        )
        .await?;
    let body = serde_json::to_value(&report).map_err(|_| GatewayError::internal())?;
    Ok(Reply::json_value(200, &body))
}

/// `PUT /gatehouse/v1/quotas/teams/{team}`.
pub async fn put(
    gw: &Gateway,
    req: &mut Inbound,
    ctx: &mut RequestCtx,
) -> Result<Reply, GatewayError> {
    let team = team_of(ctx)?;
    let buf = req.read_body(MAX_BODY).await.map_err(|e| match e {
        ReadError::TooLarge(_) => {
            GatewayError::new(413, "GATEWAY::PAYLOAD_TOO_LARGE", "Body too large.")
        }
        ReadError::Broken(_) => bad("The request body could not be read."),
    })?;
    let limits: QuotaLimits =
        serde_json::from_slice(&buf).map_err(|e| bad(format!("Invalid quota: {e}")))?;
    let q = TeamQuota {
        team,
        limits,
        updated_by: ctx.principal.subject.clone(),
        updated_ms: chrono::Utc::now().timestamp_millis(),
    };
    gw.limits
        .quotas
        .store()
        .put_team_quota(&q)
        .await
        .map_err(store_error)?;
    gw.limits.quotas.override_changed(&q.team);
    gw.audit_change(ctx, "PUT", "quota:put", Some(&q.team), 200);
    let body = json!({
        "team": q.team,
        "limits": q.limits,
        "updatedBy": q.updated_by,
        "updatedAt": ms_to_rfc3339(q.updated_ms),
    });
    Ok(Reply::json_value(200, &body))
}

/// `DELETE /gatehouse/v1/quotas/teams/{team}`.
pub async fn delete(gw: &Gateway, ctx: &mut RequestCtx) -> Result<Reply, GatewayError> {
    let team = team_of(ctx)?;
    let found = gw
        .limits
        .quotas
        .store()
        .delete_team_quota(&team)
        .await
        .map_err(store_error)?;
    gw.limits.quotas.override_changed(&team);
    if !found {
        return Err(GatewayError::new(
            404,
            "GATEWAY::QUOTA_NOT_FOUND",
            format!("Team '{team}' has no quota override."),
        ));
    }
    gw.audit_change(ctx, "DELETE", "quota:delete", Some(&team), 204);
    Ok(Reply {
        status: 204,
        headers: vec![("cache-control", "no-store".into())],
        body: bytes::Bytes::new(),
    })
}
