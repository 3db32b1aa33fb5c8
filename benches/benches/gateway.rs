//! Micro-benchmarks of the gateway's per-request hot functions:
//!
//! - `path_normalize/*`: `gatehouse_authz::normalize` on typical and awkward paths;
//! - `route_decision/*`: `RoleTable::authorize` (route match + role check) on
//!   `policies/roles.toml`;
//! - `api_key/*`: `ApiKeyAuthenticator` (hash + constant-time compare) and the
//!   authenticator chain with trusted headers;
//! - `jwt/*`: `gatehouse_authn::oidc::BearerAuthenticator` on an RS256 access token
//!   (2048-bit key generated here, the dev IdP's claims), its JWKS already cached (served
//!   once by a local listener to prime the cache; no network while measuring).
//!   `validate_cached` verifies the token every time (`bearer_cache_seconds = 0`): header
//!   parse, signature, `iss`/`aud`/`exp`/`nbf`, claims to identity; what a new token costs.
//!   `validate_repeat` runs the default config, which remembers verified tokens: what a
//!   client that repeats its token (the `gw-jwt` path) costs per request;
//! - `canonical/*`: `gatehouse_scope::token::canonical`, and `Scope::for_principal`, which
//!   the gateway computes on every scoped request (two canonicalizations);
//! - `scope/*`: the scoped list query, create injection, and on the 20- and 200-item lists
//!   the proxy benchmark's upstream serves: `filter_list` (parse, drop, re-serialize) and
//!   `list_in_scope`, the allocation-free check `gatehouse_scope::body::all_in_scope` the
//!   gateway runs first (when every item is in scope, the usual case, it forwards the body
//!   unchanged and `filter_list` does not run);
//! - `session/*` (`gateway/sessions.rs`): the session cookie with a warm cache, sessions in
//!   memory vs in the governance store (what replicas share).

#![allow(missing_docs, reason = "criterion macros generate undocumented items")]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gatehouse_authn::oidc::{BearerAuthenticator, JwksCache, OidcConfig};
use gatehouse_authn::{
    ApiKeyAuthenticator, ApiKeyConfig, AuthMethod, Authenticator, Chain, RequestView, SecretString,
    TrustedHeaderAuthenticator, TrustedHeaderConfig,
};
use gatehouse_authz::{normalize, RoleTable};
use gatehouse_benches::fixtures::{self, Tokens};
use gatehouse_scope::{body, query, token, Scope, ScopeKeys, ScopeMode};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

#[path = "gateway/sessions.rs"]
mod sessions;

/// Stops the bench run (and `cargo test --benches`) when its setup is broken.
fn fail(msg: &str) -> ! {
    eprintln!("gateway bench setup failed: {msg}");
    std::process::exit(1)
}

/// Polls a future that never waits (the authenticators are synchronous inside).
fn ready<F: Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

fn paths(c: &mut Criterion) {
    let mut g = c.benchmark_group("path_normalize");
    for (name, p) in [
        (
            "sandbox",
            "/v1/sandboxes/3f9c2a7e-5b1d-4c8e-9a0f-6d2b8e4c1a57",
        ),
        ("list", "/v1/sandboxes"),
        (
            "proxy",
            "/v1/sandboxes/3f9c2a7e-5b1d-4c8e-9a0f-6d2b8e4c1a57/proxy/8080/static/app.js",
        ),
        (
            "awkward",
            "/v1//sandboxes/./sbx%2D1/../sbx%2D2/endpoints/8080/",
        ),
    ] {
        g.bench_with_input(BenchmarkId::from_parameter(name), p, |b, p| {
            b.iter(|| normalize(black_box(p)))
        });
    }
    g.finish();
}

