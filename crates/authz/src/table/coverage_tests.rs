//! The default table against the real API: every route the served OpenAPI and the
//! lifecycle contract list must match exactly one entry, under both mounts.

use std::collections::BTreeSet;

use crate::{normalize, Action, RoleTable};

const SERVED: &str = include_str!("../../tests/fixtures/served-routes.txt");
const CONTRACT: &str = include_str!("../../tests/fixtures/sandbox-lifecycle-routes.txt");

fn default_table() -> RoleTable {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/roles.toml");
    RoleTable::load(std::path::Path::new(path)).unwrap()
}

/// `(METHOD, /path/{param})` pairs of a fixture, comments and blanks skipped.
fn pairs(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (m, p) = l.split_once(' ').unwrap();
            (m.to_owned(), p.trim().to_owned())
        })
        .collect()
}

/// Substitutes sample values for `{params}`.
fn concrete(template: &str) -> String {
    let mut out = String::new();
    for seg in template.split('/').skip(1) {
        out.push('/');
        out.push_str(match seg {
            "{sandbox_id}" | "{sandboxId}" => "sbx-1",
            "{port}" => "8080",
            "{full_path}" => "a/b",
            s if s.starts_with('{') => "x-1",
            s => s,
        });
    }
    out
}

/// The API path of a fixture path (its `/v1` mount, if any, removed).
fn api_path(template: &str) -> String {
    normalize(&concrete(template)).unwrap().api_path
}

fn expected_action(method: &str, api: &str) -> Option<Action> {
    let table = default_table();
    table.route(method, api).map(|m| m.action)
}

fn check_exactly_one(table: &RoleTable, method: &str, template: &str) {
    let api = api_path(template);
    for mount in ["", "/v1"] {
        let full = format!("{mount}{api}");
        let np = normalize(&full).unwrap();
        assert_eq!(np.api_path, api, "{full}");
        let n = table.all_matches(method, &np.api_path).len();
        assert_eq!(n, 1, "{method} {full} ({template}) matches {n} entries");
        if method == "GET" {
            assert_eq!(
                table.all_matches("HEAD", &np.api_path).len(),
                1,
                "HEAD {full}"
            );
        }
    }
}

#[test]
fn every_served_route_matches_exactly_one_entry_under_both_mounts() {
    let table = default_table();
    let served = pairs(SERVED);
    assert!(
        served.len() > 80,
        "the fixture lists {} routes",
        served.len()
    );
    for (method, template) in &served {
        check_exactly_one(&table, method, template);
    }
}

#[test]
fn every_contract_route_matches_exactly_one_entry_under_both_mounts() {
    let table = default_table();
    let contract = pairs(CONTRACT);
    assert_eq!(contract.len(), 13);
    for (method, template) in &contract {
        check_exactly_one(&table, method, template);
    }
}

#[test]
fn every_table_entry_serves_some_real_route() {
    let table = default_table();
    let served: BTreeSet<(String, String)> = pairs(SERVED)
        .into_iter()
        .chain(pairs(CONTRACT))
        .map(|(m, p)| (m, api_path(&p)))
        .collect();
    for entry in &table.routes {
        if entry.action.target() == crate::Target::Gateway {
            continue; // answered by the gateway itself; see gateway/src/routes
        }
        let hit = served
            .iter()
            .any(|(m, p)| entry.matches(m, &crate::route::split_path(p)).is_some());
        assert!(
            hit,
            "{} {} serves no real route",
            entry.method.as_str(),
            entry.pattern.text()
        );
    }
}

#[test]
fn no_two_entries_are_duplicates() {
    let table = default_table();
    let mut seen = BTreeSet::new();
    for entry in &table.routes {
        let key = (entry.method.as_str().to_owned(), entry.pattern.shape());
        assert!(seen.insert(key.clone()), "duplicate {key:?}");
    }
    // Validation would also reject them: a table with one entry repeated does not load.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../policies/roles.toml"
    ))
    .unwrap();
    let doubled = format!("{text}\n[[routes]]\nmethod = \"GET\"\npath = \"/sandboxes/{{id}}\"\naction = \"sandbox:read\"\n");
    let err = RoleTable::parse(&doubled).unwrap_err().to_string();
    assert!(err.contains("duplicate route GET /sandboxes/{id}"), "{err}");
}

#[test]
fn actions_of_the_served_routes() {
    let cases = [
        ("GET", "/sandboxes", Action::SandboxList),
        ("POST", "/sandboxes", Action::SandboxCreate),
        ("GET", "/sandboxes/s", Action::SandboxRead),
        ("DELETE", "/sandboxes/s", Action::SandboxDelete),
        ("PATCH", "/sandboxes/s/metadata", Action::SandboxMetadata),
        ("POST", "/sandboxes/s/pause", Action::SandboxPause),
        ("POST", "/sandboxes/s/resume", Action::SandboxResume),
        (
            "POST",
            "/sandboxes/s/renew-expiration",
            Action::SandboxRenew,
        ),
        ("GET", "/sandboxes/s/endpoints/80", Action::SandboxEndpoint),
        ("POST", "/sandboxes/s/snapshots", Action::SandboxSnapshot),
        ("GET", "/snapshots", Action::SnapshotList),
        ("GET", "/snapshots/x", Action::SnapshotRead),
        ("DELETE", "/snapshots/x", Action::SnapshotDelete),
        (
            "GET",
            "/sandboxes/s/diagnostics/summary",
            Action::SandboxDiagnostics,
        ),
        (
            "GET",
            "/sandboxes/s/networkpolicy",
            Action::SandboxNetworkPolicyRead,
        ),
        (
            "PUT",
            "/sandboxes/s/networkpolicy",
            Action::SandboxNetworkPolicyWrite,
        ),
        ("OPTIONS", "/sandboxes/s/proxy/80", Action::SandboxProxy),
        ("PATCH", "/sandboxes/s/proxy/80/x/y/z", Action::SandboxProxy),
        ("PUT", "/pools/p", Action::PoolWrite),
        ("GET", "/templates", Action::TemplateRead),
        ("POST", "/metrics/events", Action::MetricsWrite),
        ("GET", "/health", Action::SystemHealth),
        ("HEAD", "/version", Action::SystemVersion),
    ];
    for (m, p, a) in cases {
        assert_eq!(expected_action(m, p), Some(a), "{m} {p}");
    }
}

#[test]
fn unknown_routes_are_denied() {
    let table = default_table();
    for (m, p) in [
        ("GET", "/v1/secrets"),
        ("DELETE", "/v1/sandboxes"),
        ("PUT", "/v1/sandboxes/s"),
        ("GET", "/v1/sandboxes/s/diagnostics/other"),
        ("GET", "/v1/sandboxes/s/diagnostics"),
        ("POST", "/v1/sandboxes/s/pause/extra"),
        ("GET", "/v1/v1/sandboxes"),
        ("GET", "/"),
        ("GET", "/v1"),
    ] {
        let np = normalize(p).unwrap();
        for role in ["read_only", "operator", "service_admin"] {
            assert_eq!(
                table.authorize(role, m, &np.api_path).unwrap_err(),
                crate::Denial::UnknownRoute,
                "{m} {p} as {role}"
            );
        }
    }
}
