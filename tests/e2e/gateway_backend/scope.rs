//! Who sees and does what: scope injection on create, scoped lists, out-of-scope ids that
//! look missing, the read_only and operator roles, API keys, and the audit trail.

use super::TwoTeams;
use gatehouse_tests::api::{item_ids, send};
use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::principals::{alice, bob, carol, keyed};
use gatehouse_tests::sandbox::{httpd_body, wait_state};
use gatehouse_tests::stacks::{KeyedStack, ADMIN_KEY, TEAMB_KEY};
use gatehouse_tests::wait_for;
use serde_json::{json, Value};
use std::time::Duration;

/// Every per-sandbox route of `id`, with a body where it needs one.
fn per_sandbox_routes(id: &str) -> Vec<(&'static str, String, Option<Value>)> {
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    vec![
        ("GET", format!("/v1/sandboxes/{id}"), None),
        ("GET", format!("/sandboxes/{id}"), None),
        (
            "POST",
            format!("/v1/sandboxes/{id}/renew-expiration"),
            Some(json!({"expiresAt": future})),
        ),
        ("POST", format!("/v1/sandboxes/{id}/pause"), None),
        ("POST", format!("/v1/sandboxes/{id}/resume"), None),
        ("GET", format!("/v1/sandboxes/{id}/endpoints/8080"), None),
        (
            "PATCH",
            format!("/v1/sandboxes/{id}/metadata"),
            Some(json!({"x": "y"})),
        ),
        (
            "GET",
            format!("/v1/sandboxes/{id}/proxy/8080/index.html"),
            None,
        ),
        (
            "POST",
            format!("/v1/sandboxes/{id}/snapshots"),
            Some(json!({})),
        ),
        ("GET", format!("/v1/sandboxes/{id}/diagnostics/logs"), None),
        ("DELETE", format!("/v1/sandboxes/{id}"), None),
    ]
}

/// `GET /v1/sandboxes?{query}` through the gateway as `c`.
async fn list(c: &reqwest::Client, t: &TwoTeams, query: &str) -> (u16, Value) {
    send(
        c,
        "GET",
        &t.st.gw.at(&format!("/v1/sandboxes?{query}")),
        None,
    )
    .await
}

/// bob's create through `gw`; the status.
async fn bob_creates(gw: &Gateway) -> u16 {
    let body = httpd_body(json!({}));
    send(&bob(), "POST", &gw.at("/v1/sandboxes"), Some(&body))
        .await
        .0
}

/// Scope metadata is injected from the principal, whatever the client sent.
#[tokio::test]
async fn create_injects_the_callers_scope_over_the_clients() {
    let t = TwoTeams::start().await;
    let (s, v) = send(&alice(), "GET", &t.sandbox(&t.a1, ""), None).await;
    assert_eq!(s, 200);
    let owner = v["metadata"]["access.owner"].as_str().unwrap();
    let team = v["metadata"]["access.team"].as_str().unwrap();
    assert!(owner.starts_with("alice."), "{owner}");
    assert!(team.starts_with("team-a."), "{team}");
    assert_eq!(v["metadata"]["project"], "apollo");
}

/// Lists are scoped: pagination counts only the caller's team; client filters still
/// work, and filtering on a team's scope key cannot widen the view.
#[tokio::test]
async fn lists_show_exactly_the_callers_team() {
    let t = TwoTeams::running().await;
    let (_, v) = send(&alice(), "GET", &t.sandbox(&t.a1, ""), None).await;
    let team_a = v["metadata"]["access.team"].as_str().unwrap().to_string();
    for (who, client, mine, other) in [
        ("alice", alice(), &t.a1, &t.c1),
        ("bob", bob(), &t.a1, &t.c1),
        ("carol", carol(), &t.c1, &t.a1),
    ] {
        let (s, v) = list(&client, &t, "pageSize=200").await;
        assert_eq!(s, 200, "{who}: {v}");
        let ids = item_ids(&v);
        assert_eq!(ids, vec![mine.clone()], "{who} sees exactly their team");
        assert_eq!(v["pagination"]["totalItems"], 1, "{who}");
        assert!(!ids.contains(other));
        let (_, v) = list(&client, &t, "metadata=project%3Dapollo&state=running").await;
        assert_eq!(
            v["pagination"]["totalItems"], 1,
            "{who}: filters still apply"
        );
        let (_, v) = list(&client, &t, "metadata=project%3Dnone").await;
        assert_eq!(v["pagination"]["totalItems"], 0, "{who}");
        let (_, v) = list(&client, &t, &format!("metadata=access.team%3D{team_a}")).await;
        let seen = item_ids(&v);
        assert!(seen.iter().all(|id| id == mine), "{who}: {seen:?}");
    }
}

