//! One test per finding of the adversarial review (issue 11); each fails on the gateway
//! as it was before the fix.

use super::{first_status, raw_exchange, Arena};
use gatehouse_tests::api::{host_port, send};
use gatehouse_tests::login::{decode_jwt, login};
use gatehouse_tests::principals::{alice, bob};
use gatehouse_tests::stacks::OidcStack;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

/// Proxied sandbox content on the console origin: no cookie, CORS or `Clear-Site-Data`
/// from the sandbox reaches the browser, the gateway's CSP `sandbox` policy and `nosniff`
/// are on it; and a `Cookie` header with a non-ASCII byte never carries the gateway's own
/// cookie to the sandbox (finding 3) while ordinary cookies still pass.
#[tokio::test]
async fn sandbox_responses_cannot_set_cookies_and_own_cookies_never_reach_it() {
    let t = Arena::start().await;
    let url = t.sandbox(&t.a1, "/proxy/8080/page");
    let mut h = HeaderMap::new();
    h.insert(
        "cookie",
        HeaderValue::from_static("theme=dark; gatehouse_login=LOGIN-SECRET-1"),
    );
    let r = alice().get(&url).headers(h).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    let body = r.text().await.unwrap();
    assert!(
        body.contains("theme=dark"),
        "the sandbox's own cookies pass: {body}"
    );
    assert!(
        !body.contains("LOGIN-SECRET-1"),
        "the gateway's cookie was forwarded"
    );
    assert!(headers.get("set-cookie").is_none(), "{headers:?}");
    assert!(headers.get("access-control-allow-origin").is_none());
    assert!(headers.get("access-control-allow-credentials").is_none());
    assert!(headers.get("clear-site-data").is_none());
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp: Vec<&str> = headers
        .get_all("content-security-policy")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        csp.iter()
            .any(|p| p.starts_with("sandbox ") && !p.contains("allow-same-origin")),
        "{csp:?}"
    );
    // One byte outside ASCII: the whole header cannot be filtered safely and is dropped.
    let mut h = HeaderMap::new();
    h.insert(
        "cookie",
        HeaderValue::from_bytes(b"gatehouse_login=LOGIN-SECRET-2; theme=\xffdark").unwrap(),
    );
    let r = alice().get(&url).headers(h).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(
        !body.contains("LOGIN-SECRET-2"),
        "non-ASCII Cookie forwarded: {body}"
    );
    assert!(!t.st.gw.exposes("LOGIN-SECRET-2"));
}

/// An unknown `Host` is never reflected into a server-proxy endpoint (finding 4).
#[tokio::test]
async fn unknown_host_is_never_reflected_into_endpoints() {
    let t = Arena::start().await;
    let gw_host = host_port(&t.st.gw.url).to_string();
    for host in [
        "evil.example",
        "evil.example:8080",
        "127.0.0.1.evil.example",
    ] {
        let req = format!(
            "GET /v1/sandboxes/{}/endpoints/8080?use_server_proxy=true HTTP/1.1\r\nHost: {host}\r\n\
             X-OpenSandbox-User: alice\r\nX-OpenSandbox-Team: team-a\r\nX-OpenSandbox-Roles: operator\r\n\
             Connection: close\r\n\r\n",
            t.a1
        );
        let out = raw_exchange(&t.st.gw.url, req.as_bytes()).await;
        let text = String::from_utf8_lossy(&out);
        assert_eq!(first_status(&out), 200, "{text}");
        assert!(!text.contains("evil.example"), "Host reflected: {text}");
        assert!(
            text.contains(&format!("{gw_host}/v1/sandboxes/{}/proxy/8080", t.a1)),
            "{text}"
        );
    }
}

/// A `read_only` caller (no `sandbox:proxy`) asking for an endpoint gets one through the
/// gateway, never a direct host port, and the gateway then refuses it the proxy
/// (finding 5).
#[tokio::test]
async fn endpoints_for_non_admins_point_through_the_gateway() {
    let t = Arena::start().await;
    let gw_host = host_port(&t.st.gw.url).to_string();
    for c in [bob(), alice()] {
        let (s, v) = send(&c, "GET", &t.sandbox(&t.a1, "/endpoints/8080"), None).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            v["endpoint"],
            format!("{gw_host}/v1/sandboxes/{}/proxy/8080", t.a1),
            "no direct port"
        );
    }
    let (s, _) = send(&bob(), "GET", &t.sandbox(&t.a1, "/proxy/8080/"), None).await;
    assert_eq!(s, 403, "read_only has no sandbox:proxy");
}

