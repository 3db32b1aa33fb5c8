//! The adversarial suite: what an attacker on the network, a sandbox's own content or
//! another team's user can try against the running stack, each with the outcome it must
//! get. Real processes throughout (gateway, backend on the real Docker engine, the dev
//! IdP):
//! - `findings`: one test per finding of the adversarial review (issue 11), each failing
//!   on the gateway before its fix;
//! - `corpus`: a generated corpus of more than 2,000 requests over every attack class
//!   (path encodings, smuggling and framing over raw TCP, header spoofing, JWT forgeries,
//!   cookie tampering, CSRF, open redirects, scope escapes on every per-sandbox route,
//!   oversized and malformed bodies, sandbox origins); any request that reads or changes what it must not
//!   fails the suite, which prints totals per class;
//! - `origin`: sandbox content on its own origin, entered by a single-use hand-off;
//! - `browser`: a hostile sandbox page in Chromium cannot set or read the console's
//!   cookies or call its API as the signed-in viewer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "adversarial/browser.rs"]
mod browser;
#[path = "adversarial/corpus.rs"]
mod corpus;
#[path = "adversarial/findings.rs"]
mod findings;
#[path = "adversarial/origin.rs"]
mod origin;

use gatehouse_tests::principals::{alice, carol, connect_trusted};
use gatehouse_tests::sandbox::{create_id, httpd_body, script_body, wait_state};
use gatehouse_tests::stacks::KeyedStack;
use gatehouse_tests::wait_for;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A sandbox answering every request on port 8080 with the request head it received as
/// the body, and with headers a hostile page would send: cookies named like the
/// gateway's, CORS opening the origin to anyone, `Clear-Site-Data`, a loosened
/// `X-Content-Type-Options`.
const ECHO_SCRIPT: &str = r#"cat > /tmp/echo.sh <<'EOS'
h=""
while read -r l; do l=$(printf '%s' "$l" | tr -d '\r'); [ -z "$l" ] && break; h="$h$l
"; done
n=$(printf '%s' "$h" | wc -c)
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nSet-Cookie: gatehouse_session=planted; Path=/\r\nSet-Cookie: gatehouse_login=planted; Path=/auth/callback\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Allow-Credentials: true\r\nClear-Site-Data: "cookies"\r\nX-Content-Type-Options: sniff\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' "$n" "$h"
EOS
exec nc -ll -p 8080 -e sh /tmp/echo.sh"#;

/// A [`KeyedStack`] with alice's (team-a) echo sandbox `a1` and carol's (team-b) httpd
/// sandbox `c1`, both Running and answering through the proxy.
struct Arena {
    st: KeyedStack,
    a1: String,
    c1: String,
}

impl Arena {
    async fn start() -> Self {
        Self::start_with("").await
    }

    /// [`Arena::start`] with `more` gateway config.
    async fn start_with(more: &str) -> Self {
        let st = KeyedStack::start_with(more).await.unwrap();
        let a1 = create_id(&alice(), &st.gw.url, &script_body(ECHO_SCRIPT))
            .await
            .unwrap();
        let c1 = create_id(&carol(), &st.gw.url, &httpd_body(json!({"project": "x"})))
            .await
            .unwrap();
        for (c, id) in [(alice(), &a1), (carol(), &c1)] {
            wait_state(&c, &st.gw.url, id, "Running").await.unwrap();
            let url = st.gw.at(&format!("/v1/sandboxes/{id}/proxy/8080/"));
            wait_for("the sandbox's server", Duration::from_secs(30), || {
                let (c, url) = (c.clone(), url.clone());
                async move {
                    let r = c.get(&url).send().await.ok()?;
                    (r.status() == 200).then_some(())
                }
            })
            .await
            .unwrap();
        }
        Self { st, a1, c1 }
    }

    /// `url` + `/v1/sandboxes/{id}{rest}`.
    fn sandbox(&self, id: &str, rest: &str) -> String {
        self.st.gw.at(&format!("/v1/sandboxes/{id}{rest}"))
    }
}

/// Writes `req` as is over a connection from the trusted proxy's address and reads until
/// the server closes it; everything it answered. The wait (40 s) outlasts the gateway's
/// own upstream timeouts (30 s), so a slow sandbox shows as the gateway's 504, not as
/// silence; when nothing came back, stderr says whether the connection closed or the
/// wait ran out.
async fn raw_exchange(url: &str, req: &[u8]) -> Vec<u8> {
    let started = std::time::Instant::now();
    let mut stream = connect_trusted(url).await;
    stream.write_all(req).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(40), stream.read_to_end(&mut buf)).await;
    if buf.is_empty() {
        let how = match read {
            Ok(Ok(_)) => "the gateway closed the connection".to_string(),
            Ok(Err(e)) => format!("reading failed: {e}"),
            Err(_) => "the wait ran out".to_string(),
        };
        eprintln!("no answer after {:?}: {how}", started.elapsed());
    }
    buf
}

/// The status of the first response in `raw` (0 when there is none).
fn first_status(raw: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(raw);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
