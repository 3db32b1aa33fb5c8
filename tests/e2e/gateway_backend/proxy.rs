//! The server proxy through the gateway and the backend to the sandbox: endpoints point
//! at the gateway, credentials are required, large bodies stream both ways and WebSocket
//! upgrades pass.

use super::TwoTeams;
use gatehouse_tests::api::{host_port, send, wait_ok};
use gatehouse_tests::principals::{alice, connect_trusted};
use gatehouse_tests::sandbox::{create_id, script_body, wait_state, HELLO};
use gatehouse_tests::stacks::KeyedStack;
use gatehouse_tests::wait_for;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Endpoints via the server proxy point at the gateway, the proxy works through it, and
/// anonymous clients cannot use the proxy route (upstream leaves it open).
#[tokio::test]
async fn server_proxy_endpoints_point_at_the_gateway() {
    let t = TwoTeams::running().await;
    let a1 = &t.a1;
    let (s, v) = send(
        &alice(),
        "GET",
        &t.sandbox(a1, "/endpoints/8080?use_server_proxy=true"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let host = host_port(&t.st.gw.url);
    assert_eq!(
        v["endpoint"],
        format!("{host}/v1/sandboxes/{a1}/proxy/8080")
    );
    let index = t.sandbox(a1, "/proxy/8080/index.html");
    let page = wait_ok(&alice(), &index).await.unwrap();
    assert!(page.as_str().unwrap().contains(HELLO));
    let (s, _) = send(&reqwest::Client::new(), "GET", &index, None).await;
    assert_eq!(s, 401);
}

/// Serves a 2 MiB file at `/big`, a CGI byte counter at `/cgi-bin/sink` (httpd on 8080),
/// and an upgrade-then-echo responder on port 44772.
const STREAMING_SCRIPT: &str = concat!(
    "mkdir -p /tmp/www; echo 0123456789abcdef > /tmp/www/big; i=0; ",
    "while [ $i -lt 17 ]; do cat /tmp/www/big /tmp/www/big > /tmp/www/g; cat /tmp/www/g > /tmp/www/big; i=$((i+1)); done; ",
    "printf '%s\\n' 'while read -r l; do case \"$l\" in \"\"|\"$(printf \"\\r\")\") break;; esac; done' ",
    "'printf \"HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n\\r\\n\"' 'exec cat' > /tmp/ws.sh; ",
    "mkdir -p /tmp/www/cgi-bin; printf '%s\n' '#!/bin/sh' 'n=$(wc -c)' 'printf \"Content-Type: text/plain\\r\\n\\r\\nreceived %s bytes\\n\" $n' > /tmp/www/cgi-bin/sink; ",
    "chmod +x /tmp/www/cgi-bin/sink; ",
    "nc -ll -p 44772 -e sh /tmp/ws.sh & exec httpd -f -p 8080 -h /tmp/www"
);

/// A stack with alice's Running [`STREAMING_SCRIPT`] sandbox whose httpd answers (so its
/// setup is done and the echo responder listens); its id.
async fn streaming_sandbox() -> (KeyedStack, String) {
    let st = KeyedStack::start().await.unwrap();
    let id = create_id(&alice(), &st.gw.url, &script_body(STREAMING_SCRIPT))
        .await
        .unwrap();
    wait_state(&alice(), &st.gw.url, &id, "Running")
        .await
        .unwrap();
    let big = st.gw.at(&format!("/v1/sandboxes/{id}/proxy/8080/big"));
    wait_for("the sandbox's httpd", Duration::from_secs(30), || async {
        let r = alice().head(&big).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await
    .unwrap();
    (st, id)
}

/// A 2 MiB download streams through unchanged.
#[tokio::test]
async fn proxy_streams_a_large_download() {
    let (st, id) = streaming_sandbox().await;
    let expected = 17usize << 17;
    let big = wait_for("the big file", Duration::from_secs(30), || async {
        let r = alice()
            .get(st.gw.at(&format!("/v1/sandboxes/{id}/proxy/8080/big")))
            .send()
            .await
            .ok()?;
        if r.status() != 200 {
            return None;
        }
        let b = r.bytes().await.ok()?;
        (b.len() == expected).then_some(b)
    })
    .await
    .unwrap();
    assert!(big.starts_with(b"0123456789abcdef\n0123456789abcdef\n"));
}

/// A 3 MiB upload is not held to the API's body limit on the proxy route: the sandbox
/// receives every byte.
#[tokio::test]
async fn proxy_passes_a_large_upload() {
    let (st, id) = streaming_sandbox().await;
    let sink = st
        .gw
        .at(&format!("/v1/sandboxes/{id}/proxy/8080/cgi-bin/sink"));
    let r = alice()
        .post(&sink)
        .body(vec![b'x'; 3 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap().trim(),
        format!("received {} bytes", 3 << 20)
    );
}

/// A WebSocket-style upgrade, from a trusted-proxy user, echoed by the sandbox.
#[tokio::test]
async fn proxy_passes_websocket_upgrades() {
    let (st, id) = streaming_sandbox().await;
    let mut stream = connect_trusted(&st.gw.url).await;
    let host = host_port(&st.gw.url);
    let req = format!(
        "GET /v1/sandboxes/{id}/proxy/44772/ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-OpenSandbox-User: alice\r\n\
         X-OpenSandbox-Team: team-a\r\nX-OpenSandbox-Roles: operator\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "connection closed during the handshake: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
        .write_all(b"ping through the gateway\n")
        .await
        .unwrap();
    let mut echo = vec![0u8; 25];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut echo))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echo, b"ping through the gateway\n");
}
