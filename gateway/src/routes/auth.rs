//! `/auth/*`: OIDC login and callback, logout (front- and back-channel), the caller's
//! identity (`/auth/me`) and what the console needs to know (`/auth/config`).

use crate::cookies::{cookie_value, LOGIN_COOKIE};
use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::http::body::ReadError;
use crate::http::inbound::Inbound;
use crate::reply::Reply;
use crate::state::{Gateway, OidcRuntime};
use gatehouse_authn::oidc::LoginError;
use gatehouse_authn::{AuthMethod, PrincipalKind};
use subtle::ConstantTimeEq;

/// Largest back-channel logout body read.
const MAX_LOGOUT_BODY: usize = 64 * 1024;

/// Whether `return_to` is a same-origin relative path (no scheme, no `//`, no `\`).
pub fn safe_return_to(v: &str) -> bool {
    v.starts_with('/')
        && !v.starts_with("//")
        && !v.starts_with("/\\")
        && !v.contains('\\')
        && !v.chars().any(|c| c.is_control() || c.is_whitespace())
        && v.len() <= 2048
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn oidc_or_404(gw: &Gateway) -> Result<&OidcRuntime, GatewayError> {
    gw.oidc.as_deref().ok_or_else(|| {
        GatewayError::new(
            404,
            "GATEWAY::OIDC_DISABLED",
            "OpenID Connect login is not configured.",
        )
    })
}

/// 503 with `Retry-After`: the governance store (shared sessions) cannot be reached.
fn store_unavailable(message: &str) -> GatewayError {
    GatewayError::new(503, "GATEWAY::STORE_UNAVAILABLE", message.to_string()).with_retry_after(5)
}

/// 503 with `Retry-After` (a dependency of login is down; never a bare 502).
fn idp_unavailable() -> GatewayError {
    GatewayError::new(
        503,
        "GATEWAY::IDP_UNAVAILABLE",
        "The identity provider is unreachable; retry later.",
    )
    .with_retry_after(5)
}

/// `GET /auth/config`: whether sign-in is available, and the gateway's auth mode.
pub fn config(gw: &Gateway) -> Reply {
    let body = serde_json::json!({
        "oidc": gw.oidc.is_some(),
        "loginUrl": "/auth/login",
        "mode": gw.mode_name,
        // The console opens sandbox ports on their own origins (a hand-off) when set.
        "sandboxOrigins": gw.sandbox_origins.is_some(),
    });
    Reply::json_value(200, &body)
}

/// `GET /auth/login[?return_to=/path]`: to the IdP, with the login bound to this browser.
pub async fn login(
    gw: &Gateway,
    req: &Inbound,
    ctx: &mut RequestCtx,
) -> Result<Reply, GatewayError> {
    let oidc = oidc_or_404(gw)?;
    let return_to = query_param(req.query(), "return_to").unwrap_or_else(|| "/console/".into());
    if !safe_return_to(&return_to) {
        ctx.denied = true;
        return Err(GatewayError::new(
            400,
            "GATEWAY::INVALID_RETURN_TO",
            "return_to must be a same-origin relative path.",
        ));
    }
    // Discovery is cached: make sure the browser is not sent to an IdP that is down.
    if !crate::idp_probe::reachable(oidc.login.issuer()).await {
        tracing::warn!(
            issuer = oidc.login.issuer(),
            "login refused: the OpenID provider does not answer"
        );
        return Err(idp_unavailable());
    }
    match oidc.login.start(return_to).await {
        Ok((url, state)) => {
            let cookie = format!(
                "{LOGIN_COOKIE}={state}; Path=/auth/callback; HttpOnly; SameSite=Lax; Max-Age=600{}",
                if oidc.secure { "; Secure" } else { "" }
            );
            Ok(Reply::redirect(&url).cookie(cookie))
        }
        Err(e) => {
            tracing::warn!(error = %e, "login could not start");
            Err(idp_unavailable())
        }
    }
}

/// `GET /auth/callback?code&state`: finishes the login and starts a session.
pub async fn callback(
    gw: &Gateway,
    req: &Inbound,
    ctx: &mut RequestCtx,
) -> Result<Reply, GatewayError> {
    let oidc = oidc_or_404(gw)?;
    let q = req.query();
    if let Some(err) = query_param(q, "error") {
        tracing::info!(idp_error = %err, "the IdP refused the login");
        return Err(GatewayError::new(
            401,
            "GATEWAY::LOGIN_REFUSED",
            "The identity provider refused the sign-in.",
        ));
    }
    let (Some(code), Some(state)) = (query_param(q, "code"), query_param(q, "state")) else {
        return Err(GatewayError::new(
            400,
            "GATEWAY::LOGIN_STATE",
            "The sign-in callback is missing its code or state.",
        ));
    };
    let bound = cookie_value(req.headers(), LOGIN_COOKIE)
        .is_some_and(|c| bool::from(c.as_bytes().ct_eq(state.as_bytes())));
    if !bound {
        ctx.denied = true;
        return Err(GatewayError::new(
            400,
            "GATEWAY::LOGIN_STATE",
            "This sign-in was not started by this browser; start again.",
        ));
    }
    match oidc.login.finish(&code, &state).await {
        Ok((identity, sid, id_token, pending)) => {
            tracing::info!(principal.subject = %identity.subject, "signed in");
            ctx.principal.subject = identity.subject.clone();
            let (cookie, _) = oidc
                .sessions
                .create(identity, sid, Some(id_token))
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "the session could not be stored");
                    store_unavailable("The sign-in could not be recorded; retry shortly.")
                })?;
            let set = oidc.sessions.set_cookie(&cookie, oidc.secure);
            let clear =
                format!("{LOGIN_COOKIE}=; Path=/auth/callback; HttpOnly; SameSite=Lax; Max-Age=0");
            Ok(Reply::redirect(&pending.return_to)
                .cookie(set)
                .cookie(clear))
        }
        Err(e) => {
            tracing::warn!(error = %e, "sign-in failed");
            ctx.denied = true;
            Err(match e {
                LoginError::Unavailable(_) => idp_unavailable(),
                LoginError::State => GatewayError::new(
                    400,
                    "GATEWAY::LOGIN_STATE",
                    "This sign-in expired or was already used; start again.",
                ),
                _ => GatewayError::new(
                    401,
                    "GATEWAY::LOGIN_FAILED",
                    "The sign-in could not be verified; start again.",
                ),
            })
        }
    }
}

