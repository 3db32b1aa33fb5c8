//! Canned bodies and identities of the proxy-latency benchmark.
//!
//! Every item the upstream returns carries the scope metadata of the benchmark team
//! ([`BENCH_TEAM`]), as `access.team = gatehouse_scope::token::canonical(team)`, so the
//! gateway's defence-in-depth list filter keeps all of them (the work is done, nothing is
//! dropped) and the scope check on per-sandbox routes passes.

use gatehouse_scope::token::canonical;
use serde_json::{json, Map, Value};

/// The team of every scoped benchmark caller (named key, trusted-header user, OIDC user).
pub const BENCH_TEAM: &str = "bench-team";
/// The trusted-header user of the list cases.
pub const BENCH_USER: &str = "alice@example.com";
/// The dev IdP user of the OIDC paths (`gw-session`, `gw-jwt`): team [`BENCH_TEAM`],
/// group [`OIDC_GROUP`].
pub const OIDC_USER: &str = "bench";
/// The OIDC user's group; `policies/roles.toml` maps it to the `operator` role.
pub const OIDC_GROUP: &str = "sandbox-operators";
/// The backend's own key: sent by direct/nginx/haproxy clients and passed through by the
/// gateway as `service_admin`.
pub const BACKEND_KEY: &str = "bench-backend-key-7f3a9c1e5d2b8f4a";
/// The named gateway key (`[[auth.api_keys]]`, role operator, team [`BENCH_TEAM`]).
pub const NAMED_KEY: &str = "ghk_bench_operator_2c9e4f7a1b3d5e8f";
/// The named key's `name`.
pub const NAMED_KEY_NAME: &str = "bench-operator";
/// The sandbox every per-sandbox request targets.
pub const SANDBOX_ID: &str = "3f9c2a7e-5b1d-4c8e-9a0f-6d2b8e4c1a57";
/// The size the single-sandbox JSON is padded to (the 1.6 KB backend answer).
pub const SANDBOX_JSON_BYTES: usize = 1600;
/// The size of the proxy-route body.
pub const PROXY_BODY_BYTES: usize = 1 << 20;

/// Metadata key holding the owner token (the gateway's default).
pub const OWNER_KEY: &str = "access.owner";
/// Metadata key holding the team token (the gateway's default).
pub const TEAM_KEY: &str = "access.team";

/// The scope tokens a benchmark caller's sandboxes carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// `canonical(team)`.
    pub team: String,
    /// `canonical(owner)`.
    pub owner: String,
}

impl Tokens {
    /// Tokens for `team` and `owner`.
    pub fn new(team: &str, owner: &str) -> Self {
        Self {
            team: canonical(team),
            owner: canonical(owner),
        }
    }

    /// The benchmark's default tokens ([`BENCH_TEAM`], [`BENCH_USER`]).
    pub fn bench() -> Self {
        Self::new(BENCH_TEAM, BENCH_USER)
    }
}

fn sandbox_value(i: usize, id: &str, tokens: &Tokens, owner: &str) -> Value {
    let mut md = Map::new();
    md.insert(OWNER_KEY.into(), Value::String(owner.to_string()));
    md.insert(TEAM_KEY.into(), Value::String(tokens.team.clone()));
    md.insert("project".into(), json!(format!("apollo-{}", i % 7)));
    md.insert("pipeline".into(), json!(format!("build-{}", 1000 + i)));
    md.insert("env".into(), json!("ci"));
    md.insert("example.com/cost-center".into(), json!("cc-4711"));
    json!({
        "id": id,
        "image": {"uri": "registry.example.com/sandboxes/python:3.12-slim"},
        "status": {
            "state": if i % 5 == 4 { "Paused" } else { "Running" },
            "reason": "CONTAINER_RUNNING",
            "message": "Sandbox container is running.",
            "lastTransitionAt": "2025-11-23T11:54:00Z"
        },
        "metadata": md,
        "entrypoint": ["python", "-m", "http.server", "8080"],
        "expiresAt": "2025-11-23T13:54:00Z",
        "createdAt": format!("2025-11-23T11:{:02}:{:02}Z", (i / 60) % 60, i % 60),
    })
}

