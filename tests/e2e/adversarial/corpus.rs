//! The generated corpus: more than 2,000 attack requests, each with the outcome it must
//! get (a set of acceptable statuses and text that must not appear in the answer: another
//! team's sandbox content, a foreign redirect target, someone else's identity). After the
//! run, nothing it must not change has changed. Totals per class are printed.

use super::Arena;
use futures_util::stream::{self, StreamExt};
use gatehouse_tests::api::{host_port, send};
use gatehouse_tests::login::login;
use gatehouse_tests::principals::{alice, carol, keyed, TRUSTED};
use gatehouse_tests::sandbox::HELLO;
use gatehouse_tests::stacks::{OidcStack, ADMIN_KEY};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One attack request.
struct Case {
    class: &'static str,
    what: String,
    /// The exact bytes sent on a fresh connection.
    bytes: Vec<u8>,
    /// Sent from the trusted proxy's address (else from 127.0.0.1, an untrusted peer).
    trusted: bool,
    /// The gateway.
    target: SocketAddr,
    /// Acceptable statuses of the first response (empty: any, e.g. a closed connection).
    ok: &'static [u16],
    /// Text that must appear nowhere in what came back.
    forbidden: Vec<String>,
}

const DENIED: &[u16] = &[400, 401, 403, 404, 405, 413, 431];
const UNAUTH: &[u16] = &[400, 401];
const DENIED_OR_CONSOLE: &[u16] = &[302, 400, 401, 403, 404, 405];
const ANY: &[u16] = &[];

/// What marks another team's data: carol's sandbox's metadata and page, and the request
/// head alice's echo sandbox would send back.
fn foreign_markers() -> Vec<String> {
    vec![
        HELLO.to_string(),
        "\"project\":\"x\"".into(),
        "X-OpenSandbox-User".into(),
        "x-opensandbox-user".into(),
    ]
}

/// Sends one case; `Err` describes a bypass.
async fn run(case: &Case) -> Result<(), String> {
    let sock = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    let from = if case.trusted {
        TRUSTED
    } else {
        std::net::IpAddr::from([127, 0, 0, 1])
    };
    sock.bind((from, 0).into()).map_err(|e| e.to_string())?;
    let mut s = sock.connect(case.target).await.map_err(|e| e.to_string())?;
    let _ = s.write_all(&case.bytes).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    // Read until the server closes or stays quiet for a while.
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1500), s.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&out);
    let status: u16 = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if !case.ok.is_empty() && !case.ok.contains(&status) {
        return Err(format!("status {status}, expected one of {:?}", case.ok));
    }
    if let Some(f) = case.forbidden.iter().find(|f| text.contains(f.as_str())) {
        return Err(format!("the answer contains {f:?} (status {status})"));
    }
    Ok(())
}

/// An HTTP/1.1 request head (+ body) with `Connection: close`.
fn http(
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut h = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut b = h.into_bytes();
    b.extend_from_slice(body);
    b
}

/// Trusted-proxy identity headers.
fn as_user(user: &str, team: &str, roles: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-OpenSandbox-User", user.to_string()),
        ("X-OpenSandbox-Team", team.to_string()),
        ("X-OpenSandbox-Roles", roles.to_string()),
    ]
}

/// Every per-sandbox route as `(method, suffix, body)`.
fn routes() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("GET", "", ""),
        ("DELETE", "", ""),
        ("PATCH", "/metadata", r#"{"x":"y"}"#),
        ("POST", "/pause", ""),
        ("POST", "/resume", ""),
        (
            "POST",
            "/renew-expiration",
            r#"{"expiresAt":"2099-01-01T00:00:00Z"}"#,
        ),
        ("GET", "/endpoints/8080", ""),
        ("POST", "/snapshots", "{}"),
        ("GET", "/diagnostics/logs", ""),
        ("GET", "/diagnostics/inspect", ""),
        ("GET", "/diagnostics/events", ""),
        ("GET", "/diagnostics/summary", ""),
        ("GET", "/networkpolicy", ""),
        ("PUT", "/networkpolicy", "{}"),
        ("PATCH", "/networkpolicy", "{}"),
        ("DELETE", "/networkpolicy", ""),
        ("GET", "/proxy/8080/", ""),
        ("POST", "/proxy/8080/x", "a=1"),
        ("GET", "/proxy/8080/index.html", ""),
    ]
}

