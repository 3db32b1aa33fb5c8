//! Whether the OpenID provider answers, asked before `/auth/login` sends a browser to it.
//!
//! Discovery is cached, so without this check a login while the IdP is down would
//! redirect the browser to a dead address. A TCP connect to the issuer's host and port
//! (at most [`CONNECT_TIMEOUT`]) decides; the answer is reused for [`REUSE`] so a burst of
//! logins costs one probe. Never on the request path of API calls or sessions.

use std::sync::LazyLock;
use std::time::Duration;

/// Longest wait for the IdP's TCP handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one answer is reused.
pub const REUSE: Duration = Duration::from_secs(2);

static ANSWERS: LazyLock<moka::sync::Cache<String, bool>> = LazyLock::new(|| {
    moka::sync::Cache::builder()
        .max_capacity(16)
        .time_to_live(REUSE)
        .build()
});

/// `host:port` of an `http(s)://` issuer URL.
fn authority(issuer: &str) -> Option<String> {
    let uri: http::Uri = issuer.parse().ok()?;
    let host = uri.host()?;
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    Some(if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// Whether the IdP at `issuer` accepts connections (cached for [`REUSE`]).
pub async fn reachable(issuer: &str) -> bool {
    if let Some(up) = ANSWERS.get(issuer) {
        return up;
    }
    let up = match authority(issuer) {
        Some(addr) => matches!(
            tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await,
            Ok(Ok(_))
        ),
        None => false,
    };
    ANSWERS.insert(issuer.to_owned(), up);
    up
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_of_issuers() {
        assert_eq!(
            authority("http://127.0.0.1:9000").as_deref(),
            Some("127.0.0.1:9000")
        );
        assert_eq!(
            authority("https://idp.example/realms/x").as_deref(),
            Some("idp.example:443")
        );
        assert_eq!(
            authority("http://idp.example").as_deref(),
            Some("idp.example:80")
        );
        assert_eq!(authority("not a url"), None);
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_an_open_one_reachable() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = format!("http://{}", l.local_addr().unwrap());
        assert!(reachable(&open).await);
        let port = l.local_addr().unwrap().port();
        drop(l);
        let closed = format!("http://127.0.0.1:{port}/closed");
        assert!(!reachable(&closed).await);
    }
}
