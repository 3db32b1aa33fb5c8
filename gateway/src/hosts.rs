//! [`PublicHosts`]: the names the gateway answers to, so a URL it builds for a client
//! (server-proxy endpoints, the post-logout redirect) never reflects a `Host` header it
//! does not know. The base is `server.public_url` when set; otherwise the request's
//! `Host` when it is the listen address or one of `server.allowed_hosts`; otherwise the
//! first allowed host (the listen address by default).

use std::net::SocketAddr;

/// The gateway's public names.
#[derive(Debug, Clone)]
pub struct PublicHosts {
    /// `server.public_url` without a trailing slash.
    public_url: Option<String>,
    /// Allowed `host[:port]` values, lowercase; never empty.
    allowed: Vec<String>,
}

impl PublicHosts {
    /// From the config: `public_url`, `allowed_hosts` and the listen address.
    pub fn new(public_url: Option<&str>, allowed_hosts: &[String], listen: &str) -> Self {
        let mut allowed: Vec<String> = allowed_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let listen_host = match listen.parse::<SocketAddr>() {
            Ok(a) if a.ip().is_unspecified() => format!("localhost:{}", a.port()),
            Ok(a) => a.to_string(),
            Err(_) => listen.to_ascii_lowercase(),
        };
        allowed.push(listen_host);
        Self {
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
            allowed,
        }
    }

    /// Whether `host` (a `Host` header value) is one of the allowed names.
    pub fn is_allowed(&self, host: &str) -> bool {
        self.allowed.iter().any(|a| a.eq_ignore_ascii_case(host))
    }

    /// The base for URLs built for a client: `public_url`, else the request's `Host` if
    /// allowed, else the first allowed host. No scheme unless `public_url` has one.
    pub fn base<'a>(&'a self, request_host: &'a str) -> &'a str {
        if let Some(u) = &self.public_url {
            return u;
        }
        if self.is_allowed(request_host) {
            return request_host;
        }
        self.allowed.first().map_or("localhost", String::as_str)
    }

    /// The absolute origin (`scheme://host[:port]`) for a client of `request_host`.
    pub fn origin(&self, request_host: &str, secure: bool) -> String {
        match &self.public_url {
            Some(u) => origin_of(u).to_owned(),
            None => {
                let scheme = if secure { "https" } else { "http" };
                format!("{scheme}://{}", self.base(request_host))
            }
        }
    }

    /// `public_url`, as configured.
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }
}

/// The origin part of an absolute URL (`https://h:1/x` gives `https://h:1`).
pub fn origin_of(url: &str) -> &str {
    let rest_at = url.find("://").map_or(0, |i| i + 3);
    match url[rest_at..].find('/') {
        Some(i) => &url[..rest_at + i],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_hosts_are_never_reflected() {
        let h = PublicHosts::new(None, &["gw.example:8443".into()], "127.0.0.1:8080");
        assert_eq!(h.base("gw.example:8443"), "gw.example:8443");
        assert_eq!(h.base("127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(h.base("evil.example"), "gw.example:8443");
        assert_eq!(h.origin("evil.example", true), "https://gw.example:8443");
        let h = PublicHosts::new(None, &[], "0.0.0.0:8080");
        assert_eq!(h.base("evil.example"), "localhost:8080");
        let h = PublicHosts::new(Some("https://gw.example/"), &[], "0.0.0.0:8080");
        assert_eq!(h.base("evil.example"), "https://gw.example");
        assert_eq!(h.origin("evil.example", false), "https://gw.example");
        assert_eq!(
            origin_of("https://gw.example:1/x/y"),
            "https://gw.example:1"
        );
    }
}
