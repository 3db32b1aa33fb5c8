//! Bearer JWTs at the gateway: the IdP's access tokens are accepted, its ID tokens and
//! logout tokens, forged and broken ones are not, a logged-out session's tokens stop
//! working, the verified-token cache never outlives a token, keys rotated at the IdP are
//! fetched, and an IdP outage leaves sessions and cached keys working.

use super::{body, me, stack};
use data_encoding::BASE64URL_NOPAD;
use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::login::{decode_jwt, login, tokens_for, LoginResult, Tokens};
use gatehouse_tests::stacks::OidcStack;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::{BigUint, RsaPrivateKey};
use serde_json::{json, Value};
use std::time::Duration;

/// An RSA component (`n`, `e`, `d`, `p`, `q`) of a JWK.
fn component(jwk: &Value, f: &str) -> BigUint {
    BigUint::from_bytes_be(
        &BASE64URL_NOPAD
            .decode(jwk[f].as_str().unwrap().as_bytes())
            .unwrap(),
    )
}

/// Signs `claims` RS256 with `der` (a PKCS#1 private key) under `kid`, as an access
/// token (`typ: at+jwt`).
fn sign_der(der: &[u8], kid: &str, claims: &Value) -> String {
    sign_der_typed(der, kid, Some("at+jwt"), claims)
}

/// Signs `claims` RS256 with `der` under `kid` with JOSE `typ`.
fn sign_der_typed(der: &[u8], kid: &str, typ: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_string());
    header.typ = typ.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der)).unwrap()
}

/// The PKCS#1 DER of a private JWK (the IdP's, or any RSA JWK).
fn der_of(jwk: &Value) -> Vec<u8> {
    let n = |f: &str| component(jwk, f);
    let key = RsaPrivateKey::from_components(n("n"), n("e"), n("d"), vec![n("p"), n("q")]).unwrap();
    key.to_pkcs1_der().unwrap().as_bytes().to_vec()
}

/// Signs `claims` as an access token with a private JWK.
pub(crate) fn sign(jwk: &Value, kid: &str, claims: &Value) -> String {
    sign_der(&der_of(jwk), kid, claims)
}

/// Signs `claims` with a private JWK under JOSE `typ`.
pub(crate) fn sign_typed(jwk: &Value, kid: &str, typ: Option<&str>, claims: &Value) -> String {
    sign_der_typed(&der_of(jwk), kid, typ, claims)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `GET /v1/sandboxes` with `token` as the bearer.
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

/// alice's tokens from the IdP, for the gateway's registered callback.
async fn alice_tokens(st: &OidcStack) -> Tokens {
    let cb = format!("{}/auth/callback", st.gw.url);
    tokens_for(&st.idp, "alice", &cb).await.unwrap()
}

/// None of `tokens` appears in the gateway's log or audit.
fn assert_no_token_leaked(gw: &Gateway, tokens: &[&str]) {
    for t in tokens {
        assert!(!gw.exposes(t), "a token leaked");
    }
}

/// A valid access token is accepted as a bearer (no CSRF token, exempt from CSRF); the
/// ID token of the same login, valid and signed by the same key, is not (finding 2).
#[tokio::test]
async fn idp_access_token_is_accepted_and_its_id_token_is_not() {
    let st = stack("").await;
    let gw = &st.gw;
    let tokens = alice_tokens(&st).await;
    let (s, v) = bearer_status(gw, &tokens.id_token).await;
    assert_eq!(s, 401, "an ID token is not a bearer credential: {v}");
    assert_eq!(v["code"], "GATEWAY::INVALID_TOKEN");
    let (s, v) = bearer_status(gw, &tokens.access_token).await;
    assert_eq!(s, 200, "a valid access token is accepted as a bearer: {v}");
    let r = reqwest::Client::new()
        .get(gw.at("/auth/me"))
        .bearer_auth(&tokens.access_token)
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
    let r = reqwest::Client::new()
        .post(gw.at("/v1/sandboxes"))
        .bearer_auth(&tokens.id_token)
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no mutation with an ID token");
    let r = reqwest::Client::new()
        .post(gw.at("/v1/sandboxes"))
        .bearer_auth(&tokens.access_token)
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "bearer requests are exempt from CSRF");
    assert_no_token_leaked(gw, &[&tokens.id_token, &tokens.access_token]);
}