/// A missing sandbox and another team's take the same path: both answers are cached,
/// so with the backend gone both still answer the same 404 (finding 6: before, only
/// hits were cached and a missing id cost a backend round trip).
#[tokio::test]
async fn missing_and_out_of_scope_sandboxes_take_the_same_path() {
    let mut t = Arena::start().await;
    let missing = "00000000-0000-4000-8000-000000000000";
    let base = t.st.gw.url.clone();
    let ask = |id: String| {
        let url = format!("{base}/v1/sandboxes/{id}");
        async move { send(&alice(), "GET", &url, None).await }
    };
    let (s1, out) = ask(t.c1.clone()).await;
    let (s2, miss) = ask(missing.to_string()).await;
    assert_eq!((s1, s2), (404, 404), "{out} {miss}");
    assert_eq!(out["code"], miss["code"]);
    // For the record: the median answer time of each, once both are cached.
    let mut medians = Vec::new();
    for id in [t.c1.clone(), missing.to_string()] {
        let mut times: Vec<u128> = Vec::new();
        for _ in 0..200 {
            let t0 = std::time::Instant::now();
            assert_eq!(ask(id.clone()).await.0, 404);
            times.push(t0.elapsed().as_micros());
        }
        times.sort_unstable();
        medians.push(times[times.len() / 2]);
    }
    println!(
        "median answer: out-of-scope {} us, missing {} us",
        medians[0], medians[1]
    );
    t.st.backend.stop();
    let (s1, out2) = ask(t.c1.clone()).await;
    let (s2, miss2) = ask(missing.to_string()).await;
    assert_eq!((s1, s2), (404, 404), "both from the cache: {out2} {miss2}");
    assert_eq!(out2["code"], miss2["code"]);
}

