//! `/gatehouse/v1/keys`: personal API keys.
//!
//! - `POST /gatehouse/v1/keys` `{"name", "role"?, "expiresInDays"?, "team"?}` creates a
//!   key for the caller and answers it once (`201`, `"key": "gk_…"`). The role defaults
//!   to the caller's and must not allow anything the caller's role does not (else 403);
//!   unknown roles are 400. `expiresInDays` is 1..=365 (default 90). Only
//!   `service_admin` may name another `team` (a team key).
//! - `GET /gatehouse/v1/keys` lists the caller's keys (never the key itself);
//!   `service_admin` may add `?all=true`.
//! - `DELETE /gatehouse/v1/keys/{id}` revokes a key of the caller's (any key for
//!   `service_admin`): `204`, refused at once by this gateway.
//!
//! Creation and revocation are audited (`key:create`, `key:revoke`).

use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::http::body::ReadError;
use crate::http::inbound::Inbound;
use crate::reply::Reply;
use crate::routes::audit_api::store_error;
use crate::state::Gateway;
use gatehouse_authn::PrincipalKind;
use gatehouse_store::{generate_key, ms_to_rfc3339, ApiKeyRecord, KeySpec};
use serde::Deserialize;
use serde_json::json;

const MAX_BODY: usize = 16 * 1024;
const DEFAULT_DAYS: u32 = 90;
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateKey {
    name: String,
    role: Option<String>,
    expires_in_days: Option<u32>,
    team: Option<String>,
}

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::new(400, "GATEWAY::INVALID_REQUEST", message)
}

fn forbidden(ctx: &mut RequestCtx, message: impl Into<String>) -> GatewayError {
    ctx.denied = true;
    GatewayError::new(403, "GATEWAY::FORBIDDEN", message)
}

/// A key as the API shows it (never the secret or its hash).
pub fn key_json(k: &ApiKeyRecord) -> serde_json::Value {
    json!({
        "id": k.id,
        "prefix": k.prefix,
        "name": k.name,
        "subject": k.subject,
        "team": k.team,
        "role": k.role,
        "createdAt": ms_to_rfc3339(k.created_ms),
        "expiresAt": k.expires_ms.map(ms_to_rfc3339),
        "lastUsedAt": k.last_used_ms.map(ms_to_rfc3339),
        "revokedAt": k.revoked_ms.map(ms_to_rfc3339),
    })
}

fn caller_role(ctx: &RequestCtx) -> Result<String, GatewayError> {
    if ctx.principal.kind == PrincipalKind::Anonymous {
        return Err(GatewayError::unauthenticated());
    }
    Ok(ctx.role.clone().unwrap_or_default())
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
}

/// `POST /gatehouse/v1/keys`.
pub async fn create(
    gw: &Gateway,
    req: &mut Inbound,
    ctx: &mut RequestCtx,
) -> Result<Reply, GatewayError> {
    let creator_role = caller_role(ctx)?;
    let buf = req.read_body(MAX_BODY).await.map_err(|e| match e {
        ReadError::TooLarge(_) => {
            GatewayError::new(413, "GATEWAY::PAYLOAD_TOO_LARGE", "Body too large.")
        }
        ReadError::Broken(_) => bad("The request body could not be read."),
    })?;
    let body: CreateKey =
        serde_json::from_slice(&buf).map_err(|e| bad(format!("Invalid key request: {e}")))?;
    if !valid_name(&body.name) {
        return Err(bad(
            "'name' must be 1-64 letters, digits, spaces, '-', '_' or '.'",
        ));
    }
    let table = gw.policy.current();
    let role = body.role.unwrap_or_else(|| creator_role.clone());
    if !table.has_role(&role) {
        return Err(bad(format!("Unknown role '{role}'.")));
    }
    let mine = table.permissions(&creator_role);
    if !table.permissions(&role).iter().all(|a| mine.contains(a)) {
        return Err(forbidden(
            ctx,
            format!("Role '{creator_role}' cannot create a key with role '{role}'."),
        ));
    }
    let team = match body.team {
        Some(t) if Some(&t) != ctx.principal.team.as_ref() => {
            if creator_role != "service_admin" {
                return Err(forbidden(
                    ctx,
                    "Only service_admin creates keys for another team.",
                ));
            }
            Some(t)
        }
        _ => ctx.principal.team.clone(),
    };
    let days = body.expires_in_days.unwrap_or(DEFAULT_DAYS);
    if !(1..=365).contains(&days) {
        return Err(bad("'expiresInDays' must be between 1 and 365"));
    }
    let now = chrono::Utc::now().timestamp_millis();
    let new = generate_key(
        KeySpec {
            name: body.name,
            subject: ctx.principal.subject.clone(),
            team,
            role,
            expires_ms: Some(now + i64::from(days) * DAY_MS),
        },
        now,
    );
    gw.store
        .create_key(&new.record)
        .await
        .map_err(store_error)?;
    gw.audit_change(ctx, "POST", "key:create", Some(&new.record.id), 201);
    let mut v = key_json(&new.record);
    v["key"] = json!(new.secret);
    Ok(Reply::json_value(201, &v))
}

/// `GET /gatehouse/v1/keys`.
pub async fn list(
    gw: &Gateway,
    req: &Inbound,
    ctx: &mut RequestCtx,
) -> Result<Reply, GatewayError> {
    let role = caller_role(ctx)?;
    let all = form_urlencoded::parse(req.query().unwrap_or("").as_bytes())
        .any(|(k, v)| k == "all" && v == "true");
    if all && role != "service_admin" {
        return Err(forbidden(ctx, "Only service_admin lists every key."));
    }
    let subject = (!all).then_some(ctx.principal.subject.as_str());
    let keys = gw.store.list_keys(subject).await.map_err(store_error)?;
    let items: Vec<serde_json::Value> = keys.iter().map(key_json).collect();
    Ok(Reply::json_value(200, &json!({ "items": items })))
}

/// `DELETE /gatehouse/v1/keys/{id}`.
pub async fn revoke(gw: &Gateway, id: &str, ctx: &mut RequestCtx) -> Result<Reply, GatewayError> {
    let role = caller_role(ctx)?;
    let not_found = || GatewayError::new(404, "GATEWAY::KEY_NOT_FOUND", "No such key.");
    if id.is_empty() || id.len() > 64 {
        return Err(not_found());
    }
    let Some(k) = gw.store.key_by_id(id).await.map_err(store_error)? else {
        return Err(not_found());
    };
    if k.subject != ctx.principal.subject && role != "service_admin" {
        return Err(not_found());
    }
    let now = chrono::Utc::now().timestamp_millis();
    gw.store.revoke_key(id, now).await.map_err(store_error)?;
    gw.personal_keys.invalidate(&k.hash);
    gw.audit_change(ctx, "DELETE", "key:revoke", Some(id), 204);
    Ok(Reply {
        status: 204,
        headers: vec![("cache-control", "no-store".into())],
        body: bytes::Bytes::new(),
    })
}