/// One sandbox (`GET /v1/sandboxes/{id}`), padded with extra metadata labels to about
/// [`SANDBOX_JSON_BYTES`].
pub fn sandbox_json(tokens: &Tokens) -> Vec<u8> {
    let mut v = sandbox_value(0, SANDBOX_ID, tokens, &tokens.owner);
    let mut n = 0;
    while serde_json::to_vec(&v)
        .map(|b| b.len())
        .unwrap_or(usize::MAX)
        < SANDBOX_JSON_BYTES
    {
        if let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            md.insert(
                format!("example.com/label-{n:02}"),
                json!("value-for-padding-0123456789"),
            );
        } else {
            break;
        }
        n += 1;
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

/// A list page of `n` sandboxes of the benchmark team (owners vary, the team is the
/// same), as the backend answers `GET /v1/sandboxes?pageSize=n`.
pub fn list_json(n: usize, tokens: &Tokens) -> Vec<u8> {
    let owners = [
        tokens.owner.clone(),
        canonical("bob@example.com"),
        canonical("carol@example.com"),
    ];
    let items: Vec<Value> = (0..n)
        .map(|i| {
            let id = format!("{i:08x}-5b1d-4c8e-9a0f-6d2b8e4c1a57");
            sandbox_value(i, &id, tokens, &owners[i % owners.len()])
        })
        .collect();
    let total = (n as u64) * 3;
    serde_json::to_vec(&json!({
        "items": items,
        "pagination": {
            "page": 1,
            "pageSize": n,
            "totalItems": total,
            "totalPages": 3,
            "hasNextPage": true
        }
    }))
    .unwrap_or_default()
}

/// A `POST /v1/sandboxes` body as a client sends it (no scope metadata: the gateway
/// injects it).
pub fn create_request_json() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "image": {"uri": "registry.example.com/sandboxes/python:3.12-slim"},
        "entrypoint": ["python", "-m", "http.server", "8080"],
        "timeout": 3600,
        "resourceLimits": {"cpu": "500m", "memory": "512Mi"},
        "env": {"PYTHONUNBUFFERED": "1"},
        "metadata": {"project": "apollo-1", "pipeline": "build-1234"}
    }))
    .unwrap_or_default()
}

/// The backend's `202` answer to a create.
pub fn create_response_json(tokens: &Tokens) -> Vec<u8> {
    let mut v = sandbox_value(1, SANDBOX_ID, tokens, &tokens.owner);
    if let Some(o) = v.as_object_mut() {
        o.remove("image");
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Lower-case hex SHA-256 of a key (what `[[auth.api_keys]] sha256` holds).
pub fn sha256_hex(key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_advertised_shape() {
        let t = Tokens::bench();
        let s = sandbox_json(&t);
        assert!(s.len() >= SANDBOX_JSON_BYTES && s.len() < SANDBOX_JSON_BYTES + 100);
        let v: Value = serde_json::from_slice(&s).unwrap();
        assert_eq!(v["metadata"][TEAM_KEY], t.team);
        for n in [20, 200] {
            let v: Value = serde_json::from_slice(&list_json(n, &t)).unwrap();
            let items = v["items"].as_array().unwrap();
            assert_eq!(items.len(), n);
            assert!(items.iter().all(|i| i["metadata"][TEAM_KEY] == t.team));
        }
        let scope = gatehouse_scope::Scope::for_principal(
            BENCH_USER,
            Some(BENCH_TEAM),
            gatehouse_scope::ScopeMode::Team,
        );
        let (out, dropped) = gatehouse_scope::body::filter_list(
            &list_json(20, &t),
            &scope,
            &gatehouse_scope::ScopeKeys::default(),
        )
        .unwrap();
        assert_eq!(dropped, 0);
        assert!(!out.is_empty());
    }
}
