//! `/gatehouse/v1/bindings`: RBAC bindings in the governance store. The role table
//! decides who calls these (`binding:read`, `binding:write`; service_admin by default).
//!
//! - `GET /gatehouse/v1/bindings` lists them, with `"fresh"`: whether the gateway's copy
//!   is current (false while the store is unreachable: the last ones read apply).
//! - `PUT /gatehouse/v1/bindings` `{"kind": "subject"|"group", "name", "role", "team"?}`
//!   creates or replaces one (`200`); an unknown role is 400.
//! - `DELETE /gatehouse/v1/bindings/{kind}/{name}` removes one (`204`, or 404).
//!
//! Changes are audited (`binding:put`, `binding:delete`) and apply within a second.

use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::http::body::ReadError;
use crate::http::inbound::Inbound;
use crate::reply::Reply;
use crate::routes::audit_api::store_error;
use crate::state::Gateway;
use gatehouse_store::{ms_to_rfc3339, Binding, BindingKind};
use serde::Deserialize;
use serde_json::json;

const MAX_BODY: usize = 16 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBinding {
    kind: String,
    name: String,
    role: String,
    team: Option<String>,
}

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::new(400, "GATEWAY::INVALID_REQUEST", message)
}

fn binding_json(b: &Binding) -> serde_json::Value {
    json!({
        "kind": b.kind.as_str(),
        "name": b.name,
        "role": b.role,
        "team": b.team,
        "createdBy": b.created_by,
        "createdAt": ms_to_rfc3339(b.created_ms),
    })
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 256 && !n.chars().any(|c| c.is_control() || c == '/')
}

/// `GET /gatehouse/v1/bindings`.
pub async fn list(gw: &Gateway) -> Result<Reply, GatewayError> {
    let items: Vec<_> = gw
        .store
        .list_bindings()
        .await
        .map_err(store_error)?
        .iter()
        .map(binding_json)
        .collect();
    let body = json!({ "items": items, "fresh": gw.bindings.is_fresh() });
    Ok(Reply::json_value(200, &body))
}

/// `PUT /gatehouse/v1/bindings`.
pub async fn put(
    gw: &Gateway,
    req: &mut Inbound,
    ctx: &mut RequestCtx,
) -> Result<Reply, GatewayError> {
    let buf = req.read_body(MAX_BODY).await.map_err(|e| match e {
        ReadError::TooLarge(_) => {
            GatewayError::new(413, "GATEWAY::PAYLOAD_TOO_LARGE", "Body too large.")
        }
        ReadError::Broken(_) => bad("The request body could not be read."),
    })?;
    let body: PutBinding =
        serde_json::from_slice(&buf).map_err(|e| bad(format!("Invalid binding: {e}")))?;
    let kind =
        BindingKind::parse(&body.kind).ok_or_else(|| bad("'kind' must be subject or group"))?;
    if !valid_name(&body.name) {
        return Err(bad(
            "'name' must be 1-256 characters without '/' or controls",
        ));
    }
    if !gw.policy.current().has_role(&body.role) {
        return Err(bad(format!("Unknown role '{}'.", body.role)));
    }
    let b = Binding {
        kind,
        name: body.name,
        role: body.role,
        team: body.team.filter(|t| !t.is_empty()),
        created_by: ctx.principal.subject.clone(),
        created_ms: chrono::Utc::now().timestamp_millis(),
    };
    gw.store.put_binding(&b).await.map_err(store_error)?;
    let target = format!("{}/{}", b.kind.as_str(), b.name);
    gw.audit_change(ctx, "PUT", "binding:put", Some(&target), 200);
    Ok(Reply::json_value(200, &binding_json(&b)))
}

/// `DELETE /gatehouse/v1/bindings/{kind}/{name}`.
pub async fn delete(gw: &Gateway, rest: &str, ctx: &mut RequestCtx) -> Result<Reply, GatewayError> {
    let not_found = || GatewayError::new(404, "GATEWAY::BINDING_NOT_FOUND", "No such binding.");
    let (kind, name) = rest.split_once('/').ok_or_else(not_found)?;
    let kind = BindingKind::parse(kind).ok_or_else(not_found)?;
    if !gw
        .store
        .delete_binding(kind, name)
        .await
        .map_err(store_error)?
    {
        return Err(not_found());
    }
    gw.audit_change(ctx, "DELETE", "binding:delete", Some(rest), 204);
    Ok(Reply {
        status: 204,
        headers: vec![("cache-control", "no-store".into())],
        body: bytes::Bytes::new(),
    })
}