/// Tokens the gateway must refuse, named, built from valid `base` claims and the IdP's
/// signing `jwk` under `kid`.
fn forged_tokens(jwk: &Value, kid: &str, base: &Value) -> Vec<(&'static str, String)> {
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        sign(jwk, kid, &c)
    };
    let b64 = |v: &Value| BASE64URL_NOPAD.encode(v.to_string().as_bytes());
    // The classic confusion: HS256 with the provider's public key as the HMAC secret.
    let public_pem = rsa::RsaPublicKey::new(component(jwk, "n"), component(jwk, "e"))
        .unwrap()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(kid.to_string());
    let stranger = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let stranger = stranger.to_pkcs1_der().unwrap();
    vec![
        ("wrong iss", with("iss", json!("http://127.0.0.1:1"))),
        ("wrong aud", with("aud", json!("someone-else"))),
        ("expired", with("exp", json!(now() - 120))),
        ("not yet valid", with("nbf", json!(now() + 600))),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "kid": kid})),
                b64(base)
            ),
        ),
        (
            "HS256 with the public key",
            jsonwebtoken::encode(&hs, base, &EncodingKey::from_secret(public_pem.as_bytes()))
                .unwrap(),
        ),
        (
            "unknown kid",
            sign_der(stranger.as_bytes(), "unknown-kid", base),
        ),
        (
            "right kid, wrong key",
            sign_der(stranger.as_bytes(), kid, base),
        ),
        ("garbage", "not.a.jwt".into()),
        (
            "typ JWT (an ID token's)",
            sign_typed(jwk, kid, Some("JWT"), base),
        ),
        ("no typ", sign_typed(jwk, kid, None, base)),
        (
            "typ logout+jwt",
            sign_typed(jwk, kid, Some("logout+jwt"), base),
        ),
        (
            "at+jwt with a nonce (an ID token)",
            with("nonce", json!("n-1")),
        ),
        (
            "at+jwt with at_hash (an ID token)",
            with("at_hash", json!("x")),
        ),
        (
            "at+jwt with c_hash (an ID token)",
            with("c_hash", json!("x")),
        ),
        (
            "at+jwt with events (a logout token)",
            with(
                "events",
                json!({"http://schemas.openid.net/event/backchannel-logout": {}}),
            ),
        ),
    ]
}

/// The IdP's signing key (its private JWK) and valid claims for alice.
pub(crate) fn signing_key_and_claims(st: &OidcStack) -> (Value, String, Value) {
    let jwk = st.idp.private_jwks().unwrap()["keys"][0].clone();
    let kid = jwk["kid"].as_str().unwrap().to_string();
    let base = json!({"iss": st.idp.issuer, "aud": st.idp.client_id, "sub": "alice", "team": "team-a", "groups": ["sandbox-operators"], "iat": now(), "exp": now() + 300});
    (jwk, kid, base)
}

/// Forged and broken tokens are refused, while a token we sign with the IdP's key works.
#[tokio::test]
async fn forged_and_broken_tokens_are_refused() {
    let st = stack("").await;
    let (jwk, kid, base) = signing_key_and_claims(&st);
    assert_eq!(
        bearer_status(&st.gw, &sign(&jwk, &kid, &base)).await.0,
        200,
        "our own signing works"
    );
    for (what, token) in &forged_tokens(&jwk, &kid, &base) {
        let (s, v) = bearer_status(&st.gw, token).await;
        assert_eq!(s, 401, "{what}: {v}");
        assert_eq!(v["code"], "GATEWAY::INVALID_TOKEN", "{what}");
    }
}