/// Another team's sandbox is a 404 on every per-sandbox route, exactly like a missing one.
#[tokio::test]
async fn out_of_scope_id_is_not_found_on_every_route() {
    let t = TwoTeams::running().await;
    let gw = &t.st.gw;
    let (_, missing) = send(
        &carol(),
        "GET",
        &gw.at("/v1/sandboxes/does-not-exist"),
        None,
    )
    .await;
    for (m, path, body) in &per_sandbox_routes(&t.a1) {
        let (s, v) = send(&carol(), m, &gw.at(path), body.as_ref()).await;
        assert_eq!(s, 404, "carol {m} {path}: {v}");
        assert_eq!(
            v["code"], missing["code"],
            "out of scope looks exactly like missing"
        );
    }
}

/// bob (read_only, same team) reads his team's sandbox but cannot mutate or create.
#[tokio::test]
async fn read_only_reads_but_cannot_mutate() {
    let t = TwoTeams::running().await;
    let gw = &t.st.gw;
    for (m, path, body) in &per_sandbox_routes(&t.a1) {
        let (s, v) = send(&bob(), m, &gw.at(path), body.as_ref()).await;
        let read = *m == "GET" && !path.contains("/proxy/") && !path.contains("/diagnostics/");
        if read {
            assert_eq!(s, 200, "bob {m} {path}: {v}");
        } else {
            assert_eq!(s, 403, "bob {m} {path}: {v}");
            assert_eq!(v["code"], "GATEWAY::FORBIDDEN");
        }
    }
    assert_eq!(bob_creates(gw).await, 403);
}