fn decisions(c: &mut Criterion) {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/roles.toml");
    let table = match RoleTable::load(std::path::Path::new(file)) {
        Ok(t) => t,
        Err(e) => fail(&format!("route_decision: {file}: {e}")),
    };
    let id = fixtures::SANDBOX_ID;
    let sandbox = format!("/sandboxes/{id}");
    let proxy = format!("/sandboxes/{id}/proxy/8080/static/app.js");
    let mut g = c.benchmark_group("route_decision");
    for (name, role, method, path) in [
        ("get_sandbox", "operator", "GET", sandbox.as_str()),
        ("list", "read_only", "GET", "/sandboxes"),
        ("create", "operator", "POST", "/sandboxes"),
        ("proxy", "operator", "GET", proxy.as_str()),
        ("forbidden", "read_only", "DELETE", sandbox.as_str()),
        ("unknown_route", "operator", "GET", "/nope/1/2"),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                black_box(table.authorize(black_box(role), black_box(method), black_box(path)))
                    .is_ok()
            })
        });
    }
    // What request_filter does before authorize: normalize, then decide.
    g.bench_function("normalize_and_decide", |b| {
        let raw = format!("/v1/sandboxes/{id}");
        b.iter(|| match normalize(black_box(&raw)) {
            Ok(p) => table.authorize("operator", "GET", &p.api_path).is_ok(),
            Err(_) => false,
        })
    });
    g.finish();
}

fn api_keys(c: &mut Criterion) {
    let key_cfg = |i: usize| ApiKeyConfig {
        name: format!("key-{i}"),
        sha256: Some(fixtures::sha256_hex(&format!("key-number-{i}"))),
        env: None,
        role: "operator".into(),
        team: Some(fixtures::BENCH_TEAM.into()),
        kind: Default::default(),
    };
    let mut one = vec![ApiKeyConfig {
        name: fixtures::NAMED_KEY_NAME.into(),
        sha256: Some(fixtures::sha256_hex(fixtures::NAMED_KEY)),
        env: None,
        role: "operator".into(),
        team: Some(fixtures::BENCH_TEAM.into()),
        kind: Default::default(),
    }];
    let no_env = |_: &str| None;
    let backend = || Some(SecretString::new(fixtures::BACKEND_KEY.to_string()));
    let auth1 = ApiKeyAuthenticator::new(backend(), &one, &no_env)
        .unwrap_or_else(|e| fail(&format!("api_key: {e}")));
    one.extend((0..49).map(key_cfg));
    let auth50 = ApiKeyAuthenticator::new(backend(), &one, &no_env)
        .unwrap_or_else(|e| fail(&format!("api_key: {e}")));
    let headers = |k: &str, v: &str| {
        let mut h = http::HeaderMap::new();
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::try_from(k),
            http::HeaderValue::try_from(v),
        ) {
            h.insert(n, v);
        }
        h
    };
    let named = headers("open-sandbox-api-key", fixtures::NAMED_KEY);
    let backend_h = headers("open-sandbox-api-key", fixtures::BACKEND_KEY);
    let wrong = headers("open-sandbox-api-key", "not-a-key-of-ours-0123456789");
    let mut user = headers("x-opensandbox-user", fixtures::BENCH_USER);
    if let Ok(v) = http::HeaderValue::try_from(fixtures::BENCH_TEAM) {
        user.insert("x-opensandbox-team", v);
    }
    let peer = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let view = |h| RequestView { peer, headers: h };

    let mut g = c.benchmark_group("api_key");
    g.bench_function("named_key_1_configured", |b| {
        b.iter(|| ready(auth1.authenticate(&view(black_box(&named)))))
    });
    g.bench_function("named_key_50_configured", |b| {
        b.iter(|| ready(auth50.authenticate(&view(black_box(&named)))))
    });
    g.bench_function("backend_key", |b| {
        b.iter(|| ready(auth1.authenticate(&view(black_box(&backend_h)))))
    });
    g.bench_function("wrong_key", |b| {
        b.iter(|| ready(auth1.authenticate(&view(black_box(&wrong)))))
    });
    let cfg = TrustedHeaderConfig {
        // parse_proxy yields the auth crate's own IpNet: no ipnet dependency here.
        trusted_proxies: gatehouse_authn::parse_proxy("127.0.0.1/32")
            .into_iter()
            .collect(),
        ..TrustedHeaderConfig::default()
    };
    match (
        ApiKeyAuthenticator::new(backend(), &one[..1], &no_env),
        TrustedHeaderAuthenticator::new(cfg),
    ) {
        (Ok(k), Ok(t)) => {
            let chain = Chain::new(vec![Box::new(k), Box::new(t)]);
            g.bench_function("chain_named_key", |b| {
                b.iter(|| ready(chain.authenticate(&view(black_box(&named)))))
            });
            g.bench_function("chain_trusted_headers", |b| {
                b.iter(|| ready(chain.authenticate(&view(black_box(&user)))))
            });
        }
        _ => fail("api_key: the chain's configuration was refused"),
    }
    g.finish();
}

