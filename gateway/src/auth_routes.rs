//! The gateway's own routes: `/auth/*` (OIDC login, callback, logout, me, config,
//! back-channel logout), `/console/*` (the web console) and `/healthz`.
//! They are answered in `request_filter` and never forwarded.

use crate::console::CSP;
use crate::ctx::RequestCtx;
use crate::error::{respond, GatewayError};
use crate::proxy::Gateway;
use bytes::{Bytes, BytesMut};
use gatehouse_auth::oidc::session::cookie_value;
use gatehouse_auth::oidc::{OidcLogin, SessionStore};
use gatehouse_auth::PrincipalKind;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Cookie binding a login's `state` to the browser that started it.
pub const LOGIN_COOKIE: &str = "gatehouse_login";

/// OIDC state shared by the auth routes and the authenticators.
pub struct OidcRuntime {
    /// Login flow.
    pub login: Arc<OidcLogin>,
    /// Sessions.
    pub sessions: Arc<SessionStore>,
    /// `Secure` on cookies.
    pub secure: bool,
}

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

async fn redirect(
    session: &mut Session,
    ctx: &mut RequestCtx,
    to: &str,
    cookies: &[String],
) -> pingora::Result<bool> {
    let mut h = ResponseHeader::build(302, Some(4))?;
    h.insert_header("location", to)?;
    h.insert_header("cache-control", "no-store")?;
    h.insert_header("content-length", "0")?;
    h.insert_header("x-request-id", &ctx.request_id)?;
    for c in cookies {
        h.append_header("set-cookie", c)?;
    }
    ctx.status = Some(302);
    session.write_response_header(Box::new(h), true).await?;
    Ok(true)
}