/// Spellings of the path to `victim`'s `suffix` (the attacker owns `own`).
fn encodings(own: &str, victim: &str, suffix: &str) -> Vec<String> {
    let pct: String = victim.bytes().map(|b| format!("%{b:02x}")).collect();
    let upper_pct: String = victim.bytes().map(|b| format!("%{b:02X}")).collect();
    let half: String = victim
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            if i % 2 == 0 {
                format!("%{b:02x}")
            } else {
                (b as char).to_string()
            }
        })
        .collect();
    let s = suffix.trim_start_matches('/');
    vec![
        format!("/v1/sandboxes/{victim}{suffix}"),
        format!("/sandboxes/{victim}{suffix}"),
        format!("/v1/sandboxes/{own}/../{victim}{suffix}"),
        format!("/v1/sandboxes/{own}/%2e%2e/{victim}{suffix}"),
        format!("/v1/sandboxes/{own}/%2E%2E/{victim}{suffix}"),
        format!("/v1/sandboxes/{own}/.%2e/{victim}{suffix}"),
        format!("/v1//sandboxes///{victim}{suffix}"),
        format!("/v1/./sandboxes/./{victim}{suffix}"),
        format!("/v1/sandboxes/{pct}{suffix}"),
        format!("/v1/sandboxes/{upper_pct}{suffix}"),
        format!("/v1/sandboxes/{half}{suffix}"),
        format!("/v1/%73andboxes/{victim}{suffix}"),
        format!("/v1/sandboxes/{victim}%2f{s}"),
        format!("/v1/sandboxes/{own}%2f..%2f{victim}{suffix}"),
        format!("/v1/sandboxes/{own}/..%2f{victim}{suffix}"),
        format!("/v1/sandboxes/{own}/%252e%252e/{victim}{suffix}"),
        format!("/v1/sandboxes/{own}\\..\\{victim}{suffix}"),
        format!("/v1/sandboxes/{victim};x=1{suffix}"),
        format!("/v1/sandboxes/{victim}%00{suffix}"),
        format!("/v1/sandboxes/{victim}{suffix}?id={own}"),
        format!("/v1/sandboxes/{victim}{suffix}#/{own}"),
        format!("/x/../v1/sandboxes/{victim}{suffix}"),
        format!("/v1/sandboxes/{}{suffix}", victim.to_uppercase()),
        format!("http://evil.example/v1/sandboxes/{victim}{suffix}"),
    ]
}

/// Scope escapes and path encodings against the [`Arena`]: alice (team-a) at carol's
/// sandbox through every route and spelling, carol at alice's, bob (read_only) mutating
/// alice's.
fn scope_cases(t: &Arena, target: SocketAddr) -> Vec<Case> {
    let host = host_port(&t.st.gw.url).to_string();
    let mut out = Vec::new();
    for (method, suffix, body) in routes() {
        for (i, path) in encodings(&t.a1, &t.c1, suffix).into_iter().enumerate() {
            let class = if i < 2 {
                "scope_escape"
            } else {
                "path_encoding"
            };
            out.push(Case {
                class,
                what: format!("alice {method} {path}"),
                bytes: http(
                    method,
                    &path,
                    &host,
                    &as_user("alice", "team-a", "operator"),
                    body.as_bytes(),
                ),
                trusted: true,
                target,
                ok: DENIED,
                forbidden: foreign_markers(),
            });
        }
        for path in encodings(&t.c1, &t.a1, suffix) {
            out.push(Case {
                class: "scope_escape",
                what: format!("carol {method} {path}"),
                bytes: http(
                    method,
                    &path,
                    &host,
                    &as_user("carol", "team-b", "operator"),
                    body.as_bytes(),
                ),
                trusted: true,
                target,
                ok: DENIED,
                forbidden: foreign_markers(),
            });
        }
        for path in encodings(&t.a1, &t.c1, suffix).into_iter().take(8) {
            out.push(Case {
                class: "scope_escape",
                what: format!("bob {method} {path}"),
                bytes: http(
                    method,
                    &path,
                    &host,
                    &as_user("bob", "team-a", "read_only"),
                    body.as_bytes(),
                ),
                trusted: true,
                target,
                ok: DENIED,
                forbidden: foreign_markers(),
            });
        }
        let mutating = method != "GET";
        if mutating || suffix.starts_with("/proxy") {
            let path = format!("/v1/sandboxes/{}{suffix}", t.a1);
            out.push(Case {
                class: "scope_escape",
                what: format!("bob (read_only) {method} {path}"),
                bytes: http(
                    method,
                    &path,
                    &host,
                    &as_user("bob", "team-a", "read_only"),
                    body.as_bytes(),
                ),
                trusted: true,
                target,
                ok: &[403, 404, 405],
                forbidden: foreign_markers(),
            });
        }
    }
    out
}