/// `POST /auth/backchannel-logout` (OIDC Back-Channel Logout 1.0): ends the sessions a
/// valid logout token names.
pub async fn backchannel_logout(
    gw: &Gateway,
    req: &mut Inbound,
    _ctx: &mut RequestCtx,
) -> Result<Reply, GatewayError> {
    let oidc = oidc_or_404(gw)?;
    let buf = req.read_body(MAX_LOGOUT_BODY).await.map_err(|e| match e {
        ReadError::TooLarge(_) => {
            GatewayError::new(413, "GATEWAY::PAYLOAD_TOO_LARGE", "Body too large.")
        }
        ReadError::Broken(_) => GatewayError::new(
            400,
            "GATEWAY::INVALID_BODY",
            "The request body could not be read.",
        ),
    })?;
    let invalid = || Reply::json_value(400, &serde_json::json!({"error": "invalid_request"}));
    let Some(token) = form_urlencoded::parse(&buf)
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
    else {
        return Ok(invalid());
    };
    match oidc.login.verify_logout_token(&token).await {
        Ok((sid, sub)) => {
            let by_subject = if sid.is_some() { None } else { sub.as_deref() };
            let n = oidc
                .sessions
                .end_matching(sid.as_deref(), by_subject)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "back-channel logout could not reach the store");
                    store_unavailable("The sessions could not be ended; retry.")
                })?;
            tracing::info!(sessions = n, "back-channel logout");
            Ok(Reply::json_value(200, &serde_json::json!({})))
        }
        Err(e) => {
            tracing::warn!(error = %e, "back-channel logout token refused");
            Ok(invalid())
        }
    }
}