async fn json_with_cookies(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: u16,
    body: serde_json::Value,
    cookies: &[String],
) -> pingora::Result<bool> {
    let body = Bytes::from(body.to_string());
    let mut h = ResponseHeader::build(status, Some(5))?;
    h.insert_header("content-type", "application/json")?;
    h.insert_header("content-length", body.len().to_string())?;
    h.insert_header("cache-control", "no-store")?;
    h.insert_header("x-request-id", &ctx.request_id)?;
    for c in cookies {
        h.append_header("set-cookie", c)?;
    }
    ctx.status = Some(status);
    session.write_response_header(Box::new(h), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(true)
}

impl Gateway {
    /// Answers `/auth/*`, `/console/*` and `/`; `Ok(None)` when the path is not ours.
    pub(crate) async fn own_route(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Option<bool>> {
        let path = ctx.path.clone();
        let method = session.req_header().method.as_str().to_owned();
        let r = match (method.as_str(), path.as_str()) {
            ("GET", "/") => redirect(session, ctx, "/console/", &[]).await?,
            ("GET" | "HEAD", p) if p == "/console" || p.starts_with("/console/") => {
                self.console_file(session, ctx, p).await?
            }
            ("GET", "/auth/config") => {
                let body = serde_json::json!({
                    "oidc": self.oidc.is_some(),
                    "loginUrl": "/auth/login",
                    "mode": self.mode_name,
                });
                json_with_cookies(session, ctx, 200, body, &[]).await?
            }
            ("GET", "/auth/login") => self.login(session, ctx).await?,
            ("GET", "/auth/callback") => self.callback(session, ctx).await?,
            ("POST", "/auth/backchannel-logout") => self.backchannel_logout(session, ctx).await?,
            // /auth/me and /auth/logout need the caller: answered after authentication.
            ("GET", "/auth/me") | ("POST", "/auth/logout") => return Ok(None),
            (_, p) if p.starts_with("/auth/") || p == "/auth" => {
                let err = GatewayError::new(
                    404,
                    "GATEWAY::UNKNOWN_ROUTE",
                    format!("No route {method} {p}."),
                );
                respond(session, ctx, err).await?
            }
            _ => return Ok(None),
        };
        Ok(Some(r))
    }

    async fn console_file(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        path: &str,
    ) -> pingora::Result<bool> {
        // The canonical path drops trailing slashes; only a literal `/console` redirects.
        if session.req_header().uri.path() == "/console" {
            return redirect(session, ctx, "/console/", &[]).await;
        }
        let rel = path.trim_start_matches("/console/");
        let Some(asset) = self.console.get(rel) else {
            let msg = if self.console.is_empty() {
                "The console is not built (run `npm ci && npm run build` in console/)."
            } else {
                "No such console file."
            };
            return respond(
                session,
                ctx,
                GatewayError::new(404, "GATEWAY::NOT_FOUND", msg),
            )
            .await;
        };
        let head = session.req_header().method == http::Method::HEAD;
        let mut h = ResponseHeader::build(200, Some(8))?;
        h.insert_header("content-type", asset.content_type)?;
        h.insert_header("content-length", asset.body.len().to_string())?;
        h.insert_header("cache-control", asset.cache_control)?;
        h.insert_header("content-security-policy", CSP)?;
        h.insert_header("x-content-type-options", "nosniff")?;
        h.insert_header("referrer-policy", "same-origin")?;
        h.insert_header("x-frame-options", "DENY")?;
        h.insert_header("x-request-id", &ctx.request_id)?;
        ctx.status = Some(200);
        session.write_response_header(Box::new(h), head).await?;
        if !head {
            session
                .write_response_body(Some(asset.body.clone()), true)
                .await?;
        }
        Ok(true)
    }

    fn oidc_or_404(&self) -> Result<&OidcRuntime, GatewayError> {
        self.oidc.as_deref().ok_or_else(|| {
            GatewayError::new(
                404,
                "GATEWAY::OIDC_DISABLED",
                "OpenID Connect login is not configured.",
            )
        })
    }

    async fn login(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<bool> {
        let oidc = match self.oidc_or_404() {
            Ok(o) => o,
            Err(e) => return respond(session, ctx, e).await,
        };
        let return_to = query_param(session.req_header().uri.query(), "return_to")
            .unwrap_or_else(|| "/console/".into());
        if !safe_return_to(&return_to) {
            ctx.denied = true;
            let err = GatewayError::new(
                400,
                "GATEWAY::INVALID_RETURN_TO",
                "return_to must be a same-origin relative path.",
            );
            return respond(session, ctx, err).await;
        }
        match oidc.login.start(return_to).await {
            Ok((url, state)) => {
                let cookie = format!(
                    "{LOGIN_COOKIE}={state}; Path=/auth/callback; HttpOnly; SameSite=Lax; Max-Age=600{}",
                    if oidc.secure { "; Secure" } else { "" }
                );
                redirect(session, ctx, &url, &[cookie]).await
            }
            Err(e) => {
                tracing::warn!(request.id = %ctx.request_id, error = %e, "login could not start");
                let err = GatewayError::new(
                    502,
                    "GATEWAY::IDP_UNAVAILABLE",
                    "The identity provider is unreachable; retry later.",
                );
                respond(session, ctx, err).await
            }
        }
    }

    async fn callback(&self, session: &mut Session, ctx: &mut RequestCtx) -> pingora::Result<bool> {
        let oidc = match self.oidc_or_404() {
            Ok(o) => o,
            Err(e) => return respond(session, ctx, e).await,
        };
        let q = session.req_header().uri.query().map(str::to_owned);
        if let Some(err) = query_param(q.as_deref(), "error") {
            tracing::info!(request.id = %ctx.request_id, idp_error = %err, "the IdP refused the login");
            let e = GatewayError::new(
                401,
                "GATEWAY::LOGIN_REFUSED",
                "The identity provider refused the sign-in.",
            );
            return respond(session, ctx, e).await;
        }
        let (Some(code), Some(state)) = (
            query_param(q.as_deref(), "code"),
            query_param(q.as_deref(), "state"),
        ) else {
            let e = GatewayError::new(
                400,
                "GATEWAY::LOGIN_STATE",
                "The sign-in callback is missing its code or state.",
            );
            return respond(session, ctx, e).await;
        };
        let bound = cookie_value(&session.req_header().headers, LOGIN_COOKIE)
            .is_some_and(|c| bool::from(c.as_bytes().ct_eq(state.as_bytes())));
        if !bound {
            ctx.denied = true;
            let e = GatewayError::new(
                400,
                "GATEWAY::LOGIN_STATE",
                "This sign-in was not started by this browser; start again.",
            );
            return respond(session, ctx, e).await;
        }
        match oidc.login.finish(&code, &state).await {
            Ok((identity, sid, id_token, pending)) => {
                tracing::info!(request.id = %ctx.request_id, principal.subject = %identity.subject, "signed in");
                ctx.principal.subject = identity.subject.clone();
                let (cookie, _) = oidc.sessions.create(identity, sid, Some(id_token)).await;
                let set = oidc.sessions.set_cookie(&cookie, oidc.secure);
                let clear = format!(
                    "{LOGIN_COOKIE}=; Path=/auth/callback; HttpOnly; SameSite=Lax; Max-Age=0"
                );
                redirect(session, ctx, &pending.return_to, &[set, clear]).await
            }
            Err(e) => {
                tracing::warn!(request.id = %ctx.request_id, error = %e, "sign-in failed");
                ctx.denied = true;
                let err = match e {
                    gatehouse_auth::oidc::LoginError::Unavailable(_) => GatewayError::new(
                        502,
                        "GATEWAY::IDP_UNAVAILABLE",
                        "The identity provider is unreachable; retry later.",
                    ),
                    gatehouse_auth::oidc::LoginError::State => GatewayError::new(
                        400,
                        "GATEWAY::LOGIN_STATE",
                        "This sign-in expired or was already used; start again.",
                    ),
                    _ => GatewayError::new(
                        401,
                        "GATEWAY::LOGIN_FAILED",
                        "The sign-in could not be verified; start again.",
                    ),
                };
                respond(session, ctx, err).await
            }
        }
    }

    async fn backchannel_logout(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        let oidc = match self.oidc_or_404() {
            Ok(o) => o,
            Err(e) => return respond(session, ctx, e).await,
        };
        let mut buf = BytesMut::new();
        while let Ok(Some(chunk)) = session.read_request_body().await {
            if buf.len() + chunk.len() > 64 * 1024 {
                return respond(
                    session,
                    ctx,
                    GatewayError::new(413, "GATEWAY::PAYLOAD_TOO_LARGE", "Body too large."),
                )
                .await;
            }
            buf.extend_from_slice(&chunk);
        }
        let token = form_urlencoded::parse(&buf)
            .find(|(k, _)| k == "logout_token")
            .map(|(_, v)| v.into_owned());
        let Some(token) = token else {
            return json_with_cookies(
                session,
                ctx,
                400,
                serde_json::json!({"error": "invalid_request"}),
                &[],
            )
            .await;
        };
        match oidc.login.verify_logout_token(&token).await {
            Ok((sid, sub)) => {
                let n = oidc
                    .sessions
                    .end_matching(
                        sid.as_deref(),
                        if sid.is_some() { None } else { sub.as_deref() },
                    )
                    .await;
                tracing::info!(request.id = %ctx.request_id, sessions = n, "back-channel logout");
                json_with_cookies(session, ctx, 200, serde_json::json!({}), &[]).await
            }
            Err(e) => {
                tracing::warn!(request.id = %ctx.request_id, error = %e, "back-channel logout token refused");
                json_with_cookies(
                    session,
                    ctx,
                    400,
                    serde_json::json!({"error": "invalid_request"}),
                    &[],
                )
                .await
            }
        }
    }

    /// `GET /auth/me` for an authenticated caller.
    pub(crate) async fn me(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        if ctx.principal.kind == PrincipalKind::Anonymous {
            return respond(session, ctx, GatewayError::unauthenticated()).await;
        }
        let table = self.policy.current();
        let role = ctx.role.clone().unwrap_or_default();
        let permissions: Vec<&str> = table
            .permissions(&role)
            .iter()
            .map(|a| a.as_str())
            .collect();
        let csrf = match (&self.oidc, ctx.principal.method) {
            (Some(o), gatehouse_auth::AuthMethod::Session) => {
                match cookie_value(&session.req_header().headers, o.sessions.cookie_name()) {
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
            "csrfToken": csrf,
            "authMethod": p.method.as_str(),
        });
        json_with_cookies(session, ctx, 200, body, &[]).await
    }

    /// `POST /auth/logout` for a session (CSRF already checked).
    pub(crate) async fn logout(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        let Some(oidc) = self.oidc.as_deref() else {
            return respond(
                session,
                ctx,
                GatewayError::new(404, "GATEWAY::OIDC_DISABLED", "No sessions here."),
            )
            .await;
        };
        let ended = match cookie_value(&session.req_header().headers, oidc.sessions.cookie_name()) {
            Some(c) => oidc.sessions.end(c).await,
            None => None,
        };
        let post = oidc.login.config().post_logout_redirect.clone();
        let absolute_post = if post.starts_with('/') {
            let host = session
                .req_header()
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            let scheme = if oidc.secure { "https" } else { "http" };
            format!("{scheme}://{host}{post}")
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
        json_with_cookies(
            session,
            ctx,
            200,
            serde_json::json!({ "redirect": target }),
            &[clear],
        )
        .await
    }

    /// CSRF defence for session cookies: mutating requests must carry the session's token
    /// in `X-CSRF-Token` and a same-origin `Origin`.
    pub(crate) async fn check_csrf(&self, session: &Session) -> Result<(), GatewayError> {
        let req = session.req_header();
        if matches!(
            req.method,
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
        ) {
            return Ok(());
        }
        let forbidden = |m: &str| GatewayError::new(403, "GATEWAY::CSRF", m.to_string());
        let Some(oidc) = self.oidc.as_deref() else {
            return Ok(());
        };
        let Some(cookie) = cookie_value(&req.headers, oidc.sessions.cookie_name()) else {
            return Ok(());
        };
        let Some(s) = oidc.sessions.get(cookie).await else {
            return Err(forbidden("The session has ended."));
        };
        let sent = req
            .headers
            .get("x-csrf-token")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if sent.is_empty() || !bool::from(sent.ct_eq(s.csrf_token.as_bytes())) {
            return Err(forbidden("Missing or wrong X-CSRF-Token for this session."));
        }
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let origin_ok = match req
            .headers
            .get(http::header::ORIGIN)
            .and_then(|o| o.to_str().ok())
        {
            Some(origin) => {
                let o = origin
                    .trim_start_matches("https://")
                    .trim_start_matches("http://");
                o == host
                    || self
                        .public_url
                        .as_deref()
                        .is_some_and(|p| p.trim_end_matches('/') == origin)
            }
            None => false,
        };
        if !origin_ok {
            return Err(forbidden(
                "Cross-origin request refused: Origin must match this gateway.",
            ));
        }
        Ok(())
    }
}

/// Removes the gateway's own cookies from a `Cookie` header value; `None` when nothing is left.
pub fn strip_own_cookies(value: &str, own: &[&str]) -> Option<String> {
    let kept: Vec<&str> = value
        .split(';')
        .map(str::trim)
        .filter(|kv| !kv.is_empty())
        .filter(|kv| {
            let name = kv.split('=').next().unwrap_or("");
            !own.contains(&name)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
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

    #[test]
    fn own_cookies_are_stripped() {
        let own = ["gatehouse_session", "gatehouse_login"];
        assert_eq!(
            strip_own_cookies("a=1; gatehouse_session=x; b=2", &own).as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(strip_own_cookies("gatehouse_session=x", &own), None);
    }
}
