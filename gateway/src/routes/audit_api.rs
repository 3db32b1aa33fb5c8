//! `GET /gatehouse/v1/audit`: the durable audit trail, filtered and keyset-paginated,
//! newest first.
//!
//! Query parameters (each at most once): `actor`, `team`, `sandbox`, `action`, `outcome`
//! (`allowed|denied|error`), `since` and `until` (RFC 3339), `limit` (1..=1000, default
//! 100), `cursor` (from the previous page), `format=json|jsonl`. JSON answers
//! `{"items": [...], "nextCursor": "..."|null}`; JSON Lines (`format=jsonl` or `Accept:
//! application/x-ndjson`) answers one event per line and the next cursor in the
//! `X-Gatehouse-Next-Cursor` header.
//!
//! Who sees what: the role table decides who may call it (`audit:read`: operator and
//! service_admin by default). A caller the table does not scope (service_admin) sees every
//! event; a scoped caller sees what `[authz] scope` gives them: their team's events
//! (`scope = "team"`, the default; asking for another team is 403) or their own
//! (`scope = "owner"`).

use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::http::inbound::Inbound;
use crate::reply::Reply;
use crate::state::Gateway;
use gatehouse_authn::PrincipalKind;
use gatehouse_authz::ScopeMode;
use gatehouse_store::{AuditQuery, Cursor, StoreError, DEFAULT_PAGE, MAX_PAGE};

/// The JSON Lines media type.
pub const NDJSON: &str = "application/x-ndjson";

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::new(400, "GATEWAY::INVALID_QUERY", message)
}

/// Maps a store failure: bad input is 400, anything else 503 with a generic body (the
/// cause goes to the log).
pub fn store_error(e: StoreError) -> GatewayError {
    match e {
        StoreError::Invalid(m) => bad(m),
        other => {
            tracing::error!(error = %other, "governance store failed");
            GatewayError::new(
                503,
                "GATEWAY::STORE_UNAVAILABLE",
                "The governance store is unavailable; retry later.",
            )
        }
    }
}

fn parse_time(name: &str, v: &str) -> Result<i64, GatewayError> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            bad(format!(
                "'{name}' must be an RFC 3339 time, e.g. 2026-01-01T00:00:00Z"
            ))
        })
}

/// The query and whether JSON Lines was asked for, from the query string.
pub fn parse_query(query: Option<&str>) -> Result<(AuditQuery, bool), GatewayError> {
    let mut q = AuditQuery::all();
    let mut jsonl = false;
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if seen.iter().any(|s| *s == k) {
            return Err(bad(format!("'{k}' is given more than once")));
        }
        seen.push(k.to_string());
        if v.len() > 256 {
            return Err(bad(format!("'{k}' is too long")));
        }
        let text = || Some(v.to_string());
        match &*k {
            "actor" => q.actor = text(),
            "team" => q.team = text(),
            "sandbox" => q.sandbox_id = text(),
            "action" => q.action = text(),
            "outcome" => {
                q.outcome = Some(
                    gatehouse_store::parse_outcome(&v)
                        .ok_or_else(|| bad("'outcome' must be one of allowed, denied, error"))?,
                )
            }
            "since" => q.since_ms = Some(parse_time("since", &v)?),
            "until" => q.until_ms = Some(parse_time("until", &v)?),
            "limit" => {
                q.limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| bad(format!("'limit' must be between 1 and {MAX_PAGE}")))?
            }
            "cursor" => {
                q.after = Some(Cursor::decode(&v).ok_or_else(|| bad("'cursor' is not valid"))?)
            }
            "format" => {
                jsonl = match &*v {
                    "jsonl" | "ndjson" => true,
                    "json" => false,
                    _ => return Err(bad("'format' must be json or jsonl")),
                }
            }
            other => return Err(bad(format!("unknown parameter '{other}'"))),
        }
    }
    if q.limit == 0 {
        q.limit = DEFAULT_PAGE;
    }
    Ok((q, jsonl))
}

/// Narrows `q` to what the caller may see, or refuses.
fn scope_to_caller(q: &mut AuditQuery, ctx: &mut RequestCtx) -> Result<(), GatewayError> {
    let forbidden = |msg: &str| GatewayError::new(403, "GATEWAY::FORBIDDEN", msg.to_string());
    let mode = ctx.permit.as_ref().and_then(|p| p.scope_mode());
    match mode {
        None => Ok(()),
        Some(ScopeMode::Team) => {
            let Some(team) = ctx.principal.team.clone() else {
                return Err(forbidden("Reading the audit trail needs a team."));
            };
            if q.team.as_ref().is_some_and(|t| *t != team) {
                return Err(forbidden("You can read your own team's events only."));
            }
            q.team = Some(team);
            Ok(())
        }
        Some(ScopeMode::Owner) => {
            let me = &ctx.principal.subject;
            if q.actor.as_ref().is_some_and(|a| a != me) {
                return Err(forbidden("You can read your own events only."));
            }
            q.actor = Some(me.clone());
            Ok(())
        }
    }
}

/// `GET /gatehouse/v1/audit`.
pub async fn query(
    gw: &Gateway,
    req: &Inbound,
    ctx: &mut RequestCtx,
) -> Result<Reply, GatewayError> {
    if ctx.principal.kind == PrincipalKind::Anonymous {
        return Err(GatewayError::unauthenticated());
    }
    let (mut q, mut jsonl) = parse_query(req.query())?;
    scope_to_caller(&mut q, ctx)?;
    if let Some(accept) = req.headers().get(http::header::ACCEPT) {
        jsonl |= accept.to_str().is_ok_and(|a| a.contains(NDJSON));
    }
    let page = gw.store.query_audit(&q).await.map_err(store_error)?;
    let next = page.next.as_ref().map(Cursor::encode);
    if jsonl {
        let mut body = Vec::with_capacity(page.events.len() * 400);
        for e in &page.events {
            serde_json::to_writer(&mut body, e).map_err(|_| GatewayError::internal())?;
            body.push(b'\n');
        }
        let mut reply = Reply::json(200, body);
        reply.headers[0].1 = NDJSON.into();
        if let Some(c) = next {
            reply = reply.header("x-gatehouse-next-cursor", c);
        }
        return Ok(reply);
    }
    let body = serde_json::json!({ "items": page.events, "nextCursor": next });
    Ok(Reply::json_value(200, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_filters_and_refuses_bad_input() {
        let (q, jsonl) = parse_query(Some(
            "actor=alice&team=t&sandbox=s&action=sandbox.create&outcome=denied\
             &since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00%2B01:00&limit=5&format=jsonl",
        ))
        .unwrap();
        assert!(jsonl);
        assert_eq!(q.actor.as_deref(), Some("alice"));
        assert_eq!(q.since_ms, Some(1_767_225_600_000));
        assert_eq!(q.until_ms, Some(1_767_225_600_000 + 23 * 3_600_000));
        assert_eq!(q.limit, 5);
        assert_eq!(parse_query(None).unwrap().0.limit, DEFAULT_PAGE);
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=x",
            "outcome=maybe",
            "since=yesterday",
            "cursor=zzz",
            "format=xml",
            "actor=a&actor=b",
            "colour=red",
        ] {
            let e = parse_query(Some(bad)).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
        }
    }
}
