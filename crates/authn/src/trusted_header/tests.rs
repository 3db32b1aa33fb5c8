//! Tests of the trusted-header authenticator.

use super::*;

fn cfg(proxies: &[&str]) -> TrustedHeaderConfig {
    TrustedHeaderConfig {
        trusted_proxies: proxies.iter().map(|p| parse_proxy(p).unwrap()).collect(),
        ..TrustedHeaderConfig::default()
    }
}

fn authn() -> TrustedHeaderAuthenticator {
    TrustedHeaderAuthenticator::new(cfg(&["10.0.0.0/8", "fd00::/8"])).unwrap()
}

fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_bytes(v).unwrap(),
        );
    }
    h
}

async fn run(peer: &str, h: &HeaderMap) -> Result<Option<Principal>, AuthError> {
    authn()
        .authenticate(&RequestView {
            peer: Some(peer.parse().unwrap()),
            headers: h,
        })
        .await
}

#[tokio::test]
async fn trusted_peer_full_identity() {
    let h = headers(&[
        ("X-OpenSandbox-User", b"alice@example.com"),
        ("X-OpenSandbox-Team", b"team-a"),
        ("X-OpenSandbox-Roles", b" operators , ,devs,operators"),
        ("x-opensandbox-roles", b"admins"),
    ]);
    let p = run("10.1.2.3", &h).await.unwrap().unwrap();
    assert_eq!(p.kind, PrincipalKind::User);
    assert_eq!(p.subject, "alice@example.com");
    assert_eq!(p.team.as_deref(), Some("team-a"));
    assert_eq!(p.groups, ["operators", "devs", "admins"]);
    assert_eq!(p.role, None);
    assert_eq!(p.method, AuthMethod::TrustedHeader);
    assert_eq!(p.key_name, None);
    assert!(!p.passthrough());
}

#[tokio::test]
async fn user_only_and_utf8_user() {
    let h = headers(&[("x-opensandbox-user", "José Ñúñez".as_bytes())]);
    let p = run("10.0.0.1", &h).await.unwrap().unwrap();
    assert_eq!(p.subject, "José Ñúñez");
    assert_eq!(p.team, None);
    assert!(p.groups.is_empty());
    // A blank team is no team.
    let h = headers(&[
        ("x-opensandbox-user", b"bob"),
        ("x-opensandbox-team", b"  "),
    ]);
    assert_eq!(run("10.0.0.1", &h).await.unwrap().unwrap().team, None);
}

#[tokio::test]
async fn untrusted_or_unknown_peer_is_not_mine() {
    let h = headers(&[("x-opensandbox-user", b"mallory")]);
    for peer in [
        "192.168.1.1",
        "11.0.0.1",
        "::1",
        "fe80::1",
        "::ffff:192.168.1.1",
    ] {
        assert_eq!(run(peer, &h).await.unwrap(), None, "{peer}");
    }
    let unknown = authn()
        .authenticate(&RequestView {
            peer: None,
            headers: &h,
        })
        .await;
    assert_eq!(unknown.unwrap(), None);
    // No proxies configured: nobody is trusted.
    let none = TrustedHeaderAuthenticator::new(TrustedHeaderConfig::default()).unwrap();
    assert!(!none.is_trusted("127.0.0.1".parse().unwrap()));
}

#[tokio::test]
async fn ipv4_mapped_ipv6_matches_ipv4_cidrs() {
    let h = headers(&[("x-opensandbox-user", b"alice")]);
    let p = run("::ffff:10.0.0.1", &h).await.unwrap().unwrap();
    assert_eq!(p.subject, "alice");
    assert!(run("fd00::5", &h).await.unwrap().is_some());
}

#[tokio::test]
async fn missing_or_empty_user_is_rejected_not_anonymous() {
    for h in [
        headers(&[]),
        headers(&[("x-opensandbox-team", b"team-a")]),
        headers(&[("x-opensandbox-user", b"")]),
        headers(&[("x-opensandbox-user", b"   ")]),
    ] {
        let e = run("10.0.0.1", &h).await.unwrap_err();
        assert_eq!(
            e,
            AuthError::MissingIdentity {
                header: "X-OpenSandbox-User".into()
            }
        );
        assert_eq!(e.code(), "GATEWAY::MISSING_IDENTITY");
    }
}

