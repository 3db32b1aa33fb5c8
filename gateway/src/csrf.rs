//! CSRF defence for session cookies: a mutating request authenticated by the session
//! cookie must carry that session's token in `X-CSRF-Token` and a same-origin `Origin`.
//! API keys and bearer tokens are not sent by browsers on their own, so they need neither.

use crate::error::GatewayError;
use crate::state::OidcRuntime;
use gatehouse_authn::oidc::session::cookie_value;

use subtle::ConstantTimeEq;

/// Checks a session-authenticated request; safe methods always pass.
pub async fn check(
    req: &http::request::Parts,
    oidc: Option<&OidcRuntime>,
    public_url: Option<&str>,
) -> Result<(), GatewayError> {
    if matches!(
        req.method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    ) {
        return Ok(());
    }
    let forbidden = |m: &str| GatewayError::new(403, "GATEWAY::CSRF", m.to_string());
    let Some(oidc) = oidc else {
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
    let host = gatehouse_lifecycle::wire::request_host(
        req.headers.get(http::header::HOST).map(|h| h.as_bytes()),
    );
    let origin_ok = match req
        .headers
        .get(http::header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    {
        Some(origin) => {
            let o = origin
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            o == host || public_url.is_some_and(|p| p.trim_end_matches('/') == origin)
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
