//! Micro-benchmarks of the gateway's per-request hot functions:
//!
//! - `path_normalize/*`: `gatehouse_policy::normalize` on typical and awkward paths;
//! - `route_decision/*`: `RoleTable::authorize` (route match + role check) on
//!   `policies/roles.toml`;
//! - `api_key/*`: `ApiKeyAuthenticator` (hash + constant-time compare) and the
//!   authenticator chain with trusted headers;
//! - `canonical/*`: `gatehouse_scope::token::canonical`, and `Scope::for_principal`, which
//!   the gateway computes on every scoped request (two canonicalizations);
//! - `scope/*`: the scoped list query, create injection, and `filter_list` on the 20- and
//!   200-item lists the proxy benchmark's upstream serves.
//!
//! `scope/filter_list_fast_path/*` and `scope/filter_list_scan/*` measure two candidates
//! for the gateway (not wired in). Both only check each item's scope key and, when nothing
//! is out of scope (the normal case: the backend already filtered), forward the body
//! unchanged; otherwise they fall back to `filter_list`. `fast_path` is a borrowed serde
//! parse into small maps; `scan` streams with serde seeds and allocates nothing.
//!
//! JWT validation with cached keys has no benchmark yet: the bearer authenticator does not
//! exist (a later issue adds OIDC); add `api_key`'s sibling `jwt/validate_cached` then.

