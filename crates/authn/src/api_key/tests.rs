//! Tests of the API key authenticator.

use super::*;
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

const BACKEND: &str = "backend-secret-0123456789";
const CI: &str = "ci-secret-abcdefghijkl";
const OPS: &str = "ops-secret-zyxwvutsrq";

fn cfg(name: &str, sha256: Option<String>, env: Option<&str>) -> ApiKeyConfig {
    ApiKeyConfig {
        name: name.to_string(),
        sha256,
        env: env.map(str::to_string),
        role: "operator".to_string(),
        team: None,
        kind: Default::default(),
    }
}

fn env(name: &str) -> Option<String> {
    match name {
        "OPS_KEY" => Some(OPS.to_string()),
        "EMPTY_KEY" => Some(String::new()),
        "NEWLINE_KEY" => Some("abc\n".to_string()),
        "SPACE_KEY" => Some(" abc".to_string()),
        _ => None,
    }
}

fn authn() -> ApiKeyAuthenticator {
    let mut ci = cfg("ci-bot", Some(sha256_hex(CI)), None);
    ci.team = Some("team-a".to_string());
    ci.role = "service_admin".to_string();
    let ops = cfg("ops", None, Some("OPS_KEY"));
    ApiKeyAuthenticator::new(Some(SecretString::new(BACKEND)), &[ci, ops], &env).unwrap()
}

fn with_key(key: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "OPEN-SANDBOX-API-KEY",
        HeaderValue::from_bytes(key).unwrap(),
    );
    h
}

fn run(a: &ApiKeyAuthenticator, headers: &HeaderMap) -> Result<Option<Principal>, AuthError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(a.authenticate(&RequestView {
        peer: None,
        headers,
    }))
}

#[test]
fn no_header_is_not_mine() {
    assert_eq!(run(&authn(), &HeaderMap::new()).unwrap(), None);
}

#[test]
fn backend_key_is_passthrough_service_admin() {
    let p = run(&authn(), &with_key(BACKEND.as_bytes()))
        .unwrap()
        .unwrap();
    assert_eq!(p.kind, PrincipalKind::Service);
    assert_eq!(p.subject, "backend-key");
    assert_eq!(p.role.as_deref(), Some("service_admin"));
    assert_eq!(p.method, AuthMethod::BackendKey);
    assert_eq!(p.key_name.as_deref(), Some("backend"));
    assert!(p.passthrough());
}

#[test]
fn named_key_from_sha256() {
    let p = run(&authn(), &with_key(CI.as_bytes())).unwrap().unwrap();
    assert_eq!(p.kind, PrincipalKind::Service);
    assert_eq!(p.subject, "key:ci-bot");
    assert_eq!(p.team.as_deref(), Some("team-a"));
    assert_eq!(p.role.as_deref(), Some("service_admin"));
    assert_eq!(p.method, AuthMethod::ApiKey);
    assert_eq!(p.key_name.as_deref(), Some("ci-bot"));
    assert!(p.groups.is_empty());
    assert!(!p.passthrough());
}

#[test]
fn named_key_from_env() {
    let p = run(&authn(), &with_key(OPS.as_bytes())).unwrap().unwrap();
    assert_eq!(p.subject, "key:ops");
    assert_eq!(p.team, None);
    assert_eq!(p.role.as_deref(), Some("operator"));
    assert_eq!(p.method, AuthMethod::ApiKey);
}

#[test]
fn wrong_empty_or_non_utf8_key_is_rejected() {
    let a = authn();
    for key in [&b"nope"[..], b"", b"\xff\xfe", b"ci-secret-abcdefghijk"] {
        assert_eq!(
            run(&a, &with_key(key)).unwrap_err(),
            AuthError::InvalidApiKey
        );
    }
}

#[test]
fn two_key_headers_are_rejected() {
    let mut h = with_key(CI.as_bytes());
    h.append("open-sandbox-api-key", HeaderValue::from_static(OPS));
    assert_eq!(run(&authn(), &h).unwrap_err(), AuthError::InvalidApiKey);
}

#[test]
fn without_backend_key_the_backend_key_is_invalid() {
    let a = ApiKeyAuthenticator::new(None, &[cfg("ops", None, Some("OPS_KEY"))], &env).unwrap();
    assert!(!a.accepts_backend_key());
    assert_eq!(
        run(&a, &with_key(BACKEND.as_bytes())).unwrap_err(),
        AuthError::InvalidApiKey
    );
    assert_eq!(
        run(&a, &with_key(OPS.as_bytes())).unwrap().unwrap().subject,
        "key:ops"
    );
}

#[test]
fn uppercase_digest_is_accepted() {
    let c = cfg("ci", Some(sha256_hex(CI).to_uppercase()), None);
    let a = ApiKeyAuthenticator::new(None, &[c], &env).unwrap();
    assert!(run(&a, &with_key(CI.as_bytes())).unwrap().is_some());
}