/// Smuggling and framing over raw TCP from an untrusted peer: every one must be refused
/// or answered as one anonymous request; the smuggled one must never be served.
fn smuggling_cases(t: &Arena, target: SocketAddr) -> Vec<Case> {
    let host = host_port(&t.st.gw.url).to_string();
    let inner_targets = [
        format!("/v1/sandboxes/{}", t.c1),
        format!("/v1/sandboxes/{}/proxy/8080/", t.c1),
        "/v1/sandboxes".to_string(),
        format!("/v1/sandboxes/{}/proxy/8080/", t.a1),
    ];
    let mut out = Vec::new();
    for inner in &inner_targets {
        let smuggled = format!(
            "GET {inner} HTTP/1.1\r\nHost: {host}\r\nX-OpenSandbox-User: carol\r\nX-OpenSandbox-Team: team-b\r\nX-OpenSandbox-Roles: service_admin\r\nOPEN-SANDBOX-API-KEY: guess\r\n\r\n"
        );
        let n = smuggled.len();
        let chunked_body = format!("0\r\n\r\n{smuggled}");
        let framings: Vec<(&str, String)> = vec![
            ("CL+TE", format!("POST /healthz HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{chunked_body}", chunked_body.len())),
            ("TE+CL", format!("POST /healthz HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n{chunked_body}")),
            ("TE tab", format!("POST /healthz HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding:\tchunked\r\nContent-Length: 3\r\n\r\n{chunked_body}")),
            ("TE xchunked", format!("POST /healthz HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: xchunked\r\n\r\n{chunked_body}")),
            ("TE chunked,identity", format!("POST /healthz HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked, identity\r\n\r\n{chunked_body}")),
            ("TE twice", format!("POST /healthz HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n{chunked_body}")),
            ("TE space before colon", format!("POST /healthz HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n{chunked_body}")),
            ("TE obs-fold", format!("POST /healthz HTTP/1.1\r\nHost: {host}\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n{chunked_body}")),
            ("two CLs", format!("POST /healthz HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nContent-Length: {n}\r\n\r\n{smuggled}")),
            ("CL list", format!("POST /healthz HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0, {n}\r\n\r\n{smuggled}")),
            ("CL plus sign", format!("POST /healthz HTTP/1.1\r\nHost: {host}\r\nContent-Length: +0\r\n\r\n{smuggled}")),
            ("CL negative", format!("POST /healthz HTTP/1.1\r\nHost: {host}\r\nContent-Length: -1\r\n\r\n{smuggled}")),
            ("CL hex", format!("POST /healthz HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0x0\r\n\r\n{smuggled}")),
            ("chunk size overflow", format!("POST /healthz HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff1\r\nx\r\n0\r\n\r\n{smuggled}")),
            ("chunk ext", format!("POST /healthz HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n0;ext=\"\r\n\r\n{smuggled}\"\r\n\r\n")),
            ("bare LF", format!("POST /healthz HTTP/1.1\nHost: {host}\nContent-Length: 0\n\n{smuggled}")),
            ("NUL in header", format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nX: a\0b\r\n\r\n{smuggled}")),
            ("space in request line", format!("GET  /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n{smuggled}")),
            ("HTTP/1.0 keep-alive", format!("GET /healthz HTTP/1.0\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n{smuggled}")),
            ("HTTP/0.9", format!("GET {inner}\r\n\r\n")),
            ("HTTP/2 preface", format!("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n{smuggled}")),
            ("absolute-form", format!("GET http://internal.invalid{inner} HTTP/1.1\r\nHost: {host}\r\n\r\n")),
            ("two Hosts", format!("GET {inner} HTTP/1.1\r\nHost: {host}\r\nHost: internal.invalid\r\n\r\n")),
            ("pipelined", format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n{smuggled}")),
            ("CONNECT", format!("CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n\r\n{smuggled}")),
            ("upgrade h2c", format!("GET {inner} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")),
        ];
        for (name, req) in framings {
            out.push(Case {
                class: "smuggling",
                what: format!("{name} -> {inner}"),
                bytes: req.into_bytes(),
                trusted: false,
                target,
                ok: ANY,
                forbidden: foreign_markers(),
            });
        }
    }
    out
}

/// Identity and routing headers from a peer that is not the trusted proxy, and a
/// spoofed `Host` from alice: none of them names a caller or lands in a URL.
fn spoofing_cases(t: &Arena, target: SocketAddr) -> Vec<Case> {
    let host = host_port(&t.st.gw.url).to_string();
    let spoofs: Vec<Vec<(&'static str, String)>> = vec![
        as_user("carol", "team-b", "service_admin"),
        as_user("carol", "team-b", "operator"),
        vec![
            ("x-opensandbox-user", "carol".into()),
            ("x-opensandbox-roles", "service_admin".into()),
        ],
        vec![
            ("X-OpenSandbox-User", "carol".into()),
            ("X-Forwarded-For", "127.0.0.2".into()),
        ],
        vec![
            ("X-OpenSandbox-User", "carol".into()),
            ("Forwarded", "for=127.0.0.2".into()),
        ],
        vec![
            ("X-OpenSandbox-User", "carol".into()),
            ("X-Real-IP", "127.0.0.2".into()),
        ],
        vec![("OPEN-SANDBOX-API-KEY", "wrong-key".into())],
        vec![("OPEN-SANDBOX-API-KEY", format!("{ADMIN_KEY}x"))],
        vec![("Authorization", format!("Bearer {ADMIN_KEY}"))],
        vec![("Authorization", "Basic Y2Fyb2w6eA==".into())],
        vec![(
            "X-Gatehouse-Caller",
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiJjYXJvbCJ9.".into(),
        )],
        vec![("Cookie", "gatehouse_session=forged".into())],
    ];
    let targets = [
        ("GET", format!("/v1/sandboxes/{}", t.c1)),
        ("GET", "/v1/sandboxes".to_string()),
        ("DELETE", format!("/v1/sandboxes/{}", t.c1)),
        ("GET", format!("/v1/sandboxes/{}/proxy/8080/", t.c1)),
        ("GET", format!("/v1/sandboxes/{}/proxy/8080/", t.a1)),
        ("POST", format!("/v1/sandboxes/{}/pause", t.c1)),
        ("GET", "/v1/pools".to_string()),
        ("POST", "/v1/sandboxes".to_string()),
    ];
    let mut out = Vec::new();
    for headers in &spoofs {
        for (method, path) in &targets {
            out.push(Case {
                class: "header_spoofing",
                what: format!(
                    "untrusted {method} {path} with {:?}",
                    headers.iter().map(|h| h.0).collect::<Vec<_>>()
                ),
                bytes: http(method, path, &host, headers, b""),
                trusted: false,
                target,
                ok: UNAUTH,
                forbidden: foreign_markers(),
            });
        }
    }
    for h in [
        "evil.example",
        "evil.example:80",
        "127.0.0.1.evil.example",
        "localhost@evil.example",
    ] {
        for q in ["?use_server_proxy=true", ""] {
            let path = format!("/v1/sandboxes/{}/endpoints/8080{q}", t.a1);
            out.push(Case {
                class: "header_spoofing",
                what: format!("alice endpoint with Host {h}"),
                bytes: http(
                    "GET",
                    &path,
                    h,
                    &as_user("alice", "team-a", "operator"),
                    b"",
                ),
                trusted: true,
                target,
                ok: &[200, 400],
                forbidden: vec!["evil.example".into()],
            });
        }
    }
    out
}

/// Oversized and malformed bodies as alice: refused before they reach the backend, and
/// never a way to create a sandbox outside her team or rewrite the reserved keys.
fn body_cases(t: &Arena, target: SocketAddr) -> Vec<Case> {
    let host = host_port(&t.st.gw.url).to_string();
    let image = gatehouse_tests::test_image();
    let big = format!(
        r#"{{"image":{{"uri":"{image}"}},"entrypoint":["sleep","1"],"timeout":60,"metadata":{{"pad":"{}"}}}}"#,
        "x".repeat(70 * 1024)
    );
    let deep = format!("{}{}", "[".repeat(20000), "]".repeat(20000));
    let creates: Vec<(&str, Vec<u8>)> = vec![
        ("70 KiB create", big.into_bytes()),
        ("truncated JSON", br#"{"image":{"uri":"x"#.to_vec()),
        ("not JSON", b"image=x".to_vec()),
        ("JSON array", b"[]".to_vec()),
        ("deep nesting", deep.into_bytes()),
        (
            "invalid UTF-8",
            b"{\"image\":{\"uri\":\"\xff\xfe\"}}".to_vec(),
        ),
        (
            "metadata not an object",
            br#"{"image":5,"entrypoint":["sleep","1"],"metadata":"team-b"}"#.to_vec(),
        ),
        (
            "metadata number values",
            br#"{"image":5,"entrypoint":["sleep","1"],"metadata":{"access.team":5}}"#.to_vec(),
        ),
        ("empty body", Vec::new()),
        ("NUL bytes", b"\0\0\0\0".to_vec()),
        (
            "huge number",
            format!("{{\"timeout\":1{}}}", "0".repeat(5000)).into_bytes(),
        ),
    ];
    let mut out = Vec::new();
    for (what, body) in &creates {
        for path in ["/v1/sandboxes", "/sandboxes"] {
            out.push(Case {
                class: "bodies",
                what: format!("create: {what} at {path}"),
                bytes: http(
                    "POST",
                    path,
                    &host,
                    &as_user("alice", "team-a", "operator"),
                    body,
                ),
                trusted: true,
                target,
                ok: &[400, 413, 415, 422],
                forbidden: vec![],
            });
        }
    }
    // Spellings that are not the reserved keys may be stored (200): they change no scope,
    // which the run checks at the end.
    let lookalike: &'static [u16] = &[200, 400, 413, 415, 422];
    let strict: &'static [u16] = &[400, 413, 415, 422];
    let patches: Vec<(String, &'static [u16])> = vec![
        (r#"{"access.team":"team-b"}"#.into(), strict),
        (r#"{"access.owner":"mallory"}"#.into(), strict),
        (r#"{"ACCESS.TEAM":"team-b"}"#.into(), lookalike),
        (r#"{"access.team ":"team-b"}"#.into(), lookalike),
        (r#"{"access%2eteam":"team-b"}"#.into(), lookalike),
        (
            r#"{"access.team":"team-a","access.team":"team-b"}"#.into(),
            strict,
        ),
        (r#"{"x":"y","access.owner":null}"#.into(), strict),
        (r#"{"access.team":null}"#.into(), strict),
        (r#"[["access.team","team-b"]]"#.into(), strict),
        ("not json".into(), strict),
        (format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024)), strict),
    ];
    for (body, ok) in &patches {
        for path in [
            format!("/v1/sandboxes/{}/metadata", t.a1),
            format!("/sandboxes/{}/metadata", t.a1),
        ] {
            out.push(Case {
                class: "bodies",
                what: format!("metadata patch {}", &body[..body.len().min(40)]),
                bytes: http(
                    "PATCH",
                    &path,
                    &host,
                    &as_user("alice", "team-a", "operator"),
                    body.as_bytes(),
                ),
                trusted: true,
                target,
                ok,
                forbidden: vec![],
            });
        }
    }
    let lie = format!("POST /v1/sandboxes HTTP/1.1\r\nHost: {host}\r\nX-OpenSandbox-User: alice\r\nX-OpenSandbox-Team: team-a\r\nX-OpenSandbox-Roles: operator\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n{{}}");
    out.push(Case {
        class: "bodies",
        what: "Content-Length larger than the limit".into(),
        bytes: lie.into_bytes(),
        trusted: true,
        target,
        ok: &[0, 400, 408, 413],
        forbidden: vec![],
    });
    out
}

/// An HTTP case for the OIDC stack (from an untrusted peer: there is no trusted proxy).
/// One argument per column of the corpus table, so each call reads as a row.
#[allow(clippy::too_many_arguments)]
fn oidc_case(
    class: &'static str,
    what: String,
    st: &OidcStack,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    ok: &'static [u16],
    forbidden: Vec<String>,
) -> Case {
    let host = host_port(&st.gw.url).to_string();
    Case {
        class,
        what,
        bytes: http(method, path, &host, headers, body),
        trusted: false,
        target: host.parse().unwrap(),
        ok,
        forbidden,
    }
}

/// JWT forgeries: valid-signature tokens with bad claims or types (the IdP's own key),
/// and broken ones, at every kind of route; none authenticates.
fn jwt_cases(st: &OidcStack) -> Vec<Case> {
    use super::findings::{sign, sign_typed, signing};
    let (jwk, kid, base) = signing(st);
    let now = chrono::Utc::now().timestamp();
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        sign(&jwk, &kid, &c)
    };
    let without = |k: &str| {
        let mut c = base.clone();
        c.as_object_mut().unwrap().remove(k);
        sign(&jwk, &kid, &c)
    };
    let good = sign(&jwk, &kid, &base);
    let mut parts: Vec<&str> = good.split('.').collect();
    let evil_payload = data_encoding::BASE64URL_NOPAD.encode(
        json!({"iss": st.idp.issuer, "aud": st.idp.api_audience, "sub": "root", "exp": now + 300})
            .to_string()
            .as_bytes(),
    );
    parts[1] = &evil_payload;
    let tampered = parts.join(".");
    let b64 = |v: &Value| data_encoding::BASE64URL_NOPAD.encode(v.to_string().as_bytes());
    let tokens: Vec<(&str, String)> = vec![
        ("wrong iss", with("iss", json!("http://127.0.0.1:1"))),
        (
            "iss trailing slash",
            with("iss", json!(format!("{}/", st.idp.issuer))),
        ),
        ("wrong aud", with("aud", json!("someone-else"))),
        ("aud list without ours", with("aud", json!(["a", "b"]))),
        ("expired", with("exp", json!(now - 120))),
        ("exp as string", with("exp", json!("9999999999"))),
        ("no exp", without("exp")),
        ("no iss", without("iss")),
        ("no aud", without("aud")),
        ("no sub", without("sub")),
        ("empty sub", with("sub", json!(""))),
        ("control chars in sub", with("sub", json!("ali\nce"))),
        ("nbf in the future", with("nbf", json!(now + 600))),
        ("typ JWT", sign_typed(&jwk, &kid, Some("JWT"), &base)),
        ("no typ", sign_typed(&jwk, &kid, None, &base)),
        (
            "typ logout+jwt",
            sign_typed(&jwk, &kid, Some("logout+jwt"), &base),
        ),
        (
            "typ id_token",
            sign_typed(&jwk, &kid, Some("id_token+jwt"), &base),
        ),
        ("nonce", with("nonce", json!("n"))),
        ("at_hash", with("at_hash", json!("h"))),
        ("c_hash", with("c_hash", json!("h"))),
        (
            "events",
            with(
                "events",
                json!({"http://schemas.openid.net/event/backchannel-logout": {}}),
            ),
        ),
        ("payload swapped", tampered),
        (
            "signature stripped",
            format!(
                "{}.{}.",
                good.split('.').next().unwrap(),
                good.split('.').nth(1).unwrap()
            ),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg":"none","kid":kid,"typ":"at+jwt"})),
                b64(&base)
            ),
        ),
        ("four segments", format!("{good}.x")),
        ("garbage", "a.b.c".into()),
        ("empty", String::new()),
    ];
    let targets = [
        ("GET", "/v1/sandboxes".to_string(), ""),
        (
            "POST",
            "/v1/sandboxes".to_string(),
            r#"{"image":{"uri":"x"},"entrypoint":["sleep","1"],"timeout":60}"#,
        ),
        ("GET", "/auth/me".to_string(), ""),
        ("DELETE", "/v1/sandboxes/any-id".to_string(), ""),
        ("GET", "/v1/sandboxes/any-id/proxy/8080/".to_string(), ""),
        ("GET", "/v1/pools".to_string(), ""),
    ];
    let mut out = Vec::new();
    for (name, token) in &tokens {
        for (method, path, body) in &targets {
            for scheme in ["Bearer", "bearer", "BEARER"] {
                out.push(oidc_case(
                    "jwt_forgery",
                    format!("{name}: {scheme} {method} {path}"),
                    st,
                    method,
                    path,
                    &[("Authorization", format!("{scheme} {token}"))],
                    body.as_bytes(),
                    UNAUTH,
                    vec!["\"subject\"".into()],
                ));
            }
        }
    }
    out
}

/// Cookie tampering, CSRF and open redirects against alice's console session.
fn session_cases(st: &OidcStack, session: &str, csrf: &str, bob_session: &str) -> Vec<Case> {
    let hp = host_port(&st.gw.url).to_string();
    let origin = st.gw.url.clone();
    let mut flipped = session.to_string().into_bytes();
    flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let cookies: Vec<(&str, String)> = vec![
        (
            "truncated",
            format!("gatehouse_session={}", &session[..session.len() - 1]),
        ),
        ("one more char", format!("gatehouse_session={session}A")),
        ("one char changed", format!("gatehouse_session={flipped}")),
        (
            "uppercased",
            format!("gatehouse_session={}", session.to_uppercase()),
        ),
        ("quoted", format!("gatehouse_session=\"{session}\"")),
        (
            "bob's planted first",
            format!("gatehouse_session={bob_session}; gatehouse_session={session}"),
        ),
        (
            "planted after",
            format!("gatehouse_session={session}; gatehouse_session=planted"),
        ),
        ("empty", "gatehouse_session=".into()),
        ("name case", format!("Gatehouse_Session={session}")),
        ("space before =", format!("gatehouse_session ={session}")),
        (
            "very long",
            format!("gatehouse_session={}", "A".repeat(4000)),
        ),
        (
            "the CSRF token as session",
            format!("gatehouse_session={csrf}"),
        ),
    ];
    let mut out = Vec::new();
    for (name, cookie) in &cookies {
        for (method, path) in [
            ("GET", "/auth/me"),
            ("GET", "/v1/sandboxes"),
            ("POST", "/v1/sandboxes"),
            ("POST", "/auth/logout"),
        ] {
            out.push(oidc_case(
                "cookie_tampering",
                format!("{name}: {method} {path}"),
                st,
                method,
                path,
                &[
                    ("Cookie", cookie.clone()),
                    ("X-CSRF-Token", csrf.to_string()),
                    ("Origin", origin.clone()),
                ],
                br#"{"image":{"uri":"x"},"entrypoint":["sleep","1"],"timeout":60}"#,
                &[400, 401, 403],
                vec!["\"alice\"".into()],
            ));
        }
    }
    let good_cookie = format!("gatehouse_session={session}");
    let tokens = [
        ("no token", None),
        ("wrong token", Some("x".repeat(43))),
        ("empty token", Some(String::new())),
    ];
    let origins = [
        Some(origin.clone()),
        None,
        Some(hp.clone()),
        Some(format!("https://{hp}")),
        Some("null".into()),
        Some("http://evil.example".into()),
        Some(format!("{origin}.evil.example")),
        Some(format!("{origin}/")),
    ];
    let mutations = [
        ("POST", "/v1/sandboxes".to_string()),
        ("DELETE", "/v1/sandboxes/any-id".to_string()),
        ("POST", "/auth/logout".to_string()),
        ("POST", "/v1/sandboxes/any-id/pause".to_string()),
        ("PATCH", "/v1/sandboxes/any-id/metadata".to_string()),
    ];
    for (method, path) in &mutations {
        for (tname, token) in &tokens {
            for o in &origins {
                let mut h = vec![("Cookie", good_cookie.clone())];
                if let Some(t) = token {
                    h.push(("X-CSRF-Token", t.clone()));
                }
                if let Some(o) = o {
                    h.push(("Origin", o.clone()));
                }
                out.push(oidc_case(
                    "csrf",
                    format!("{tname}, Origin {o:?}: {method} {path}"),
                    st,
                    method,
                    path,
                    &h,
                    b"{}",
                    &[403],
                    vec![],
                ));
            }
        }
        // The right token from a wrong origin.
        for o in origins.iter().skip(1) {
            let mut h = vec![
                ("Cookie", good_cookie.clone()),
                ("X-CSRF-Token", csrf.to_string()),
            ];
            if let Some(o) = o {
                h.push(("Origin", o.clone()));
            }
            out.push(oidc_case(
                "csrf",
                format!("right token, Origin {o:?}: {method} {path}"),
                st,
                method,
                path,
                &h,
                b"{}",
                &[403],
                vec![],
            ));
        }
    }
    let redirects = [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "http:evil.example",
        "javascript:alert(1)",
        "/%0d%0aLocation:%20https://evil.example",
        "%2f%2fevil.example",
        "/%2F%2Fevil.example",
        "https:/evil.example",
        "//%65vil.example",
        "/\t/evil.example",
        "evil.example",
        " //evil.example",
        "/console/%0a//evil.example",
        "data:text/html,x",
        "///evil.example",
        "/.//evil.example",
        "https://127.0.0.1.evil.example/",
    ];
    for r in redirects {
        let enc: String = r.bytes().map(|b| format!("%{b:02X}")).collect();
        for q in [
            format!("return_to={enc}"),
            format!("return_to={}", r.replace(' ', "%20").replace('\t', "%09")),
        ] {
            // 400, or a same-origin path kept server-side while the browser goes to the
            // IdP: either way no answer points anywhere near the attacker's host.
            out.push(oidc_case(
                "open_redirect",
                format!("login return_to {r:?}"),
                st,
                "GET",
                &format!("/auth/login?{q}"),
                &[],
                b"",
                &[302, 400],
                vec!["evil.example".into()],
            ));
        }
    }
    for h in ["evil.example", "evil.example:1234"] {
        let req = format!(
            "POST /auth/logout HTTP/1.1\r\nHost: {h}\r\nCookie: {good_cookie}\r\nX-CSRF-Token: {csrf}\r\nOrigin: http://{h}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        out.push(Case {
            class: "open_redirect",
            what: format!("logout with Host {h}"),
            bytes: req.into_bytes(),
            trusted: false,
            target: hp.parse().unwrap(),
            ok: &[403],
            forbidden: vec!["evil.example".into()],
        });
    }
    out
}

/// alice's hand-off to her sandbox's origin, redeemed: `(used hand-off path, cookie)`.
async fn alice_origin_cookie(t: &Arena, target: SocketAddr) -> (String, String) {
    let url =
        t.st.gw
            .at(&format!("/auth/sandbox-handoff?sandbox={}&port=8080", t.a1));
    let (s, v) = send(&alice(), "POST", &url, None).await;
    assert_eq!(s, 200, "{v}");
    let url = v["url"].as_str().unwrap();
    let pq = &url[url.find("/.gatehouse/").unwrap()..];
    let host = format!("{}-8080.localhost:{}", t.a1, target.port());
    let case = Case {
        class: "sandbox_origin",
        what: "redeem".into(),
        bytes: http("GET", pq, &host, &[], b""),
        trusted: false,
        target,
        ok: ANY,
        forbidden: vec![],
    };
    let mut s = tokio::net::TcpStream::connect(case.target).await.unwrap();
    s.write_all(&case.bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    let cookie = text
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: gatehouse_sandbox="))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no origin cookie: {text}"))
        .to_string();
    (pq.to_string(), cookie)
}

/// Sandbox origins: another sandbox's origin, other ports, look-alike hosts, replayed and
/// forged hand-offs, and credentials a sandbox origin must ignore.
fn origin_cases(t: &Arena, target: SocketAddr, used: &str, cookie: &str) -> Vec<Case> {
    let port = target.port();
    let hosts = [
        format!("{}-8080.localhost:{port}", t.c1),
        format!("{}-8081.localhost:{port}", t.a1),
        format!("{}-44772.localhost:{port}", t.a1),
        format!("{}-8080.localhost:{port}", t.c1.to_uppercase()),
        format!("x.{}-8080.localhost:{port}", t.a1),
        format!("{}-8080.localhost.evil.example:{port}", t.a1),
        format!("{}-8080.localhostx:{port}", t.a1),
        format!("{}-08080.localhost:{port}", t.c1),
        format!("{}--8080.localhost:{port}", t.c1),
        format!("{}-8080.localhost:{port}", &t.c1[..8]),
    ];
    let mut credentials: Vec<(&str, Vec<(&'static str, String)>)> = vec![
        (
            "alice's origin cookie",
            vec![("Cookie", format!("gatehouse_sandbox={cookie}"))],
        ),
        ("no credentials", vec![]),
        (
            "a console session cookie",
            vec![("Cookie", "gatehouse_session=anything".into())],
        ),
        (
            "the admin key",
            vec![("OPEN-SANDBOX-API-KEY", ADMIN_KEY.to_string())],
        ),
    ];
    credentials.push(("identity headers", as_user("carol", "team-b", "operator")));
    let paths = [
        "/",
        "/index.html",
        used,
        "/.gatehouse/handoff?t=a.b.c",
        "/.gatehouse/handoff",
    ];
    let mut out = Vec::new();
    for host in &hosts {
        for (cname, headers) in &credentials {
            for path in paths {
                out.push(Case {
                    class: "sandbox_origin",
                    what: format!("{cname} on {host}{path}"),
                    bytes: http("GET", path, host, headers, b""),
                    trusted: cname == &"identity headers",
                    target,
                    // A look-alike host is no sandbox origin: it is the console's, whose
                    // `/` redirects to `/console/`.
                    ok: if path == "/" {
                        DENIED_OR_CONSOLE
                    } else {
                        DENIED
                    },
                    forbidden: vec![
                        HELLO.to_string(),
                        "\"project\":\"x\"".into(),
                        "x-gatehouse-caller".into(),
                        "X-Gatehouse-Caller".into(),
                    ],
                });
            }
        }
    }
    // On alice's own origin: without the cookie, or with what a sandbox origin ignores.
    let own = format!("{}-8080.localhost:{port}", t.a1);
    for (cname, headers) in credentials.iter().skip(1) {
        for path in paths {
            out.push(Case {
                class: "sandbox_origin",
                what: format!("{cname} on alice's origin {path}"),
                bytes: http("GET", path, &own, headers, b""),
                trusted: cname == &"identity headers",
                target,
                ok: DENIED,
                forbidden: vec!["x-gatehouse-caller".into(), "X-Gatehouse-Caller".into()],
            });
        }
    }
    out
}

/// Runs the whole corpus, prints totals per class, and fails on any bypass or on anything
/// changed that the corpus must not change.
#[tokio::test]
async fn adversarial_corpus_finds_no_bypass() {
    let t = Arena::start_with("server.sandbox_domain = \"localhost\"").await;
    let st = OidcStack::start("", "").await.unwrap();
    let a = login(&st.gw.url, &st.idp, "alice", "/console/")
        .await
        .unwrap();
    let b = login(&st.gw.url, &st.idp, "bob", "/console/")
        .await
        .unwrap();
    let me: Value = a
        .client
        .get(st.gw.at("/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = me["csrfToken"].as_str().unwrap().to_string();
    let target: SocketAddr = host_port(&t.st.gw.url).parse().unwrap();
    let before_c1 = send(&carol(), "GET", &t.sandbox(&t.c1, ""), None).await;
    let before_a1 = send(&alice(), "GET", &t.sandbox(&t.a1, ""), None).await.1;
    let mut cases = scope_cases(&t, target);
    cases.extend(smuggling_cases(&t, target));
    cases.extend(spoofing_cases(&t, target));
    cases.extend(body_cases(&t, target));
    cases.extend(jwt_cases(&st));
    cases.extend(session_cases(
        &st,
        &a.session_cookie,
        &csrf,
        &b.session_cookie,
    ));
    let (used, origin_cookie) = alice_origin_cookie(&t, target).await;
    cases.extend(origin_cases(&t, target, &used, &origin_cookie));
    assert!(cases.len() >= 2000, "only {} cases", cases.len());
    let results: Vec<(&Case, Result<(), String>)> = stream::iter(cases.iter())
        .map(|c| async move { (c, run(c).await) })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut totals: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for (c, r) in &results {
        let e = totals.entry(c.class).or_default();
        e.0 += 1;
        if let Err(why) = r {
            e.1 += 1;
            failures.push(format!("[{}] {}: {why}", c.class, c.what));
        }
    }
    println!("adversarial corpus: {} requests", results.len());
    for (class, (n, bad)) in &totals {
        println!("  {class:<18} {n:>5} requests  {bad} unexpected");
    }
    // Nothing changed that must not: carol's sandbox is there with the same metadata,
    // alice's keeps its scope, alice's session still works, and no sandbox was created.
    let after_c1 = send(&carol(), "GET", &t.sandbox(&t.c1, ""), None).await;
    assert_eq!(after_c1.0, 200, "carol's sandbox survived");
    assert_eq!(before_c1.1["metadata"], after_c1.1["metadata"]);
    let (_, a1) = send(&alice(), "GET", &t.sandbox(&t.a1, ""), None).await;
    for k in ["access.team", "access.owner"] {
        assert_eq!(
            a1["metadata"][k], before_a1["metadata"][k],
            "{k} of alice's sandbox"
        );
        assert!(a1["metadata"][k].is_string(), "{a1}");
    }
    let (_, all) = send(
        &keyed(ADMIN_KEY),
        "GET",
        &t.st.gw.at("/v1/sandboxes?pageSize=100"),
        None,
    )
    .await;
    let items = all["items"].as_array().map_or(0, Vec::len);
    assert_eq!(items, 2, "no sandbox was created by the corpus: {all}");
    let (s, v) = send(&a.client, "GET", &st.gw.at("/auth/me"), None).await;
    assert_eq!(
        (s, v["subject"].as_str()),
        (200, Some("alice")),
        "alice was not logged out"
    );
    let (_, listed) = send(&a.client, "GET", &st.gw.at("/v1/sandboxes"), None).await;
    assert_eq!(
        listed["items"].as_array().map_or(0, Vec::len),
        0,
        "no console create got through"
    );
    assert!(!t.st.gw.exposes(ADMIN_KEY) && !st.gw.exposes(&a.session_cookie));
    assert!(
        failures.is_empty(),
        "{} bypasses or unexpected answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