/// The verified-token cache never outlives a token: `exp` now, so valid for the 2 s of
/// leeway this stack allows, accepted twice (the second time from the cache), then refused
/// once it has expired, although the cache would keep it for a minute.
#[tokio::test]
async fn cached_token_is_refused_once_expired() {
    let st = stack("").await;
    let (jwk, kid, mut claims) = signing_key_and_claims(&st);
    claims["exp"] = json!(now());
    let short = sign(&jwk, &kid, &claims);
    assert_eq!(
        bearer_status(&st.gw, &short).await.0,
        200,
        "short-lived token"
    );
    assert_eq!(bearer_status(&st.gw, &short).await.0, 200, "cached");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (s, v) = bearer_status(&st.gw, &short).await;
    assert_eq!(s, 401, "expired while cached: {v}");
}

/// What [`rotate_keys`] leaves: alice's tokens from before the rotation and after, bob's
/// session from before and carol's from after.
struct Rotated {
    before: Tokens,
    after: Tokens,
    bob: LoginResult,
    carol: LoginResult,
}

/// Key rotation at the IdP: new tokens carry a new kid; the gateway fetches it, and
/// tokens signed with the old key and logins after the rotation keep working.
async fn rotate_keys(st: &mut OidcStack) -> Rotated {
    let before = alice_tokens(st).await;
    let old_kid = decode_jwt(&before.access_token).unwrap().0["kid"].clone();
    assert_eq!(bearer_status(&st.gw, &before.access_token).await.0, 200);
    let bob = login(&st.gw.url, &st.idp, "bob", "/console/")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    st.idp.restart(true).await.unwrap();
    let after = alice_tokens(st).await;
    let new_kid = decode_jwt(&after.access_token).unwrap().0["kid"].clone();
    assert_ne!(new_kid, old_kid, "the IdP signs with the new key");
    let (s, v) = bearer_status(&st.gw, &after.access_token).await;
    assert_eq!(
        s, 200,
        "a token signed with the rotated key is accepted: {v}"
    );
    assert_eq!(
        bearer_status(&st.gw, &before.access_token).await.0,
        200,
        "older tokens still verify (old key kept)"
    );
    let carol = login(&st.gw.url, &st.idp, "carol", "/console/")
        .await
        .unwrap();
    assert_eq!(
        me(&carol.client, &st.gw).await.0,
        200,
        "logins after rotation work"
    );
    Rotated {
        before,
        after,
        bob,
        carol,
    }
}

/// Keys rotated at the IdP are fetched; the old ones keep verifying.
#[tokio::test]
async fn rotated_signing_keys_are_fetched_and_old_ones_kept() {
    let mut st = stack("").await;
    let r = rotate_keys(&mut st).await;
    let (b, a) = (&r.before, &r.after);
    assert_no_token_leaked(&st.gw, &[&b.id_token, &b.access_token, &a.id_token]);
}

/// The IdP goes down (after a rotation): sessions and cached keys keep working, and the
/// login start needs the IdP only for discovery.
#[tokio::test]
async fn idp_outage_keeps_sessions_and_cached_keys_working() {
    let mut st = stack("").await;
    let r = rotate_keys(&mut st).await;
    st.idp.stop();
    let gw = &st.gw;
    assert_eq!(me(&r.bob.client, gw).await.0, 200);
    assert_eq!(me(&r.carol.client, gw).await.0, 200);
    assert_eq!(bearer_status(gw, &r.after.access_token).await.0, 200);
    let r2 = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(gw.at("/auth/login"))
        .send()
        .await
        .unwrap();
    assert!(
        r2.status() == 302 || r2.status() == 503,
        "login start needs the IdP only for discovery: {}",
        r2.status()
    );
    let (b, a) = (&r.before, &r.after);
    assert_no_token_leaked(gw, &[&b.id_token, &b.access_token, &a.id_token]);
}