#[test]
fn sha256_hex_is_lowercase_hex() {
    assert_eq!(
        sha256_hex("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

fn config_error(backend: Option<&str>, keys: &[ApiKeyConfig]) -> String {
    ApiKeyAuthenticator::new(backend.map(SecretString::new), keys, &env)
        .unwrap_err()
        .to_string()
}

#[test]
fn config_errors_name_the_entry() {
    let good = cfg("ci-bot", Some(sha256_hex(CI)), None);
    let cases: Vec<(Vec<ApiKeyConfig>, &str)> = vec![
        (
            vec![good.clone(), cfg("ci-bot", None, Some("CI_KEY"))],
            "auth.api_keys[1] (ci-bot): env var CI_KEY is not set",
        ),
        (
            vec![cfg("x", Some("abc".into()), None)],
            "auth.api_keys[0] (x): sha256 must be 64 hex chars",
        ),
        (
            vec![cfg("x", Some("g".repeat(64)), None)],
            "auth.api_keys[0] (x): sha256 must be 64 hex chars",
        ),
        (
            vec![good.clone(), cfg("ci-bot", None, Some("OPS_KEY"))],
            "auth.api_keys[1] (ci-bot): duplicate name (also auth.api_keys[0])",
        ),
        (
            vec![good.clone(), cfg("other", Some(sha256_hex(CI)), None)],
            "auth.api_keys[1] (other): same key as auth.api_keys[0]",
        ),
        (
            vec![cfg("x", Some(sha256_hex(CI)), Some("OPS_KEY"))],
            "auth.api_keys[0] (x): set exactly one of sha256 and env, not both",
        ),
        (
            vec![cfg("x", None, None)],
            "auth.api_keys[0] (x): set exactly one of sha256 and env",
        ),
        (
            vec![cfg("", None, Some("OPS_KEY"))],
            "auth.api_keys[0] (<unnamed>): name must not be empty",
        ),
        (
            vec![cfg("backend", None, Some("OPS_KEY"))],
            "auth.api_keys[0] (backend): name 'backend' is reserved",
        ),
        (
            vec![cfg("a b", None, Some("OPS_KEY"))],
            "auth.api_keys[0] (a b): name may only contain",
        ),
        (
            vec![cfg("x", None, Some("EMPTY_KEY"))],
            "auth.api_keys[0] (x): the key in env var EMPTY_KEY is empty",
        ),
        (
            vec![cfg("x", None, Some("NEWLINE_KEY"))],
            "auth.api_keys[0] (x): the key in env var NEWLINE_KEY contains control characters",
        ),
        (
            vec![cfg("x", None, Some("SPACE_KEY"))],
            "auth.api_keys[0] (x): the key in env var SPACE_KEY has leading or trailing",
        ),
        (
            vec![ApiKeyConfig {
                role: " ".into(),
                ..good.clone()
            }],
            "auth.api_keys[0] (ci-bot): role must not be empty",
        ),
        (
            vec![ApiKeyConfig {
                team: Some(String::new()),
                ..good.clone()
            }],
            "auth.api_keys[0] (ci-bot): team must not be empty",
        ),
    ];
    for (keys, expected) in cases {
        let e = config_error(None, &keys);
        assert!(
            e.starts_with(expected),
            "{e:?} should start with {expected:?}"
        );
    }
    let long = "n".repeat(65);
    assert!(config_error(None, &[cfg(&long, None, Some("OPS_KEY"))]).contains("at most 64"));
}

#[test]
fn backend_key_config_errors() {
    assert_eq!(
        config_error(Some(""), &[]),
        "the upstream backend key is empty"
    );
    let e = config_error(Some(CI), &[cfg("ci", Some(sha256_hex(CI)), None)]);
    assert_eq!(
        e,
        "auth.api_keys[0] (ci): same key as the upstream backend key"
    );
}

#[test]
fn config_deserializes_and_rejects_unknown_fields() {
    let c: ApiKeyConfig =
        serde_json::from_str(r#"{"name":"a","env":"A_KEY","role":"operator","team":"t"}"#).unwrap();
    assert_eq!(c.env.as_deref(), Some("A_KEY"));
    assert_eq!(c.team.as_deref(), Some("t"));
    assert!(
        serde_json::from_str::<ApiKeyConfig>(r#"{"name":"a","env":"A","role":"r","key":"x"}"#)
            .is_err()
    );
}

#[test]
fn keys_never_appear_in_debug() {
    let a = authn();
    let backend = SecretString::new(BACKEND);
    let ok = run(&a, &with_key(CI.as_bytes())).unwrap();
    let err = run(&a, &with_key(b"wrong-key-value-123")).unwrap_err();
    let printed = [
        format!("{a:?}"),
        format!("{a:#?}"),
        format!("{backend:?}"),
        format!("{ok:?}"),
        format!("{err:?} {err} {}", err.message()),
        format!("{:?}", cfg("ops", None, Some("OPS_KEY"))),
    ];
    for p in &printed {
        for secret in [BACKEND, CI, OPS, "wrong-key-value-123"] {
            assert!(!p.contains(secret), "{p} leaks {secret}");
        }
        // The authenticator keeps digests but never prints them either.
        assert!(!p.contains(&sha256_hex(CI)), "{p} prints a digest");
    }
    assert!(printed[0].contains("ci-bot") && printed[0].contains("ops"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_keys_are_never_accepted(key in proptest::collection::vec(any::<u8>(), 0..200)) {
        let a = authn();
        let headers = match HeaderValue::from_bytes(&key) {
            Ok(v) => {
                let mut h = HeaderMap::new();
                h.insert("open-sandbox-api-key", v);
                h
            }
            Err(_) => return Ok(()),
        };
        let known = [BACKEND.as_bytes(), CI.as_bytes(), OPS.as_bytes()];
        prop_assume!(!known.contains(&key.as_slice()));
        prop_assert_eq!(run(&a, &headers), Err(AuthError::InvalidApiKey));
    }

    #[test]
    fn random_printable_keys_are_never_accepted(key in "[ -~]{0,80}") {
        let a = authn();
        prop_assume!(![BACKEND, CI, OPS].contains(&key.as_str()));
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&key) {
            h.insert("open-sandbox-api-key", v);
            prop_assert_eq!(run(&a, &h), Err(AuthError::InvalidApiKey));
        }
    }
}
