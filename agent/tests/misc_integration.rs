//! Metrics, the egress stub and the port proxy over real HTTP against the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Agent, TOKEN};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn metrics_and_watch() {
    let a = Agent::start(&[]).await;
    let m: Value = a
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for k in [
        "cpu_count",
        "cpu_used_pct",
        "mem_total_mib",
        "mem_used_mib",
        "timestamp",
    ] {
        assert!(m[k].is_number(), "{k} in {m}");
    }
    assert!(m["cpu_count"].as_f64().unwrap() > 0.0);
    assert!(m["mem_total_mib"].as_f64().unwrap() >= m["mem_used_mib"].as_f64().unwrap());
    let resp = a.get("/metrics/watch").send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut stream = resp.bytes_stream();
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_slice(first.trim_ascii()).unwrap();
    assert!(v["cpu_used_pct"].is_number());
}

#[tokio::test]
async fn egress_stub_reads_allow_all_and_refuses_updates() {
    let a = Agent::start(&[]).await;
    for h in ["OPENSANDBOX-EGRESS-AUTH", "X-EXECD-ACCESS-TOKEN"] {
        let p: Value = a
            .http
            .get(a.egress_url("/policy"))
            .header(h, TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(p["status"], "ok");
        assert_eq!(p["policy"]["defaultAction"], "allow");
    }
    let r = a.http.get(a.egress_url("/policy")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = a
        .http
        .patch(a.egress_url("/policy"))
        .header("OPENSANDBOX-EGRESS-AUTH", TOKEN)
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 501);
    assert!(r.text().await.unwrap().contains("not supported"));
    let r = a
        .http
        .get(a.egress_url("/credential-vault"))
        .header("OPENSANDBOX-EGRESS-AUTH", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 501);
    // Through execd's proxy route, as the upstream server's endpoint shape does.
    let p: Value = a
        .get(&format!("/proxy/{}/policy", a.egress_port))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["mode"], "allow_all");
}

/// A one-shot HTTP server echoing the request head back, to see what the proxy forwards.
async fn echo_server() -> (u16, tokio::task::JoinHandle<String>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let h = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let body = format!("seen:{}", head.lines().next().unwrap_or(""));
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-upstream: yes\r\n\r\n{body}",
            body.len()
        );
        s.write_all(resp.as_bytes()).await.unwrap();
        head
    });
    (port, h)
}

#[tokio::test]
async fn proxy_forwards_to_other_ports_without_the_token() {
    let a = Agent::start(&[]).await;
    let (port, seen) = echo_server().await;
    let r = a
        .get(&format!("/proxy/{port}/app/x?q=1"))
        .header("x-custom", "v")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-upstream"], "yes");
    assert_eq!(r.text().await.unwrap(), "seen:GET /app/x?q=1 HTTP/1.1");
    let head = seen.await.unwrap().to_ascii_lowercase();
    assert!(head.contains("x-custom: v"));
    assert!(
        !head.contains("x-execd-access-token"),
        "token must not reach in-sandbox apps"
    );
    assert!(!head.contains(TOKEN));
    // Self-proxy (the upstream endpoint shape for port 44772) is served internally.
    let r = a
        .get(&format!("/proxy/{}/ping", a.port))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Nothing listening: 502 in the error shape.
    let closed = common::free_port();
    let r = a.get(&format!("/proxy/{closed}/")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["code"], "BAD_GATEWAY");
}

/// A one-shot server that accepts a WebSocket-style upgrade and then echoes bytes.
async fn upgrade_echo_server() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).await.unwrap();
            head.push(b[0]);
        }
        s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.unwrap();
        s.write_all(&buf[..n]).await.unwrap();
    });
    port
}

#[tokio::test]
async fn proxy_passes_protocol_upgrades() {
    let a = Agent::start(&[]).await;
    let port = upgrade_echo_server().await;
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", a.port))
        .await
        .unwrap();
    let req = format!(
        "GET /proxy/{port}/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-EXECD-ACCESS-TOKEN: {TOKEN}\r\n\r\n"
    );
    c.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    assert!(
        String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    c.write_all(b"hello-upgraded").await.unwrap();
    let mut buf = [0u8; 14];
    tokio::time::timeout(std::time::Duration::from_secs(5), c.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"hello-upgraded");
}