#![allow(missing_docs, reason = "criterion macros generate undocumented items")]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gatehouse_auth::{
    ApiKeyAuthenticator, ApiKeyConfig, Authenticator, Chain, RequestView, SecretString,
    TrustedHeaderAuthenticator, TrustedHeaderConfig,
};
use gatehouse_benches::fixtures::{self, Tokens};
use gatehouse_policy::{normalize, RoleTable};
use gatehouse_scope::{body, query, token, Scope, ScopeKeys, ScopeMode};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::task::{Context, Poll, Waker};

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
    };
    let mut one = vec![ApiKeyConfig {
        name: fixtures::NAMED_KEY_NAME.into(),
        sha256: Some(fixtures::sha256_hex(fixtures::NAMED_KEY)),
        env: None,
        role: "operator".into(),
        team: Some(fixtures::BENCH_TEAM.into()),
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
        trusted_proxies: gatehouse_auth::parse_proxy("127.0.0.1/32")
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
    // The candidates must agree with filter_list before they are worth timing: true for
    // the bench lists, false when one item belongs to another team.
    let other = Tokens::new("other-team", fixtures::BENCH_USER);
    let mut mixed: serde_json::Value =
        serde_json::from_slice(&fixtures::list_json(20, &tokens)).unwrap_or_default();
    if let Some(item) = mixed.pointer_mut("/items/3/metadata/access.team") {
        *item = serde_json::Value::String(other.team);
    }
    let mixed = serde_json::to_vec(&mixed).unwrap_or_default();
    let list20 = fixtures::list_json(20, &tokens);
    let candidates_agree = scan::all_in_scope(&list20, &scope, &keys)
        && all_in_scope(&list20, &scope, &keys)
        && !scan::all_in_scope(&mixed, &scope, &keys)
        && !all_in_scope(&mixed, &scope, &keys)
        && body::filter_list(&mixed, &scope, &keys).is_ok_and(|(_, dropped)| dropped == 1);
    if !candidates_agree {
        eprintln!("skipping the filter_list candidates: they disagree with filter_list");
    }
    for n in [20usize, 200] {
        let list = fixtures::list_json(n, &tokens);
        g.throughput(Throughput::Bytes(list.len() as u64));
        g.bench_with_input(BenchmarkId::new("filter_list", n), &list, |b, list| {
            b.iter(|| body::filter_list(black_box(list), &scope, &keys))
        });
        if !candidates_agree {
            continue;
        }
        g.bench_with_input(BenchmarkId::new("filter_list_scan", n), &list, |b, list| {
            b.iter(|| {
                if scan::all_in_scope(black_box(list), &scope, &keys) {
                    Ok((list.to_vec(), 0))
                } else {
                    body::filter_list(list, &scope, &keys)
                }
            })
        });
        g.bench_with_input(
            BenchmarkId::new("filter_list_fast_path", n),
            &list,
            |b, list| {
                b.iter(|| {
                    if all_in_scope(black_box(list), &scope, &keys) {
                        Ok((list.to_vec(), 0))
                    } else {
                        body::filter_list(list, &scope, &keys)
                    }
                })
            },
        );
    }
    g.finish();
}

/// The second candidate: a streaming check with serde seeds. Nothing is allocated: every
/// field but `items[].metadata.<scope key>` is skipped with `IgnoredAny`, and keys are
/// compared as borrowed strings.
mod scan {
    use gatehouse_scope::{Scope, ScopeKeys};
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    /// True when `body` is `{"items":[...]}` and every item's metadata holds the pair.
    pub fn all_in_scope(body: &[u8], scope: &Scope, keys: &ScopeKeys) -> bool {
        let (key, value) = scope.filter_pair(keys);
        let mut de = serde_json::Deserializer::from_slice(body);
        matches!(List { key, value }.deserialize(&mut de), Ok(true)) && de.end().is_ok()
    }

    #[derive(Clone, Copy)]
    struct List<'s> {
        key: &'s str,
        value: &'s str,
    }

    /// A map key compared with `want` without allocating.
    struct KeyIs<'s>(&'s str);

    impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_str(self)
        }
    }

    impl<'de> Visitor<'de> for KeyIs<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E>(self, v: &str) -> Result<bool, E> {
            Ok(v == self.0)
        }
    }

    impl<'de> DeserializeSeed<'de> for List<'_> {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for List<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list response")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<bool, A::Error> {
            let mut ok = None;
            while let Some(is_items) = m.next_key_seed(KeyIs("items"))? {
                if is_items {
                    ok = Some(m.next_value_seed(Items(self))?);
                } else {
                    m.next_value::<IgnoredAny>()?;
                }
            }
            Ok(ok == Some(true))
        }
    }

    struct Items<'s>(List<'s>);

    impl<'de> DeserializeSeed<'de> for Items<'_> {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for Items<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of sandboxes")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<bool, A::Error> {
            let mut all = true;
            while let Some(ok) = s.next_element_seed(Item(self.0))? {
                all &= ok;
            }
            Ok(all)
        }
    }

    struct Item<'s>(List<'s>);

    impl<'de> DeserializeSeed<'de> for Item<'_> {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Item<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a sandbox")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<bool, A::Error> {
            let mut ok = false;
            while let Some(is_md) = m.next_key_seed(KeyIs("metadata"))? {
                if is_md {
                    ok = m.next_value_seed(Metadata(self.0))?;
                } else {
                    m.next_value::<IgnoredAny>()?;
                }
            }
            Ok(ok)
        }
    }

    struct Metadata<'s>(List<'s>);

    impl<'de> DeserializeSeed<'de> for Metadata<'_> {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Metadata<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a metadata object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<bool, A::Error> {
            let mut ok = false;
            while let Some(is_key) = m.next_key_seed(KeyIs(self.0.key))? {
                if is_key {
                    ok = m.next_value_seed(KeyIs(self.0.value))?;
                } else {
                    m.next_value::<IgnoredAny>()?;
                }
            }
            Ok(ok)
        }
    }
}

/// The candidate fast path: true when `body` is a list whose every item carries the
/// caller's scope pair. Borrowed parse; everything but `items[].metadata` is skipped.
fn all_in_scope(body: &[u8], scope: &Scope, keys: &ScopeKeys) -> bool {
    use std::borrow::Cow;
    use std::collections::HashMap;
    #[derive(serde::Deserialize)]
    struct Item<'a> {
        #[serde(borrow, default)]
        metadata: Option<HashMap<Cow<'a, str>, Cow<'a, str>>>,
    }
    #[derive(serde::Deserialize)]
    struct List<'a> {
        #[serde(borrow)]
        items: Vec<Item<'a>>,
    }
    let (k, v) = scope.filter_pair(keys);
    serde_json::from_slice::<List<'_>>(body).is_ok_and(|l| {
        l.items.iter().all(|i| {
            i.metadata
                .as_ref()
                .and_then(|m| m.get(k))
                .is_some_and(|got| got == v)
        })
    })
}

criterion_group!(
    benches,
    paths,
    decisions,
    api_keys,
    canonicalization,
    scoping
);
criterion_main!(benches);
