//! Console users through OIDC against the real development IdP (`oidc-provider`): headless
//! logins, roles and scope per user, session cookies (tampered, unknown, expired), CSRF,
//! `return_to` open-redirect attempts, bearer JWTs (bad iss/aud, expired, `alg: none`,
//! HS256 signed with the public key, unknown kid), key rotation at the IdP, the IdP going
//! down, back-channel logout, and that tokens and cookies never leak.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use data_encoding::BASE64URL_NOPAD;
use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::idp::{Idp, IdpOptions};
use gatehouse_tests::login::{idp_logout, login, tokens_for, LoginResult};
use gatehouse_tests::{free_port, test_image, wait_for, Backend, BackendOptions};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::{BigUint, RsaPrivateKey};
use serde_json::{json, Value};
use std::time::Duration;

struct Stack {
    backend: Backend,
    gw: Gateway,
    idp: Idp,
}

async fn stack(session_extra: &str) -> Stack {
    let backend = Backend::start(BackendOptions::default()).await.unwrap();
    let port = free_port();
    let gw_url = format!("http://127.0.0.1:{port}");
    let idp = Idp::start(IdpOptions::for_gateway(&gw_url)).await.unwrap();
    let extra = format!(
        "[oidc]\nissuer = \"{issuer}\"\nclient_id = \"{client}\"\nclient_secret = \"{secret}\"\n\
         redirect_url = \"{{gateway}}/auth/callback\"\njwks_min_refresh_seconds = 1\nleeway_seconds = 2\n\n\
         [oidc.session]\n{session_extra}\n",
        issuer = idp.issuer,
        client = idp.client_id,
        secret = idp.client_secret,
    );
    let gw = Gateway::start_on(port, &backend.url, &backend.api_key, &extra)
        .await
        .unwrap();
    Stack { backend, gw, idp }
}

