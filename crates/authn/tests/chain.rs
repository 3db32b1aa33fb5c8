//! The production chain (API key → trusted headers): order, conflicts, fail-closed.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use gatehouse_authn::{
    sha256_hex, strip_identity_headers, ApiKeyAuthenticator, ApiKeyConfig, AuthError, AuthMethod,
    Authenticator, Chain, Principal, RequestView, SecretString, TrustedHeaderAuthenticator,
    TrustedHeaderConfig,
};
use http::{HeaderMap, HeaderValue};
use std::net::IpAddr;

const BACKEND: &str = "the-backend-key-0001";
const CI: &str = "the-ci-key-0002";

fn chain() -> Chain {
    let keys = [ApiKeyConfig {
        name: "ci".into(),
        sha256: Some(sha256_hex(CI)),
        env: None,
        role: "operator".into(),
        team: Some("team-ci".into()),
        kind: Default::default(),
    }];
    let api = ApiKeyAuthenticator::new(Some(SecretString::new(BACKEND)), &keys, &|_| None).unwrap();
    let th = TrustedHeaderAuthenticator::new(TrustedHeaderConfig {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..TrustedHeaderConfig::default()
    })
    .unwrap();
    let list: Vec<Box<dyn Authenticator>> = vec![Box::new(api), Box::new(th)];
    Chain::new(list)
}

fn req(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_static(v));
    }
    h
}

async fn run(peer: &str, h: &HeaderMap) -> Result<Principal, AuthError> {
    let peer: IpAddr = peer.parse().unwrap();
    chain()
        .authenticate(&RequestView {
            peer: Some(peer),
            headers: h,
        })
        .await
}

const PROXY: &str = "127.0.0.1";
const OUTSIDER: &str = "203.0.113.9";

#[tokio::test]
async fn order_is_api_key_then_trusted_header() {
    assert_eq!(chain().names(), ["api_key", "trusted_header"]);
}

#[tokio::test]
async fn user_from_trusted_proxy() {
    let p = run(PROXY, &req(&[("x-opensandbox-user", "alice")]))
        .await
        .unwrap();
    assert_eq!(p.method, AuthMethod::TrustedHeader);
    assert_eq!(p.subject, "alice");
}

#[tokio::test]
async fn a_right_key_wins_over_identity_headers() {
    let h = req(&[
        ("open-sandbox-api-key", CI),
        ("x-opensandbox-user", "alice"),
    ]);
    let p = run(PROXY, &h).await.unwrap();
    assert_eq!(p.method, AuthMethod::ApiKey);
    assert_eq!(p.subject, "key:ci");
    let h = req(&[
        ("open-sandbox-api-key", BACKEND),
        ("x-opensandbox-user", "alice"),
    ]);
    assert!(run(PROXY, &h).await.unwrap().passthrough());
}

#[tokio::test]
async fn a_wrong_key_is_rejected_never_retried_as_a_user() {
    let h = req(&[
        ("open-sandbox-api-key", "wrong"),
        ("x-opensandbox-user", "alice"),
    ]);
    assert_eq!(run(PROXY, &h).await.unwrap_err(), AuthError::InvalidApiKey);
}

#[tokio::test]
async fn trusted_proxy_without_user_fails_closed() {
    let e = run(PROXY, &req(&[("x-opensandbox-team", "t")]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "GATEWAY::MISSING_IDENTITY");
    let e = run(PROXY, &HeaderMap::new()).await.unwrap_err();
    assert_eq!(e.code(), "GATEWAY::MISSING_IDENTITY");
}

#[tokio::test]
async fn spoofed_headers_from_an_untrusted_peer_without_key_are_anonymous() {
    let mut h = req(&[
        ("x-opensandbox-user", "admin"),
        ("x-opensandbox-roles", "service_admin"),
        ("x-opensandbox-team", "everyone"),
    ]);
    let p = run(OUTSIDER, &h).await.unwrap();
    assert!(p.is_anonymous());
    assert_eq!(p.method, AuthMethod::None);
    // And the gateway strips them before forwarding.
    let th = TrustedHeaderAuthenticator::new(TrustedHeaderConfig::default()).unwrap();
    strip_identity_headers(&mut h, th.identity_header_names());
    assert!(h.is_empty());
}

#[tokio::test]
async fn keys_still_work_from_untrusted_peers() {
    let h = req(&[
        ("open-sandbox-api-key", CI),
        ("x-opensandbox-user", "admin"),
    ]);
    assert_eq!(run(OUTSIDER, &h).await.unwrap().subject, "key:ci");
}