/// The issuer of the `jwt/*` tokens (nothing listens there: the JWKS comes from a local
/// listener once).
const JWT_ISSUER: &str = "http://127.0.0.1:1";
/// Audience and client id of the `jwt/*` tokens (the dev IdP's default).
const JWT_AUDIENCE: &str = "gatehouse";
/// `kid` of the bench's signing key.
const JWT_KID: &str = "bench-key";

/// An RSA key generated here, its public JWKS, and an access token with the dev IdP's
/// claims (`typ: at+jwt`, the bench user of the OIDC paths) signed with it.
fn jwt_fixture() -> (Vec<u8>, String) {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .unwrap_or_else(|e| fail(&format!("jwt: RSA key: {e}")));
    let b64 = |n: &rsa::BigUint| data_encoding::BASE64URL_NOPAD.encode(&n.to_bytes_be());
    let jwks = serde_json::json!({"keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": JWT_KID,
        "n": b64(key.n()), "e": b64(key.e()),
    }]});
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let claims = serde_json::json!({
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "sub": fixtures::OIDC_USER,
        "client_id": JWT_AUDIENCE,
        "scope": "openid profile email",
        "name": "Bench Operator",
        "preferred_username": fixtures::OIDC_USER,
        "email": format!("{}@example.com", fixtures::OIDC_USER),
        "team": fixtures::BENCH_TEAM,
        "groups": [fixtures::OIDC_GROUP],
        "iat": now,
        "exp": now + 24 * 3600,
        "jti": "0a6c3b1e-7f2d-4e59-9c84-5d1b2f3a4e6c",
    });
    let der = key
        .to_pkcs1_der()
        .unwrap_or_else(|e| fail(&format!("jwt: DER: {e}")));
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(JWT_KID.into());
    header.typ = Some("at+jwt".into());
    let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_der(der.as_bytes()))
        .unwrap_or_else(|e| fail(&format!("jwt: signing: {e}")));
    (serde_json::to_vec(&jwks).unwrap_or_default(), token)
}

/// A `JwksCache` holding `jwks`: served once from a local listener and fetched with
/// `prime`, as the gateway does after discovery.
fn primed_jwks(jwks: Vec<u8>) -> Arc<JwksCache> {
    use gatehouse_benches::serve;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("jwt: runtime: {e}")));
    let jwks = bytes::Bytes::from(jwks);
    let http = gatehouse_authn::oidc::login::idp_http_client()
        .unwrap_or_else(|e| fail(&format!("jwt: HTTP client: {e}")));
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| fail(&format!("jwt: listener: {e}")));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        tokio::spawn(serve::run(listener, move |_req| {
            let body = jwks.clone();
            async move { serve::respond(200, true, &[], body) }
        }));
        let cache = Arc::new(JwksCache::new(
            format!("http://127.0.0.1:{port}/jwks"),
            http,
            std::time::Duration::from_secs(3600),
        ));
        cache.prime().await;
        cache
    })
}

fn jwt(c: &mut Criterion) {
    let (jwks, token) = jwt_fixture();
    let cache = primed_jwks(jwks);
    if cache.len() != 1 {
        fail("jwt: the JWKS cache was not primed");
    }
    let config = |extra: serde_json::Value| -> OidcConfig {
        let mut v = serde_json::json!({
            "issuer": JWT_ISSUER,
            "client_id": JWT_AUDIENCE,
            "redirect_url": "http://127.0.0.1:1/auth/callback",
        });
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        serde_json::from_value(v).unwrap_or_else(|e| fail(&format!("jwt: [oidc]: {e}")))
    };
    let mut headers = http::HeaderMap::new();
    match http::HeaderValue::try_from(format!("Bearer {token}")) {
        Ok(v) => headers.insert(http::header::AUTHORIZATION, v),
        Err(e) => fail(&format!("jwt: header: {e}")),
    };
    let view = RequestView {
        peer: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        headers: &headers,
    };
    let mut g = c.benchmark_group("jwt");
    for (name, extra) in [
        (
            "validate_cached",
            serde_json::json!({"bearer_cache_seconds": 0}),
        ),
        ("validate_repeat", serde_json::json!({})),
    ] {
        let cfg = config(extra);
        let bearer = BearerAuthenticator::new(
            &cfg,
            cfg.issuer.clone(),
            cache.clone(),
            std::sync::Arc::new(gatehouse_authn::oidc::Revocations::default()),
        );
        // With the key cached, validation never waits: it must be ready on the first poll.
        match ready(bearer.authenticate(&view)) {
            Some(Ok(Some(p)))
                if p.subject == fixtures::OIDC_USER
                    && p.team.as_deref() == Some(fixtures::BENCH_TEAM)
                    && p.method == AuthMethod::Bearer => {}
            other => fail(&format!(
                "jwt/{name}: the token was not accepted: {other:?}"
            )),
        }
        g.bench_function(name, |b| {
            b.iter(|| ready(bearer.authenticate(black_box(&view))))
        });
    }
    g.finish();
}