async fn me(c: &reqwest::Client, gw: &Gateway) -> (u16, Value) {
    let r = c.get(gw.at("/auth/me")).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn body() -> Value {
    json!({"image": {"uri": test_image()}, "entrypoint": ["sleep", "600"], "timeout": 600})
}

/// A POST from the console: CSRF token and same-origin Origin.
async fn console_post(
    l: &LoginResult,
    gw: &Gateway,
    path: &str,
    body: &Value,
    csrf: Option<&str>,
    origin: Option<&str>,
) -> (u16, Value) {
    let mut rb = l.client.post(gw.at(path)).json(body);
    if let Some(t) = csrf {
        rb = rb.header("X-CSRF-Token", t);
    }
    if let Some(o) = origin {
        rb = rb.header("Origin", o);
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Signs `claims` with `key` (a private JWK of the IdP, or any RSA JWK).
fn sign(jwk: &Value, kid: &str, claims: &Value) -> String {
    let n = |f: &str| {
        BigUint::from_bytes_be(
            &BASE64URL_NOPAD
                .decode(jwk[f].as_str().unwrap().as_bytes())
                .unwrap(),
        )
    };
    let key = RsaPrivateKey::from_components(n("n"), n("e"), n("d"), vec![n("p"), n("q")]).unwrap();
    let der = key.to_pkcs1_der().unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der.as_bytes())).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn bearer_status(gw: &Gateway, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(gw.at("/v1/sandboxes"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn console_users_sessions_csrf_and_logout() {
    let st = stack("").await;
    let gw = &st.gw;
    let origin = gw.url.clone();

    // Each user logs in over HTTP through the provider's own form.
    let alice = login(&gw.url, &st.idp, "alice", "/console/sandboxes")
        .await
        .unwrap();
    assert!(
        alice.final_location.ends_with("/console/sandboxes"),
        "{}",
        alice.final_location
    );
    let bob = login(&gw.url, &st.idp, "bob", "/console/").await.unwrap();
    let carol = login(&gw.url, &st.idp, "carol", "/console/").await.unwrap();
    let mut csrf = std::collections::HashMap::new();
    for (who, l, team, role) in [
        ("alice", &alice, "team-a", "operator"),
        ("bob", &bob, "team-a", "read_only"),
        ("carol", &carol, "team-b", "operator"),
    ] {
        let (s, v) = me(&l.client, gw).await;
        assert_eq!(s, 200, "{who}: {v}");
        assert_eq!(v["subject"], who);
        assert_eq!(v["team"], team);
        assert_eq!(v["role"], role, "{who}: {v}");
        assert_eq!(v["authMethod"], "session");
        let perms: Vec<&str> = v["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(
            perms.contains(&"sandbox:create"),
            role == "operator",
            "{who}: {perms:?}"
        );
        assert!(perms.contains(&"sandbox:list"));
        csrf.insert(who, v["csrfToken"].as_str().unwrap().to_string());
    }
    assert_ne!(csrf["alice"], csrf["bob"]);

    // CSRF: mutations on a session need the token and a same-origin Origin.
    let (s, v) = console_post(&alice, gw, "/v1/sandboxes", &body(), None, Some(&origin)).await;
    assert_eq!(
        (s, v["code"].as_str().unwrap_or("")),
        (403, "GATEWAY::CSRF")
    );
    let (s, _) = console_post(
        &alice,
        gw,
        "/v1/sandboxes",
        &body(),
        Some(&csrf["bob"]),
        Some(&origin),
    )
    .await;
    assert_eq!(s, 403, "another session's token");
    let (s, _) = console_post(
        &alice,
        gw,
        "/v1/sandboxes",
        &body(),
        Some(&csrf["alice"]),
        Some("http://evil.example"),
    )
    .await;
    assert_eq!(s, 403, "cross-origin");
    let (s, _) = console_post(
        &alice,
        gw,
        "/v1/sandboxes",
        &body(),
        Some(&csrf["alice"]),
        None,
    )
    .await;
    assert_eq!(s, 403, "no Origin");
    let (s, v) = console_post(
        &alice,
        gw,
        "/v1/sandboxes",
        &body(),
        Some(&csrf["alice"]),
        Some(&origin),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();

    // Roles and scope through the same table as every other principal.
    let v: Value = bob
        .client
        .get(gw.at("/v1/sandboxes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["items"][0]["id"],
        id.as_str(),
        "bob sees team-a's sandbox"
    );
    let v: Value = carol
        .client
        .get(gw.at("/v1/sandboxes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["pagination"]["totalItems"], 0, "carol does not");
    let r = bob
        .client
        .delete(gw.at(&format!("/v1/sandboxes/{id}")))
        .header("X-CSRF-Token", &csrf["bob"])
        .header("Origin", &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = carol
        .client
        .get(gw.at(&format!("/v1/sandboxes/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Tampered, unknown and missing cookies.
    for cookie in [
        format!("gatehouse_session={}x", alice.session_cookie),
        "gatehouse_session=AAAA".to_string(),
    ] {
        let r = reqwest::Client::new()
            .get(gw.at("/auth/me"))
            .header("Cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "GATEWAY::SESSION_EXPIRED");
    }
    assert_eq!(me(&reqwest::Client::new(), gw).await.0, 401);

    // return_to only accepts same-origin relative paths.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for bad in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
        "console",
    ] {
        let url = format!("{}/auth/login?return_to={}", gw.url, form(bad));
        let r = no_redirects.get(url).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.headers().get("location").is_none());
    }

    // Cookies and the Authorization header never reach the backend or a sandbox: the
    // sandbox echoes the request headers it received.
    let script = concat!(
        "printf '%s\\n' 'h=\"\"; while read -r l; do l=${l%$(printf \"\\r\")}; [ -z \"$l\" ] && break; h=\"$h$l|\"; done' ",
        "'printf \"HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nConnection: close\\r\\n\\r\\n%s\" \"$h\"' > /tmp/echo.sh; ",
        "exec nc -ll -p 44772 -e sh /tmp/echo.sh"
    );
    let b =
        json!({"image": {"uri": test_image()}, "entrypoint": ["sh", "-c", script], "timeout": 600});
    let (s, v) = console_post(
        &alice,
        gw,
        "/v1/sandboxes",
        &b,
        Some(&csrf["alice"]),
        Some(&origin),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let web = v["id"].as_str().unwrap().to_string();
    let cookie = format!("gatehouse_session={}; app=1", alice.session_cookie);
    let seen = wait_for("the sandbox echo", Duration::from_secs(30), || async {
        let r = reqwest::Client::new()
            .get(gw.at(&format!("/v1/sandboxes/{web}/proxy/44772/echo")))
            .header("Cookie", &cookie)
            .header("Authorization", "Basic c2VjcmV0")
            .send()
            .await
            .ok()?;
        if r.status() != 200 {
            return None;
        }
        r.text().await.ok()
    })
    .await
    .unwrap();
    let lower = seen.to_ascii_lowercase();
    assert!(lower.contains("get /echo http/1.1"), "{seen}");
    assert!(
        lower.contains("cookie: app=1"),
        "other cookies pass: {seen}"
    );
    assert!(
        !lower.contains("gatehouse_session") && !seen.contains(&alice.session_cookie),
        "the session cookie is stripped: {seen}"
    );
    assert!(
        !lower.contains("authorization") && !lower.contains("open-sandbox-api-key"),
        "no credentials reach the sandbox: {seen}"
    );
    assert!(!lower.contains("x-opensandbox-user"), "{seen}");

    // Logout ends the session and points the browser at the IdP's end-session endpoint.
    let r = alice
        .client
        .post(gw.at("/auth/logout"))
        .header("X-CSRF-Token", &csrf["alice"])
        .header("Origin", &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["redirect"].as_str().unwrap().starts_with(&st.idp.issuer),
        "{v}"
    );
    assert_eq!(me(&alice.client, gw).await.0, 401);

    // Back-channel logout: carol signs out at the IdP, the IdP tells the gateway.
    idp_logout(&carol, &st.idp).await.unwrap();
    wait_for(
        "carol's session to end",
        Duration::from_secs(15),
        || async { (me(&carol.client, gw).await.0 == 401).then_some(()) },
    )
    .await
    .unwrap();
    assert_eq!(
        me(&bob.client, gw).await.0,
        200,
        "other users keep their sessions"
    );

    // Audit events carry the session principal; no token or cookie appears anywhere.
    let events = gw.audit_events();
    assert!(events.iter().any(|e| e["action"] == "sandbox:create"
        && e["principal"]["subject"] == "alice"
        && e["principal"]["auth_method"] == "session"));
    for secret in [
        &alice.session_cookie,
        &bob.session_cookie,
        &carol.session_cookie,
        &csrf["alice"],
    ] {
        assert!(
            !gw.log().contains(secret.as_str()),
            "a session secret leaked into the log"
        );
        assert!(
            !gw.audit_raw().contains(secret.as_str()),
            "a session secret leaked into the audit"
        );
    }
    for id in [&id, &web] {
        reqwest::Client::new()
            .delete(gw.at(&format!("/v1/sandboxes/{id}")))
            .header("OPEN-SANDBOX-API-KEY", &st.backend.api_key)
            .send()
            .await
            .unwrap();
    }
}

fn form(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn bearer_jwts_key_rotation_and_idp_outage() {
    let mut st = stack("").await;
    let gw = &st.gw;
    let cb = format!("{}/auth/callback", gw.url);
    let tokens = tokens_for(&st.idp, "alice", &cb).await.unwrap();
    let (s, v) = bearer_status(gw, &tokens.id_token).await;
    assert_eq!(s, 200, "a valid ID token is accepted as a bearer: {v}");
    let r = reqwest::Client::new()
        .get(gw.at("/auth/me"))
        .bearer_auth(&tokens.id_token)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (
            v["subject"].as_str(),
            v["role"].as_str(),
            v["authMethod"].as_str()
        ),
        (Some("alice"), Some("operator"), Some("bearer"))
    );
    assert!(v["csrfToken"].is_null());
    // Bearer requests are exempt from CSRF.
    let r = reqwest::Client::new()
        .post(gw.at("/v1/sandboxes"))
        .bearer_auth(&tokens.id_token)
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let sid = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Forged and broken tokens.
    let private = st.idp.private_jwks().unwrap();
    let jwk = &private["keys"][0];
    let kid = jwk["kid"].as_str().unwrap();
    let base = json!({"iss": st.idp.issuer, "aud": st.idp.client_id, "sub": "alice", "team": "team-a", "groups": ["sandbox-operators"], "iat": now(), "exp": now() + 300});
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        c
    };
    assert_eq!(
        bearer_status(gw, &sign(jwk, kid, &base)).await.0,
        200,
        "our own signing works"
    );
    let mut cases: Vec<(&str, String)> = vec![
        (
            "wrong iss",
            sign(jwk, kid, &with("iss", json!("http://127.0.0.1:1"))),
        ),
        (
            "wrong aud",
            sign(jwk, kid, &with("aud", json!("someone-else"))),
        ),
        ("expired", sign(jwk, kid, &with("exp", json!(now() - 120)))),
        (
            "not yet valid",
            sign(jwk, kid, &with("nbf", json!(now() + 600))),
        ),
    ];
    let b64 = |v: &Value| BASE64URL_NOPAD.encode(v.to_string().as_bytes());
    cases.push((
        "alg none",
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "kid": kid})),
            b64(&base)
        ),
    ));
    // The classic confusion: HS256 with the provider's public key as the HMAC secret.
    let n = |f: &str| {
        BigUint::from_bytes_be(
            &BASE64URL_NOPAD
                .decode(jwk[f].as_str().unwrap().as_bytes())
                .unwrap(),
        )
    };
    let public_pem = rsa::RsaPublicKey::new(n("n"), n("e"))
        .unwrap()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(kid.to_string());
    cases.push((
        "HS256 with the public key",
        jsonwebtoken::encode(&hs, &base, &EncodingKey::from_secret(public_pem.as_bytes())).unwrap(),
    ));
    let stranger = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let der = stranger.to_pkcs1_der().unwrap();
    let mut unknown = Header::new(Algorithm::RS256);
    unknown.kid = Some("unknown-kid".into());
    cases.push((
        "unknown kid",
        jsonwebtoken::encode(&unknown, &base, &EncodingKey::from_rsa_der(der.as_bytes())).unwrap(),
    ));
    let mut wrong_key = Header::new(Algorithm::RS256);
    wrong_key.kid = Some(kid.to_string());
    cases.push((
        "right kid, wrong key",
        jsonwebtoken::encode(
            &wrong_key,
            &base,
            &EncodingKey::from_rsa_der(der.as_bytes()),
        )
        .unwrap(),
    ));
    cases.push(("garbage", "not.a.jwt".into()));
    for (what, token) in &cases {
        let (s, v) = bearer_status(gw, token).await;
        assert_eq!(s, 401, "{what}: {v}");
        assert_eq!(v["code"], "GATEWAY::INVALID_TOKEN", "{what}");
    }
    // The verified-token cache never outlives a token: `exp` now, so valid for the 2 s of
    // leeway this stack allows, accepted twice (the second time from the cache), then
    // refused once it has expired, although the cache would keep it for a minute.
    let short = sign(jwk, kid, &with("exp", json!(now())));
    assert_eq!(bearer_status(gw, &short).await.0, 200, "short-lived token");
    assert_eq!(bearer_status(gw, &short).await.0, 200, "cached");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (s, v) = bearer_status(gw, &short).await;
    assert_eq!(s, 401, "expired while cached: {v}");

    // Key rotation at the IdP: new tokens carry a new kid; the gateway fetches it.
    let session = login(&gw.url, &st.idp, "bob", "/console/").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    st.idp.restart(true).await.unwrap();
    let rotated = tokens_for(&st.idp, "alice", &cb).await.unwrap();
    let new_kid = gatehouse_tests::login::decode_jwt(&rotated.id_token)
        .unwrap()
        .0["kid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_kid, kid, "the IdP signs with the new key");
    let (s, v) = bearer_status(gw, &rotated.id_token).await;
    assert_eq!(
        s, 200,
        "a token signed with the rotated key is accepted: {v}"
    );
    assert_eq!(
        bearer_status(gw, &tokens.id_token).await.0,
        200,
        "older tokens still verify (old key kept)"
    );
    let carol = login(&gw.url, &st.idp, "carol", "/console/").await.unwrap();
    assert_eq!(
        me(&carol.client, gw).await.0,
        200,
        "logins after rotation work"
    );

    // The IdP goes down: sessions and cached keys keep working.
    st.idp.stop();
    assert_eq!(me(&session.client, gw).await.0, 200);
    assert_eq!(me(&carol.client, gw).await.0, 200);
    assert_eq!(bearer_status(gw, &rotated.id_token).await.0, 200);
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(gw.at("/auth/login"))
        .send()
        .await
        .unwrap();
    assert!(
        r.status() == 302 || r.status() == 502,
        "login start needs the IdP only for discovery: {}",
        r.status()
    );

    for t in [&tokens.id_token, &tokens.access_token, &rotated.id_token] {
        assert!(
            !gw.log().contains(t.as_str()) && !gw.audit_raw().contains(t.as_str()),
            "a token leaked"
        );
    }
    reqwest::Client::new()
        .delete(gw.at(&format!("/v1/sandboxes/{sid}")))
        .header("OPEN-SANDBOX-API-KEY", &st.backend.api_key)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn sessions_expire() {
    let st = stack("absolute_timeout_seconds = 2\nidle_timeout_seconds = 2").await;
    let l = login(&st.gw.url, &st.idp, "alice", "/console/")
        .await
        .unwrap();
    assert_eq!(me(&l.client, &st.gw).await.0, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (s, v) = me(&l.client, &st.gw).await;
    assert_eq!(s, 401, "{v}");
}

/// Bad input on the gateway's own auth routes gets a clear error and creates no session.
#[tokio::test]
async fn auth_routes_refuse_bad_input() {
    let st = stack("").await;
    let gw = &st.gw;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // A callback this browser did not start (no login cookie), or with parts missing.
    for q in ["code=abc&state=forged", "state=only", "code=only", ""] {
        let r = c
            .get(gw.at(&format!("/auth/callback?{q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{q}");
        assert!(
            r.headers().get("set-cookie").is_none(),
            "{q}: no session for a forged callback"
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "GATEWAY::LOGIN_STATE", "{q}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // The IdP reporting an error.
    let r = c
        .get(gw.at("/auth/callback?error=access_denied&state=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Back-channel logout with no token or a forged one (the spec's error shape).
    for body in ["", "logout_token=not.a.jwt", "other=1"] {
        let r = c
            .post(gw.at("/auth/backchannel-logout"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request");
    }
    // Unknown auth routes and logout without a session.
    let r = c.get(gw.at("/auth/nothing")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c.post(gw.at("/auth/logout")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}
