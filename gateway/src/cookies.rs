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
            // Trimmed as lenient servers (Go, Python) read names: `name =v` is `name`.
            let name = kv.split('=').next().unwrap_or("").trim();
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

    /// Found by the `cookie_header` fuzz target: a space before `=` kept the session
    /// cookie, which Go's and Python's cookie parsers then read as `gatehouse_session`.
    #[test]
    fn own_cookies_are_stripped_whatever_the_spacing() {
        let own = ["gatehouse_session", "gatehouse_login"];
        assert_eq!(
            strip_own_cookies("gatehouse_session =x; gatehouse_login\t= y; a=1", &own).as_deref(),
            Some("a=1")
        );
    }
}
