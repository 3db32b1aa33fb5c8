//! The development IdP (`idp/server.mjs`) on its own, one behaviour per test, each with its
//! own IdP: discovery, the code flow with PKCE for each user through its login form, the
//! claims of its ID and access tokens, refused requests (no PKCE, unregistered redirect
//! URI, wrong secret, unknown user), key rotation across a restart, and back-channel logout
//! delivery to a stand-in receiver.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::flow::query_param;
use gatehouse_tests::idp::{Idp, IdpOptions, TEST_REDIRECT_URI, USERS};
use gatehouse_tests::login::{
    browser, decode_jwt, idp_logout_in, tokens_for, tokens_in, tokens_with_scope,
};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn groups(claims: &Value) -> Vec<String> {
    claims["groups"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn start() -> Idp {
    Idp::start(IdpOptions::default()).await.unwrap()
}

/// The discovery document names the endpoints, PKCE S256, back-channel logout and RS256;
/// one signing key is published, without its private part.
#[tokio::test]
async fn discovery_and_published_keys() {
    let idp = start().await;
    let d = &idp.discovery;
    assert_eq!(d["issuer"], idp.issuer.as_str());
    for ep in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "end_session_endpoint",
    ] {
        assert!(
            d[ep].as_str().unwrap().starts_with(&idp.issuer),
            "{ep}: {d}"
        );
    }
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(d["backchannel_logout_session_supported"], true);
    assert!(d["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("RS256")));
    let ready = reqwest::get(idp.at("/__dev/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let kids = idp.kids().await.unwrap();
    assert_eq!(kids.len(), 1, "{kids:?}");
    let public = idp.jwks().await.unwrap();
    assert!(
        public["keys"][0].get("d").is_none(),
        "the public JWKS leaks a private key"
    );
    assert_eq!(
        idp.private_jwks().unwrap()["keys"][0]["kid"],
        kids[0].as_str()
    );
}

/// Each user's ID token and access token carry their claims, signed with the key.
#[tokio::test]
async fn each_user_gets_id_and_access_token_claims() {
    let idp = start().await;
    let kid = idp.kids().await.unwrap()[0].clone();
    for (user, team, user_groups) in USERS {
        let t = tokens_for(&idp, user, TEST_REDIRECT_URI).await.unwrap();
        let (h, c) = decode_jwt(&t.id_token).unwrap();
        assert_eq!(
            (&h["alg"], &h["kid"]),
            (&json!("RS256"), &json!(kid)),
            "{h}"
        );
        assert_eq!(c["iss"], idp.issuer.as_str(), "{c}");
        assert_eq!(c["aud"], idp.client_id.as_str(), "{c}");
        assert_eq!((&c["sub"], &c["team"]), (&json!(user), &json!(team)), "{c}");
        assert_eq!(groups(&c), user_groups, "{c}");
        assert_eq!(c["email"], format!("{user}@example.test"), "{c}");
        assert_eq!(c["nonce"], t.nonce.as_str(), "{c}");
        assert!(
            c["exp"].as_i64().unwrap() > chrono::Utc::now().timestamp(),
            "{c}"
        );
        let (h, a) = decode_jwt(&t.access_token).unwrap();
        assert_eq!(
            (&h["alg"], &h["kid"]),
            (&json!("RS256"), &json!(kid)),
            "{h}"
        );
        assert_eq!(h["typ"], "at+jwt", "{h}");
        assert_eq!(a["iss"], idp.issuer.as_str(), "{a}");
        assert_eq!(a["aud"], idp.api_audience.as_str(), "{a}");
        assert_eq!((&a["sub"], &a["team"]), (&json!(user), &json!(team)), "{a}");
        assert_eq!(a["client_id"], idp.client_id.as_str(), "{a}");
        assert_eq!(groups(&a), user_groups, "{a}");
        assert_eq!(a["scope"], "openid profile email", "{a}");
        assert!(t.expires_in > 0);
    }
}

/// The groups/team scopes are accepted and change nothing in the claims; a plain `openid`
/// request still gets team and groups (they ride on `openid`), not the profile or email
/// claims.
#[tokio::test]
async fn scopes_decide_profile_claims_not_team_or_groups() {
    let idp = start().await;
    let all = "openid profile email groups team";
    let t = tokens_with_scope(&idp, "alice", TEST_REDIRECT_URI, all)
        .await
        .unwrap();
    let (_, c) = decode_jwt(&t.id_token).unwrap();
    assert_eq!(c["team"], "team-a");
    assert!(groups(&c).contains(&"sandbox-operators".to_string()));
    let t = tokens_with_scope(&idp, "bob", TEST_REDIRECT_URI, "openid")
        .await
        .unwrap();
    let (h, c) = decode_jwt(&t.id_token).unwrap();
    assert!(h.get("typ").is_none(), "{h}");
    assert_eq!(c["sub"], "bob", "{c}");
    assert_eq!(c["team"], "team-a", "{c}");
    assert_eq!(groups(&c), ["sandbox-viewers"], "{c}");
    assert!(c.get("email").is_none() && c.get("name").is_none(), "{c}");
    let (_, a) = decode_jwt(&t.access_token).unwrap();
    assert_eq!(a["scope"], "openid", "{a}");
    assert_eq!(a["team"], "team-a", "{a}");
}

/// Rotation: a new first key, the old one still published, new tokens use the new kid; a
/// restart without rotation keeps the keys.
#[tokio::test]
async fn rotation_signs_with_a_new_key_and_keeps_the_old() {
    let mut idp = start().await;
    let first_kid = idp.kids().await.unwrap()[0].clone();
    idp.restart(true).await.unwrap();
    let kids = idp.kids().await.unwrap();
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert_ne!(kids[0], first_kid);
    assert_eq!(kids[1], first_kid);
    let t = tokens_for(&idp, "alice", TEST_REDIRECT_URI).await.unwrap();
    let (h, c) = decode_jwt(&t.id_token).unwrap();
    assert_eq!(h["kid"], kids[0].as_str());
    assert_eq!(c["sub"], "alice");
    let (h, _) = decode_jwt(&t.access_token).unwrap();
    assert_eq!(h["kid"], kids[0].as_str());
    idp.restart(false).await.unwrap();
    assert_eq!(idp.kids().await.unwrap(), kids);
}

/// An authorization request as the client, with `extra` parameters.
async fn authorize(idp: &Idp, extra: &[(&str, &str)]) -> reqwest::Response {
    let (client, _jar) = browser().unwrap();
    let mut q = vec![
        ("client_id", idp.client_id.as_str()),
        ("response_type", "code"),
        ("scope", "openid"),
    ];
    q.extend_from_slice(extra);
    client
        .get(idp.endpoint("authorization_endpoint").unwrap())
        .query(&q)
        .send()
        .await
        .unwrap()
}

/// No PKCE: the IdP redirects back with an error; an unregistered redirect URI gets an
/// error page, no redirect.
#[tokio::test]
async fn authorization_without_pkce_or_to_an_unknown_uri_is_refused() {
    let idp = start().await;
    let no_pkce = [
        ("redirect_uri", TEST_REDIRECT_URI),
        ("state", "s"),
        ("nonce", "n"),
    ];
    let r = authorize(&idp, &no_pkce).await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(TEST_REDIRECT_URI), "{loc}");
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("invalid_request"),
        "{loc}"
    );
    let unknown_uri = [
        ("redirect_uri", "http://127.0.0.1:2/evil"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ];
    assert_eq!(authorize(&idp, &unknown_uri).await.status(), 400);
}

/// An unknown user cannot sign in; a wrong client secret is refused at the token endpoint.
#[tokio::test]
async fn unknown_users_and_wrong_client_secrets_are_refused() {
    let idp = start().await;
    let err = tokens_for(&idp, "mallory", TEST_REDIRECT_URI)
        .await
        .expect_err("mallory signed in");
    assert!(
        format!("{err:#}").contains("error=access_denied"),
        "{err:#}"
    );
    let (client, _jar) = browser().unwrap();
    let r = client
        .post(idp.endpoint("token_endpoint").unwrap())
        .basic_auth(&idp.client_id, Some("wrong"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "nope"),
            ("redirect_uri", TEST_REDIRECT_URI),
            ("code_verifier", "x".repeat(43).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

/// A one-shot HTTP receiver for back-channel logout POSTs: answers 200 and hands over the
/// request body.
async fn receiver() -> (String, tokio::sync::mpsc::Receiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/auth/backchannel-logout",
        listener.local_addr().unwrap()
    );
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(i) = text.find("\r\n\r\n") {
                        let len = text[..i]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())
                                    .flatten()
                            })
                            .unwrap_or(0);
                        if buf.len() >= i + 4 + len {
                            let body =
                                String::from_utf8_lossy(&buf[i + 4..i + 4 + len]).to_string();
                            let _ = sock
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                .await;
                            let _ = tx.send(body).await;
                            break;
                        }
                    }
                }
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn backchannel_logout_is_delivered() {
    let (url, mut rx) = receiver().await;
    let idp = Idp::start(IdpOptions {
        backchannel_logout_uri: Some(url.clone()),
        ..IdpOptions::default()
    })
    .await
    .unwrap();

    // Sign in through the IdP's form in one browser, then log out of the IdP in it.
    let (client, _jar) = browser().unwrap();
    let t = tokens_in(&client, &idp, "bob", TEST_REDIRECT_URI, "openid")
        .await
        .unwrap();
    let (_, id) = decode_jwt(&t.id_token).unwrap();
    assert_eq!(id["sub"], "bob");
    let sid = id["sid"].as_str().unwrap().to_string();
    // A second sign-in in the same browser rides on the IdP session (no form; still bob).
    let again = tokens_in(&client, &idp, "alice", TEST_REDIRECT_URI, "openid")
        .await
        .unwrap();
    let (_, id2) = decode_jwt(&again.id_token).unwrap();
    assert_eq!(id2["sub"], "bob");
    assert_eq!(id2["sid"], sid.as_str());
    assert!(idp.backchannel_deliveries().is_empty());

    idp_logout_in(&client, &idp).await.unwrap();

    let body = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("no back-channel logout within 5 s")
        .unwrap();
    let token = query_param(&format!("http://x/?{body}"), "logout_token").expect(&body);
    let (h, c) = decode_jwt(&token).unwrap();
    assert_eq!(h["typ"], "logout+jwt", "{h}");
    assert_eq!(h["alg"], "RS256", "{h}");
    assert_eq!(c["iss"], idp.issuer.as_str(), "{c}");
    assert_eq!(c["aud"], idp.client_id.as_str(), "{c}");
    assert_eq!(c["sub"], "bob", "{c}");
    assert_eq!(c["sid"], sid.as_str(), "{c}");
    assert!(
        c["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object(),
        "{c}"
    );
    assert!(c.get("nonce").is_none(), "{c}");
    assert!(
        c["jti"].is_string() && c["iat"].is_i64() && c["exp"].is_i64(),
        "{c}"
    );

    let deliveries = idp.backchannel_deliveries();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0]["msg"], "backchannel logout delivered");
    assert_eq!(deliveries[0]["sub"], "bob");
    assert_eq!(idp.outgoing_requests(), vec![(url, 200)]);

    // The IdP session is gone: the next sign-in shows the form again.
    let t = tokens_in(&client, &idp, "carol", TEST_REDIRECT_URI, "openid")
        .await
        .unwrap();
    let (_, id) = decode_jwt(&t.id_token).unwrap();
    assert_eq!(id["sub"], "carol");
}