fn canonicalization(c: &mut Criterion) {
    let mut g = c.benchmark_group("canonical");
    for (name, raw) in [
        ("team", fixtures::BENCH_TEAM),
        ("email", fixtures::BENCH_USER),
        (
            "long_subject",
            "https://idp.example.com/realms/engineering|user-0123456789abcdef0123456789abcdef",
        ),
    ] {
        g.bench_with_input(BenchmarkId::from_parameter(name), raw, |b, raw| {
            b.iter(|| token::canonical(black_box(raw)))
        });
    }
    g.bench_function("scope_for_principal", |b| {
        b.iter(|| {
            Scope::for_principal(
                black_box(fixtures::BENCH_USER),
                black_box(Some(fixtures::BENCH_TEAM)),
                ScopeMode::Team,
            )
        })
    });
    g.finish();
}

fn scoping(c: &mut Criterion) {
    let keys = ScopeKeys::default();
    let tokens = Tokens::bench();
    let scope = Scope::for_principal(
        fixtures::BENCH_USER,
        Some(fixtures::BENCH_TEAM),
        ScopeMode::Team,
    );
    let mut g = c.benchmark_group("scope");
    g.bench_function("scoped_list_query", |b| {
        b.iter(|| {
            query::scoped_list_query(
                black_box(Some(
                    "state=Running&metadata=project%3Dapollo-1&pageSize=20",
                )),
                &scope,
                &keys,
            )
        })
    });
    let create = fixtures::create_request_json();
    g.throughput(Throughput::Bytes(create.len() as u64));
    g.bench_function("inject_create", |b| {
        b.iter(|| body::inject_create(black_box(&create), &scope, &keys))
    });
    // The check must agree with filter_list before it is worth timing: true for the bench
    // lists, false when one item belongs to another team (and filter_list drops that one).
    let other = Tokens::new("other-team", fixtures::BENCH_USER);
    let mut mixed: serde_json::Value =
        serde_json::from_slice(&fixtures::list_json(20, &tokens)).unwrap_or_default();
    if let Some(item) = mixed.pointer_mut("/items/3/metadata/access.team") {
        *item = serde_json::Value::String(other.team);
    }
    let mixed = serde_json::to_vec(&mixed).unwrap_or_default();
    let agrees = body::all_in_scope(&fixtures::list_json(20, &tokens), &scope, &keys)
        && !body::all_in_scope(&mixed, &scope, &keys)
        && body::filter_list(&mixed, &scope, &keys).is_ok_and(|(_, dropped)| dropped == 1);
    if !agrees {
        fail("scope: body::all_in_scope disagrees with body::filter_list");
    }
    for n in [20usize, 200] {
        let list = fixtures::list_json(n, &tokens);
        g.throughput(Throughput::Bytes(list.len() as u64));
        g.bench_with_input(BenchmarkId::new("filter_list", n), &list, |b, list| {
            b.iter(|| body::filter_list(black_box(list), &scope, &keys))
        });
        g.bench_with_input(BenchmarkId::new("list_in_scope", n), &list, |b, list| {
            b.iter(|| body::all_in_scope(black_box(list), &scope, &keys))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    paths,
    decisions,
    api_keys,
    jwt,
    canonicalization,
    scoping,
    sessions::sessions
);
criterion_main!(benches);
