//! The gateway's own cookies: their names, and removing them from what is forwarded, so
//! a session id never reaches the backend or a sandbox.

pub use gatehouse_authn::oidc::session::cookie_value;

/// Cookie binding a login's `state` to the browser that started it.
pub const LOGIN_COOKIE: &str = "gatehouse_login";

/// Removes the gateway's own cookies from a `Cookie` header value; `None` when nothing is
/// left.
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
    fn own_cookies_are_stripped() {
        let own = ["gatehouse_session", "gatehouse_login"];
        assert_eq!(
            strip_own_cookies("a=1; gatehouse_session=x; b=2", &own).as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(strip_own_cookies("gatehouse_session=x", &own), None);
    }
}