#[tokio::test]
async fn invalid_values_are_rejected_without_echo() {
    let long = "a".repeat(MAX_IDENTITY_LEN + 1);
    let cases: Vec<(HeaderMap, &str, &str)> = vec![
        (
            headers(&[("x-opensandbox-user", long.as_bytes())]),
            "X-OpenSandbox-User",
            "longer than 256 bytes",
        ),
        (
            headers(&[("x-opensandbox-user", b"bad\tname")]),
            "X-OpenSandbox-User",
            "contains control characters",
        ),
        (
            headers(&[("x-opensandbox-user", b"\xff\xfe")]),
            "X-OpenSandbox-User",
            "not valid UTF-8",
        ),
        (
            headers(&[("x-opensandbox-user", b"a"), ("x-opensandbox-user", b"b")]),
            "X-OpenSandbox-User",
            "sent more than once",
        ),
        (
            headers(&[
                ("x-opensandbox-user", b"a"),
                ("x-opensandbox-team", "t\u{85}".as_bytes()),
            ]),
            "X-OpenSandbox-Team",
            "contains control characters",
        ),
        (
            headers(&[
                ("x-opensandbox-user", b"a"),
                ("x-opensandbox-team", long.as_bytes()),
            ]),
            "X-OpenSandbox-Team",
            "longer than 256 bytes",
        ),
        (
            headers(&[
                ("x-opensandbox-user", b"a"),
                ("x-opensandbox-roles", b"\xc3"),
            ]),
            "X-OpenSandbox-Roles",
            "not valid UTF-8",
        ),
        (
            headers(&[
                ("x-opensandbox-user", b"a"),
                ("x-opensandbox-roles", format!("ok,{long}").as_bytes()),
            ]),
            "X-OpenSandbox-Roles",
            "a role is longer than 256 bytes",
        ),
        (
            headers(&[
                ("x-opensandbox-user", b"a"),
                ("x-opensandbox-roles", "r,".repeat(2049).as_bytes()),
            ]),
            "X-OpenSandbox-Roles",
            "longer than 4096 bytes",
        ),
    ];
    for (h, header, reason) in cases {
        let e = run("10.0.0.1", &h).await.unwrap_err();
        assert_eq!(
            e,
            AuthError::InvalidIdentity {
                header: header.into(),
                reason
            }
        );
        assert_eq!(e.code(), "GATEWAY::INVALID_IDENTITY");
        assert!(!e.message().contains("bad") && !e.message().contains(&long));
    }
}

#[test]
fn config_defaults_and_parsing() {
    let c: TrustedHeaderConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(c, TrustedHeaderConfig::default());
    assert_eq!(c.user_header, "X-OpenSandbox-User");
    assert_eq!(c.team_header, "X-OpenSandbox-Team");
    assert_eq!(c.roles_header, "X-OpenSandbox-Roles");
    assert!(c.trusted_proxies.is_empty());

    let c: TrustedHeaderConfig = serde_json::from_str(
        r#"{"user_header":"X-User","trusted_proxies":["127.0.0.1/32","10.0.0.7","::1"]}"#,
    )
    .unwrap();
    assert_eq!(c.user_header, "X-User");
    assert_eq!(c.team_header, "X-OpenSandbox-Team");
    let shown: Vec<String> = c.trusted_proxies.iter().map(|n| n.to_string()).collect();
    assert_eq!(shown, ["127.0.0.1/32", "10.0.0.7/32", "::1/128"]);

    let e =
        serde_json::from_str::<TrustedHeaderConfig>(r#"{"trusted_proxies":["nope"]}"#).unwrap_err();
    assert!(e
        .to_string()
        .contains("'nope' is not an IP address or CIDR"));
    assert!(serde_json::from_str::<TrustedHeaderConfig>(r#"{"user":"X"}"#).is_err());
}

#[test]
fn config_errors_name_the_field() {
    let bad = |c: TrustedHeaderConfig| TrustedHeaderAuthenticator::new(c).unwrap_err().to_string();
    let d = TrustedHeaderConfig::default;
    assert_eq!(
        bad(TrustedHeaderConfig {
            user_header: "bad header".into(),
            ..d()
        }),
        "auth.trusted_header.user_header: 'bad header' is not a valid header name"
    );
    assert!(bad(TrustedHeaderConfig {
        team_header: String::new(),
        ..d()
    })
    .starts_with("auth.trusted_header.team_header"));
    assert_eq!(
        bad(TrustedHeaderConfig {
            team_header: "x-opensandbox-user".into(),
            ..d()
        }),
        "auth.trusted_header.team_header: must differ from user_header"
    );
    assert_eq!(
        bad(TrustedHeaderConfig {
            roles_header: "X-OpenSandbox-Team".into(),
            ..d()
        }),
        "auth.trusted_header.roles_header: must differ from team_header"
    );
    assert_eq!(
        bad(TrustedHeaderConfig {
            roles_header: "OPEN-SANDBOX-API-KEY".into(),
            ..d()
        }),
        "auth.trusted_header.roles_header: must not be the API key header"
    );
}

#[test]
fn strip_removes_every_identity_value_and_nothing_else() {
    let a = authn();
    let names: Vec<&str> = a
        .identity_header_names()
        .iter()
        .map(|n| n.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "x-opensandbox-user",
            "x-opensandbox-team",
            "x-opensandbox-roles"
        ]
    );
    let mut h = headers(&[
        ("x-opensandbox-user", b"a"),
        ("X-OpenSandbox-User", b"b"),
        ("x-opensandbox-team", b"t"),
        ("x-opensandbox-roles", b"r"),
        ("x-opensandbox-roles", b"s"),
        ("content-type", b"application/json"),
        ("open-sandbox-api-key", b"k"),
    ]);
    strip_identity_headers(&mut h, a.identity_header_names());
    assert_eq!(h.len(), 2);
    assert!(h.contains_key("content-type") && h.contains_key("open-sandbox-api-key"));

    let mut h = headers(&[("x-opensandbox-user", b"a")]);
    a.strip(&mut h);
    assert!(h.is_empty());
    // Works with an owned list too.
    let owned: Vec<HeaderName> = a.identity_header_names().into_iter().cloned().collect();
    let mut h = headers(&[("x-opensandbox-team", b"t")]);
    strip_identity_headers(&mut h, &owned);
    assert!(h.is_empty());
}