/// An OIDC stack with alice logged in; her CSRF token.
async fn alice_console(st: &OidcStack) -> (gatehouse_tests::login::LoginResult, String) {
    let a = login(&st.gw.url, &st.idp, "alice", "/console/")
        .await
        .unwrap();
    let v: Value = a
        .client
        .get(st.gw.at("/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = v["csrfToken"].as_str().unwrap().to_string();
    (a, csrf)
}

/// The CSRF Origin check compares scheme, host and port exactly (finding 7).
#[tokio::test]
async fn csrf_origin_must_match_exactly() {
    let st = OidcStack::start("", "").await.unwrap();
    let (a, csrf) = alice_console(&st).await;
    let hp = host_port(&st.gw.url).to_string();
    let create = |origin: Option<String>| {
        let mut rb = a
            .client
            .post(st.gw.at("/v1/sandboxes"))
            .header("X-CSRF-Token", &csrf)
            .json(&json!({"image": {"uri": gatehouse_tests::test_image()}, "entrypoint": ["sleep", "60"], "timeout": 60}));
        if let Some(o) = origin {
            rb = rb.header("Origin", o);
        }
        async move {
            let r = rb.send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for bad in [
        hp.clone(),
        format!("https://{hp}"),
        format!("ftp://{hp}"),
        format!("http://{hp}/console"),
        format!("http://{hp}.evil.example"),
        format!("//{hp}"),
        "null".to_string(),
    ] {
        let (s, v) = create(Some(bad.clone())).await;
        assert_eq!(s, 403, "Origin {bad}: {v}");
        assert_eq!(v["code"], "GATEWAY::CSRF", "{bad}");
    }
    assert_eq!(create(None).await.0, 403, "no Origin");
    let (s, v) = create(Some(st.gw.url.clone())).await;
    assert_eq!(s, 202, "the exact origin: {v}");
}

/// Logging out at the gateway revokes the session's tokens: its ID token and access
/// tokens carrying its IdP session id (`sid`) are refused until they expire, while a
/// token of another session still works (finding 2).
#[tokio::test]
async fn logged_out_sessions_tokens_are_refused() {
    let st = OidcStack::start("", "").await.unwrap();
    let (a, csrf) = alice_console(&st).await;
    let r = a
        .client
        .post(st.gw.at("/auth/logout"))
        .header("X-CSRF-Token", &csrf)
        .header("Origin", &st.gw.url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let redirect = v["redirect"].as_str().unwrap();
    let id_token = reqwest::Url::parse(redirect)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "id_token_hint")
        .map(|(_, v)| v.into_owned())
        .expect("the logout hands the ID token to the IdP");
    let sid = decode_jwt(&id_token).unwrap().1["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = |t: String| {
        let url = st.gw.at("/v1/sandboxes");
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        bearer(id_token.clone()).await,
        401,
        "the handed-out ID token"
    );
    let (jwk, kid, mut claims) = signing(&st);
    claims["sid"] = json!(sid);
    let same_session = sign(&jwk, &kid, &claims);
    claims["sid"] = json!("another-session");
    let other_session = sign(&jwk, &kid, &claims);
    assert_eq!(bearer(other_session).await, 200, "another session's token");
    assert_eq!(
        bearer(same_session).await,
        401,
        "the logged-out session's token"
    );
    assert!(!st.gw.exposes(&id_token));
}

/// The IdP's signing key and valid access-token claims for alice.
pub(crate) fn signing(st: &OidcStack) -> (Value, String, Value) {
    let jwk = st.idp.private_jwks().unwrap()["keys"][0].clone();
    let kid = jwk["kid"].as_str().unwrap().to_string();
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": st.idp.issuer, "aud": st.idp.api_audience, "sub": "alice", "team": "team-a", "groups": ["sandbox-operators"], "iat": now, "exp": now + 300});
    (jwk, kid, claims)
}

/// Signs `claims` RS256 with a private RSA JWK under `kid`, `typ` `at+jwt`.
pub(crate) fn sign(jwk: &Value, kid: &str, claims: &Value) -> String {
    sign_typed(jwk, kid, Some("at+jwt"), claims)
}

/// Signs `claims` RS256 with a private RSA JWK under `kid` and `typ`.
pub(crate) fn sign_typed(jwk: &Value, kid: &str, typ: Option<&str>, claims: &Value) -> String {
    use data_encoding::BASE64URL_NOPAD;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let n = |f: &str| {
        rsa::BigUint::from_bytes_be(
            &BASE64URL_NOPAD
                .decode(jwk[f].as_str().unwrap().as_bytes())
                .unwrap(),
        )
    };
    let key =
        rsa::RsaPrivateKey::from_components(n("n"), n("e"), n("d"), vec![n("p"), n("q")]).unwrap();
    let der = key.to_pkcs1_der().unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_string());
    header.typ = typ.map(str::to_string);
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes()),
    )
    .unwrap()
}

/// A user in an IdP group named `service_admin` gets no role from that name: only
/// `[authz.group_roles]` maps groups (finding 8).
#[tokio::test]
async fn idp_group_named_like_a_role_grants_nothing() {
    let users = json!({"mallory": {"team": "team-z", "groups": ["service_admin", "operator"]}});
    let st = OidcStack::start_with_users("", "", Some(users))
        .await
        .unwrap();
    let m = login(&st.gw.url, &st.idp, "mallory", "/console/")
        .await
        .unwrap();
    let v: Value = m
        .client
        .get(st.gw.at("/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["role"], "read_only", "{v}");
    let (s, _) = send(&m.client, "GET", &st.gw.at("/v1/pools"), None).await;
    assert_eq!(s, 403, "no service_admin route");
}

/// A planted twin of the session cookie (a sandbox or a sibling port set one with a more
/// specific path, so the browser sends it first) fixes no session: a request with two
/// session cookies is refused.
#[tokio::test]
async fn duplicate_session_cookies_are_refused() {
    let st = OidcStack::start("", "").await.unwrap();
    let alice = login(&st.gw.url, &st.idp, "alice", "/console/")
        .await
        .unwrap();
    let bob = login(&st.gw.url, &st.idp, "bob", "/console/")
        .await
        .unwrap();
    let me = |cookie: String| {
        let url = st.gw.at("/auth/me");
        async move {
            let r = reqwest::Client::new()
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, v) = me(alice.cookie_header()).await;
    assert_eq!((s, v["subject"].as_str()), (200, Some("alice")));
    let fixed = format!("{}; {}", bob.cookie_header(), alice.cookie_header());
    let (s, v) = me(fixed).await;
    assert_eq!(s, 401, "a planted session must not win: {v}");
    assert_eq!(v["code"], "GATEWAY::SESSION_AMBIGUOUS");
}

/// Every proxied request carries the gateway-signed caller assertion, verifiable with the
/// key at `/.well-known/jwks.json`; one a client sends is replaced, never forwarded.
#[tokio::test]
async fn proxied_requests_carry_a_verified_caller_assertion() {
    let t = Arena::start().await;
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(t.st.gw.at("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJjYXJvbCJ9.";
    let body = alice()
        .get(t.sandbox(&t.a1, "/proxy/8080/whoami"))
        .header("X-Gatehouse-Caller", forged)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !body.contains(forged),
        "a client's assertion reached the sandbox: {body}"
    );
    let token = body
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-gatehouse-caller")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no caller assertion reached the sandbox: {body}"));
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("gatehouse-caller+jwt"));
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    v.set_audience(&[&t.a1]);
    v.set_issuer(&["gatehouse"]);
    let claims = jsonwebtoken::decode::<Value>(&token, &key, &v)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["team"], "team-a");
    assert_eq!(claims["role"], "operator");
    let ttl = claims["exp"].as_i64().unwrap() - chrono::Utc::now().timestamp();
    assert!((1..=60).contains(&ttl), "short-lived: {ttl}");
    // Not valid for another sandbox.
    v.set_audience(&[&t.c1]);
    assert!(jsonwebtoken::decode::<Value>(&token, &key, &v).is_err());
}