/// `GET /auth/me`: the caller, their role and permissions, the roles a key of theirs may
/// carry (`assignableRoles`), and the session's CSRF token.
pub async fn me(gw: &Gateway, req: &Inbound, ctx: &mut RequestCtx) -> Result<Reply, GatewayError> {
    if ctx.principal.kind == PrincipalKind::Anonymous {
        return Err(GatewayError::unauthenticated());
    }
    let table = gw.policy.current();
    let role = ctx.role.clone().unwrap_or_default();
    let mine = table.permissions(&role);
    let permissions: Vec<&str> = mine.iter().map(|a| a.as_str()).collect();
    // The roles a personal key of this caller may carry (none allows more than theirs).
    let assignable: Vec<&str> = table
        .role_names()
        .into_iter()
        .filter(|r| table.permissions(r).iter().all(|a| mine.contains(a)))
        .collect();
    let csrf = match (&gw.oidc, ctx.principal.method) {
        (Some(o), AuthMethod::Session) => {
            match cookie_value(req.headers(), o.sessions.cookie_name()) {
                Some(c) => o.sessions.get(c).await.map(|s| s.csrf_token.clone()),
                None => None,
            }
        }
        _ => None,
    };
    let p = &ctx.principal;
    let body = serde_json::json!({
        "subject": p.subject,
        "team": p.team,
        "role": role,
        "permissions": permissions,
        "assignableRoles": assignable,
        "csrfToken": csrf,
        "authMethod": p.method.as_str(),
    });
    Ok(Reply::json_value(200, &body))
}

/// `POST /auth/logout` for a session (CSRF already checked): ends it and answers where
/// the browser goes next (the IdP's end-session endpoint when it has one).
pub async fn logout(
    gw: &Gateway,
    req: &Inbound,
    ctx: &mut RequestCtx,
) -> Result<Reply, GatewayError> {
    if ctx.principal.method != AuthMethod::Session {
        ctx.denied = true;
        return Err(GatewayError::unauthenticated());
    }
    let Some(oidc) = gw.oidc.as_deref() else {
        return Err(GatewayError::new(
            404,
            "GATEWAY::OIDC_DISABLED",
            "No sessions here.",
        ));
    };
    let headers = req.headers();
    let ended = match cookie_value(headers, oidc.sessions.cookie_name()) {
        Some(c) => oidc.sessions.end(c).await.map_err(|e| {
            tracing::warn!(error = %e, "logout could not reach the session store");
            store_unavailable("The session could not be ended everywhere; retry.")
        })?,
        None => None,
    };
    let post = oidc.login.config().post_logout_redirect.clone();
    let absolute_post = if post.starts_with('/') {
        let host = gatehouse_lifecycle::wire::request_host(
            headers.get(http::header::HOST).map(|h| h.as_bytes()),
        );
        // Never the client's `Host` unless it is one of the gateway's own names.
        format!("{}{post}", gw.hosts.origin(host, oidc.secure))
    } else {
        post.clone()
    };
    let target = oidc
        .login
        .logout_url(
            ended.as_ref().and_then(|s| s.id_token.as_deref()),
            &absolute_post,
        )
        .unwrap_or(post);
    let clear = oidc.sessions.clear_cookie(oidc.secure);
    Ok(Reply::json_value(200, &serde_json::json!({ "redirect": target })).cookie(clear))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_must_be_same_origin() {
        for ok in ["/console/", "/console/sandboxes/abc?x=1"] {
            assert!(safe_return_to(ok), "{ok}");
        }
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "javascript:alert(1)",
            "console",
            "/a\nb",
            "",
        ] {
            assert!(!safe_return_to(bad), "{bad}");
        }
    }
}
