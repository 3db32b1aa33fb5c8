//! `POST /auth/sandbox-handoff?sandbox={id}&port={port}[&path=/x]`: the console's way into a
//! sandbox's own origin. The caller (authenticated, CSRF-checked) must be allowed the
//! proxy of that sandbox port, in scope; the answer is `{"url": ...}`, a single-use
//! hand-off to `{id}-{port}.{sandbox_domain}` ([`crate::sandbox_origin`]).

use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::http::inbound::Inbound;
use crate::reply::Reply;
use crate::state::Gateway;
use gatehouse_authn::PrincipalKind;
use gatehouse_scope::Scope;

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Answers the hand-off URL.
pub async fn handoff(
    gw: &Gateway,
    req: &Inbound,
    ctx: &mut RequestCtx,
) -> Result<Reply, GatewayError> {
    let Some(origins) = &gw.sandbox_origins else {
        return Err(GatewayError::new(
            404,
            "GATEWAY::SANDBOX_ORIGIN_DISABLED",
            "Sandbox origins are not configured (server.sandbox_domain).",
        ));
    };
    if ctx.principal.kind == PrincipalKind::Anonymous {
        return Err(GatewayError::unauthenticated());
    }
    let bad = || {
        GatewayError::new(
            400,
            "GATEWAY::INVALID_HANDOFF",
            "Name a sandbox id and a port: ?sandbox=<id>&port=<port>.",
        )
    };
    let id = query_param(req.query(), "sandbox")
        .filter(|i| !i.is_empty() && i.len() <= 128)
        .filter(|i| i.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .ok_or_else(bad)?;
    let port: u16 = query_param(req.query(), "port")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p > 0)
        .ok_or_else(bad)?;
    let path = query_param(req.query(), "path")
        .filter(|p| crate::routes::auth::safe_return_to(p))
        .unwrap_or_else(|| "/".into());
    let table = gw.policy.current();
    let role = ctx.role.clone().unwrap_or_default();
    let permit = table
        .authorize(&role, "GET", &format!("/sandboxes/{id}/proxy/{port}"))
        .map_err(|_| {
            ctx.denied = true;
            GatewayError::new(
                403,
                "GATEWAY::FORBIDDEN",
                format!("Role '{role}' does not allow 'sandbox:proxy'."),
            )
        })?;
    let p = &ctx.principal;
    if let Some(scope) = Scope::for_permit(&permit, &p.subject, p.team.as_deref()) {
        if let Err(e) = gw.check_sandbox_in_scope(&id, &scope, ctx).await {
            ctx.denied = true;
            return Err(e);
        }
    }
    let host = gatehouse_lifecycle::wire::request_host(
        req.headers().get(http::header::HOST).map(|h| h.as_bytes()),
    );
    let secure = gw.oidc.as_ref().is_some_and(|o| o.secure);
    let console = gw.hosts.origin(host, secure);
    let url = origins
        .mint(&ctx.principal, &id, port, &console, &path)
        .ok_or_else(GatewayError::internal)?;
    Ok(Reply::json_value(200, &serde_json::json!({ "url": url })))
}
