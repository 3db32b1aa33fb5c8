//! The gateway in front of the real, unchanged upstream `opensandbox-server` 1.1.1, one
//! behaviour per test, each on a fresh [`UpstreamStack`]: the SDK with the upstream key
//! works unchanged through it, users are scoped by team, the reserved metadata cannot be
//! patched away, and the proxy route (open on upstream) needs credentials at the gateway.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::api::{host_port, send, wait_ok};
use gatehouse_tests::principals::{alice, bob, carol};
use gatehouse_tests::sandbox::{create_id, httpd_body, with_limits, HELLO};
use gatehouse_tests::sdk;
use gatehouse_tests::stacks::UpstreamStack;
use serde_json::{json, Value};

/// An upstream stack with one sandbox alice created through the gateway (asking for
/// team-b, with `suite=<token>`).
struct AliceSandbox {
    st: UpstreamStack,
    a1: String,
    token: String,
}

impl AliceSandbox {
    async fn start() -> Self {
        let st = UpstreamStack::start().await.unwrap();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let md = json!({"suite": token, "access.team": "team-b"});
        let a1 = create_id(&alice(), &st.gw.url, &with_limits(httpd_body(md)))
            .await
            .unwrap();
        Self { st, a1, token }
    }

    /// The gateway URL of `/v1/sandboxes/{a1}{rest}`.
    fn a1(&self, rest: &str) -> String {
        self.st.gw.at(&format!("/v1/sandboxes/{}{rest}", self.a1))
    }
}

/// alice creates through the gateway: her scope is injected, and upstream accepts it.
#[tokio::test]
async fn create_through_the_gateway_injects_the_scope() {
    let t = AliceSandbox::start().await;
    let (s, v) = send(&alice(), "GET", &t.a1(""), None).await;
    assert_eq!(s, 200, "{v}");
    let team = v["metadata"]["access.team"].as_str().unwrap();
    let owner = v["metadata"]["access.owner"].as_str().unwrap();
    assert!(team.starts_with("team-a."), "{v}");
    assert!(owner.starts_with("alice."), "{v}");
}

/// Scoping holds on the upstream: carol sees nothing of team-a, bob sees only his team's
/// and cannot mutate.
#[tokio::test]
async fn users_are_scoped_by_team_on_the_upstream() {
    let t = AliceSandbox::start().await;
    let gw = &t.st.gw;
    let suite = gw.at(&format!("/v1/sandboxes?metadata=suite%3D{}", t.token));
    let (s, v) = send(&carol(), "GET", &suite, None).await;
    assert_eq!((s, &v["pagination"]["totalItems"]), (200, &json!(0)), "{v}");
    let (s, v) = send(&alice(), "GET", &suite, None).await;
    assert_eq!((s, &v["pagination"]["totalItems"]), (200, &json!(1)), "{v}");
    let team_a = send(&alice(), "GET", &t.a1(""), None).await.1["metadata"]["access.team"].clone();
    let (s, v) = send(&bob(), "GET", &gw.at("/v1/sandboxes?pageSize=200"), None).await;
    assert_eq!(s, 200);
    let items = v["items"].as_array().unwrap();
    assert!(
        items.iter().any(|i| i["id"] == t.a1.as_str()),
        "bob sees his team's sandbox"
    );
    assert!(
        items.iter().all(|i| i["metadata"]["access.team"] == team_a),
        "and only his team's"
    );
    for (m, rest) in [("GET", ""), ("DELETE", ""), ("GET", "/endpoints/8080")] {
        let (s, v) = send(&carol(), m, &t.a1(rest), None).await;
        assert_eq!(s, 404, "carol {m} {rest}: {v}");
    }
    let (s, _) = send(&bob(), "DELETE", &t.a1(""), None).await;
    assert_eq!(s, 403);
}

/// The upstream lets a patch rewrite access.*; the gateway does not (other keys pass).
#[tokio::test]
async fn reserved_metadata_cannot_be_patched_away() {
    let t = AliceSandbox::start().await;
    let url = t.a1("/metadata");
    let patch = |md: Value| {
        let url = url.clone();
        async move { send(&alice(), "PATCH", &url, Some(&md)).await }
    };
    let (s, v) = patch(json!({"access.team": "team-b"})).await;
    assert_eq!(
        (s, v["code"].as_str().unwrap_or("")),
        (400, "GATEWAY::RESERVED_METADATA")
    );
    assert_eq!(patch(json!({"stage": "qa"})).await.0, 200);
}

/// The proxy route is open on the upstream, closed at the gateway without credentials,
/// and works through it for alice; server-proxy endpoints point at the gateway.
#[tokio::test]
async fn proxy_route_needs_credentials_at_the_gateway() {
    let t = AliceSandbox::start().await;
    let (up, a1) = (&t.st.up, &t.a1);
    let direct = reqwest::get(up.at(&format!("/v1/sandboxes/{a1}/proxy/8080/index.html")))
        .await
        .unwrap();
    assert_ne!(direct.status(), 401, "upstream leaves its proxy route open");
    let index = t.a1("/proxy/8080/index.html");
    let (s, _) = send(&reqwest::Client::new(), "GET", &index, None).await;
    assert_eq!(s, 401);
    let page = wait_ok(&alice(), &index).await.unwrap();
    assert!(page.as_str().unwrap_or("").contains(HELLO));
    let (_, v) = send(
        &alice(),
        "GET",
        &t.a1("/endpoints/8080?use_server_proxy=true"),
        None,
    )
    .await;
    let gw_host = host_port(&t.st.gw.url);
    assert_eq!(
        v["endpoint"],
        format!("{gw_host}/v1/sandboxes/{a1}/proxy/8080")
    );
}

/// The real SDK with the upstream's own key works unchanged through the gateway, audited
/// as the backend key.
#[tokio::test]
async fn sdk_with_the_upstream_key_works_unchanged() {
    let st = UpstreamStack::start().await.unwrap();
    let sdk_token = uuid::Uuid::new_v4().simple().to_string();
    let body = with_limits(httpd_body(json!({"suite": sdk_token})));
    let s1 = create_id(&st.up.client(), &st.gw.url, &body).await.unwrap();
    let seen = sdk::sandbox_manager(host_port(&st.gw.url), &st.up.api_key, &s1, &sdk_token)
        .await
        .unwrap();
    assert_eq!(seen["listed_ids"], json!([s1]), "{seen}");
    let events = st.gw.audit_events();
    assert!(events.iter().any(|e| e["action"] == "sandbox:delete"
        && e["sandbox_id"] == s1.as_str()
        && e["principal"]["auth_method"] == "backend_key"));
    assert!(!st.gw.exposes(&st.up.api_key));
}

/// alice's create and delete are audited under her name; the upstream key never appears.
#[tokio::test]
async fn user_mutations_are_audited_without_the_upstream_key() {
    let t = AliceSandbox::start().await;
    let (s, _) = send(&alice(), "DELETE", &t.a1(""), None).await;
    assert_eq!(s, 204);
    let events = t.st.gw.audit_events();
    assert!(events.iter().any(|e| e["action"] == "sandbox:create"
        && e["sandbox_id"] == t.a1.as_str()
        && e["principal"]["subject"] == "alice"));
    assert!(!t.st.gw.exposes(&t.st.up.api_key));
}