/// alice (operator, owner) renews, patches, pauses and resumes hers, but cannot patch the
/// reserved scope metadata.
#[tokio::test]
async fn owner_operator_manages_her_sandbox_but_not_its_scope() {
    let t = TwoTeams::running().await;
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let renew = json!({"expiresAt": future});
    let (s, v) = send(
        &alice(),
        "POST",
        &t.sandbox(&t.a1, "/renew-expiration"),
        Some(&renew),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let metadata = t.sandbox(&t.a1, "/metadata");
    let (s, v) = send(&alice(), "PATCH", &metadata, Some(&json!({"stage": "qa"}))).await;
    assert_eq!((s, &v["metadata"]["stage"]), (200, &json!("qa")));
    for bad in [
        json!({"access.team": "team-b"}),
        json!({"access.owner": null}),
    ] {
        let (s, v) = send(&alice(), "PATCH", &metadata, Some(&bad)).await;
        assert_eq!(s, 400, "{bad}: {v}");
        assert_eq!(v["code"], "GATEWAY::RESERVED_METADATA");
    }
    let (s, _) = send(&alice(), "POST", &t.sandbox(&t.a1, "/pause"), None).await;
    assert_eq!(s, 202);
    let (s, _) = send(&alice(), "POST", &t.sandbox(&t.a1, "/resume"), None).await;
    assert_eq!(s, 202);
    wait_state(&alice(), &t.st.gw.url, &t.a1, "Running")
        .await
        .unwrap();
}

/// A team-b operator key is scoped like a user of team-b.
#[tokio::test]
async fn team_operator_key_is_scoped_like_its_team() {
    let t = TwoTeams::start().await;
    let (s, v) = send(&keyed(TEAMB_KEY), "GET", &t.st.gw.at("/v1/sandboxes"), None).await;
    assert_eq!(s, 200);
    assert_eq!(item_ids(&v), vec![t.c1.clone()]);
    let (s, _) = send(&keyed(TEAMB_KEY), "GET", &t.sandbox(&t.a1, ""), None).await;
    assert_eq!(s, 404);
}

/// A service_admin key and the backend's own key see every team's sandboxes.
#[tokio::test]
async fn admin_and_backend_keys_see_every_team() {
    let t = TwoTeams::start().await;
    for key in [ADMIN_KEY, t.st.backend.api_key.as_str()] {
        let (s, v) = send(&keyed(key), "GET", &t.st.gw.at("/v1/sandboxes"), None).await;
        assert_eq!(s, 200);
        assert_eq!(v["pagination"]["totalItems"], 2);
    }
}

/// A wrong key is rejected, never retried as another identity.
#[tokio::test]
async fn wrong_api_key_is_rejected() {
    let st = KeyedStack::start().await.unwrap();
    let (s, v) = send(&keyed("not-a-key"), "GET", &st.gw.at("/v1/sandboxes"), None).await;
    assert_eq!((s, v["code"].as_str().unwrap()), (401, "INVALID_API_KEY"));
}

/// The calls the audit scenario looks for: a 404 and a 403 denial, a 401, reads with
/// every key, and the owners' deletes (204).
async fn audited_calls(t: &TwoTeams) {
    let gw = &t.st.gw;
    let (s, _) = send(&carol(), "GET", &t.sandbox(&t.a1, ""), None).await;
    assert_eq!(s, 404);
    assert_eq!(bob_creates(gw).await, 403);
    let (s, _) = send(&keyed("not-a-key"), "GET", &gw.at("/v1/sandboxes"), None).await;
    assert_eq!(s, 401);
    for key in [ADMIN_KEY, TEAMB_KEY, t.st.backend.api_key.as_str()] {
        let (s, _) = send(&keyed(key), "GET", &gw.at("/v1/sandboxes"), None).await;
        assert_eq!(s, 200);
    }
    assert_eq!(
        send(&alice(), "GET", &gw.at("/v1/sandboxes"), None).await.0,
        200
    );
    let (s, _) = send(&carol(), "DELETE", &t.sandbox(&t.c1, ""), None).await;
    assert_eq!(s, 204);
    let (s, _) = send(&alice(), "DELETE", &t.sandbox(&t.a1, ""), None).await;
    assert_eq!(s, 204);
}

/// One audit event per mutation and per denial, with the principal and the sandbox id;
/// reads are not audited; secrets never appear in the audit or the log.
#[tokio::test]
async fn audit_records_mutations_and_denials_without_secrets() {
    let t = TwoTeams::running().await;
    let gw = &t.st.gw;
    audited_calls(&t).await;
    let of = |ev: &[Value], action: &str| -> Vec<Value> {
        ev.iter()
            .filter(|e| e["action"] == action)
            .cloned()
            .collect()
    };
    let events = wait_for("audit events", Duration::from_secs(10), || async {
        let ev = gw.audit_events();
        (of(&ev, "sandbox:delete").len() >= 2).then_some(ev)
    })
    .await
    .unwrap();
    let creates = of(&events, "sandbox:create");
    let alice_create = creates
        .iter()
        .find(|e| e["principal"]["subject"] == "alice")
        .unwrap();
    assert_eq!(
        alice_create["sandbox_id"], t.a1,
        "create events carry the id from the response"
    );
    assert_eq!(alice_create["principal"]["team"], "team-a");
    assert_eq!(alice_create["principal"]["role"], "operator");
    assert_eq!(alice_create["principal"]["auth_method"], "trusted_header");
    assert_eq!(alice_create["status"], 202);
    assert_eq!(alice_create["outcome"], "allowed");
    let denials: Vec<&Value> = events.iter().filter(|e| e["outcome"] == "denied").collect();
    assert!(denials.iter().any(|e| e["principal"]["subject"] == "carol"
        && e["sandbox_id"] == t.a1
        && e["status"] == 404));
    assert!(denials.iter().any(|e| e["principal"]["subject"] == "bob"
        && e["action"] == "sandbox:create"
        && e["status"] == 403));
    assert!(denials.iter().any(|e| e["status"] == 401));
    assert!(events
        .iter()
        .all(|e| e["request_id"].as_str().is_some_and(|r| !r.is_empty())));
    // Reads are not audited (only a denied list is).
    assert!(of(&events, "sandbox:list")
        .iter()
        .all(|e| e["outcome"] == "denied"));
    for secret in [ADMIN_KEY, TEAMB_KEY, t.st.backend.api_key.as_str()] {
        assert!(!gw.exposes(secret));
    }
}
