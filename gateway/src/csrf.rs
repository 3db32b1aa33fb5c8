//! CSRF defence for session cookies: a mutating request authenticated by the session
//! cookie must carry that session's token in `X-CSRF-Token` and a same-origin `Origin`.
//! API keys and bearer tokens are not sent by browsers on their own, so they need neither.

use crate::error::GatewayError;
use crate::hosts::{origin_of, PublicHosts};
use crate::state::OidcRuntime;
use gatehouse_authn::oidc::session::cookie_value;

use subtle::ConstantTimeEq;

/// Checks a session-authenticated request; safe methods always pass.
pub async fn check(
    req: &http::request::Parts,
    oidc: Option<&OidcRuntime>,
    hosts: &PublicHosts,
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
    let scheme = if oidc.secure { "https" } else { "http" };
    let origin_ok = req
        .headers
        .get(http::header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_some_and(|origin| same_origin(origin, scheme, host, hosts));
    if !origin_ok {
        return Err(forbidden(
            "Cross-origin request refused: Origin must match this gateway.",
        ));
    }
    Ok(())
}

/// Whether `origin` is exactly this gateway's: `{scheme}://{Host}` for an allowed `Host`
/// (scheme, host and port all compared), or the origin of `public_url`. An Origin
/// without a scheme, with another scheme, a path or another port does not match.
pub fn same_origin(origin: &str, scheme: &str, host: &str, hosts: &PublicHosts) -> bool {
    let own = origin
        .strip_prefix(scheme)
        .and_then(|r| r.strip_prefix("://"))
        .is_some_and(|h| h.eq_ignore_ascii_case(host) && hosts.is_allowed(host));
    own || hosts
        .public_url()
        .is_some_and(|p| origin_of(p).eq_ignore_ascii_case(origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_must_match_exactly() {
        let hosts = PublicHosts::new(Some("https://gw.example"), &[], "127.0.0.1:8080");
        let ok = |o: &str| same_origin(o, "http", "127.0.0.1:8080", &hosts);
        assert!(ok("http://127.0.0.1:8080"));
        assert!(ok("https://gw.example"));
        for bad in [
            "127.0.0.1:8080",
            "https://127.0.0.1:8080",
            "ftp://127.0.0.1:8080",
            "http://127.0.0.1:8081",
            "http://127.0.0.1",
            "http://127.0.0.1:8080/x",
            "http://gw.example",
            "https://gw.example:443",
            "null",
            "",
        ] {
            assert!(!ok(bad), "{bad}");
        }
        // A Host the gateway does not answer to is not its origin, even when they match.
        assert!(!same_origin(
            "http://evil.example",
            "http",
            "evil.example",
            &hosts
        ));
    }
}
