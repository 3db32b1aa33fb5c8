//! Who the gateway tests act as: users behind the trusted proxy (identity headers), API
//! keys, and raw HTTP/1.1 from the trusted proxy for paths a client library would
//! normalize away.
//!
//! The built-in users match the dev IdP's: `alice` (team-a, operator), `bob` (team-a, no
//! role header, so the default `read_only`) and `carol` (team-b, operator).

#![allow(
    clippy::expect_used,
    reason = "a client that cannot be built fails the test"
)]

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The trusted proxy the tests pretend to be; 127.0.0.1 is an untrusted client.
pub const TRUSTED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Gateway config trusting identity headers from [`TRUSTED`].
pub const TRUSTED_PROXY_SECTION: &str =
    "[auth.trusted_header]\ntrusted_proxies = [\"127.0.0.2/32\"]\n";

fn header(v: &str) -> HeaderValue {
    HeaderValue::from_str(v).expect("a valid header value")
}

/// A client on [`TRUSTED`] that sends `X-OpenSandbox-User` and, when given,
/// `X-OpenSandbox-Team` and `X-OpenSandbox-Roles`.
pub fn user(name: &str, team: Option<&str>, roles: Option<&str>) -> reqwest::Client {
    let mut h = HeaderMap::new();
    h.insert("X-OpenSandbox-User", header(name));
    if let Some(t) = team {
        h.insert("X-OpenSandbox-Team", header(t));
    }
    if let Some(r) = roles {
        h.insert("X-OpenSandbox-Roles", header(r));
    }
    reqwest::Client::builder()
        .local_address(TRUSTED)
        .default_headers(h)
        .build()
        .expect("a client")
}

/// alice: team-a, operator.
pub fn alice() -> reqwest::Client {
    user("alice", Some("team-a"), Some("operator"))
}

/// bob: team-a, no role header (read_only).
pub fn bob() -> reqwest::Client {
    user("bob", Some("team-a"), None)
}

/// carol: team-b, operator.
pub fn carol() -> reqwest::Client {
    user("carol", Some("team-b"), Some("operator"))
}

/// A client from [`TRUSTED`] with no identity headers.
pub fn trusted_nobody() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(TRUSTED)
        .build()
        .expect("a client")
}

/// A client (untrusted address) that sends `OPEN-SANDBOX-API-KEY: key`.
pub fn keyed(key: &str) -> reqwest::Client {
    let mut h = HeaderMap::new();
    h.insert("OPEN-SANDBOX-API-KEY", header(key));
    reqwest::Client::builder()
        .default_headers(h)
        .build()
        .expect("a client")
}

/// A TCP connection from [`TRUSTED`] to the `http://host:port` base URL `url`.
pub async fn connect_trusted(url: &str) -> TcpStream {
    let addr: SocketAddr = crate::api::host_port(url)
        .parse()
        .expect("a host:port base URL");
    let sock = tokio::net::TcpSocket::new_v4().expect("a socket");
    sock.bind((TRUSTED, 0).into())
        .expect("bind the trusted address");
    sock.connect(addr).await.expect("connect")
}

/// Sends a request with the path exactly as written (HTTP clients normalize `..` and
/// `%2e%2e` themselves, which would hide what the gateway does), as a trusted-proxy user
/// of `team` with `roles`; returns the status and the JSON object in the body (or null).
pub async fn raw(
    url: &str,
    method: &str,
    path: &str,
    (user, team, roles): (&str, &str, &str),
) -> (u16, Value) {
    let mut stream = connect_trusted(url).await;
    let host = crate::api::host_port(url);
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nX-OpenSandbox-User: {user}\r\nX-OpenSandbox-Team: {team}\r\n\
         X-OpenSandbox-Roles: {roles}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf);
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    // Chunked bodies: take the JSON object inside.
    let json = body
        .find('{')
        .and_then(|a| body.rfind('}').map(|b| &body[a..=b]))
        .unwrap_or("");
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}
