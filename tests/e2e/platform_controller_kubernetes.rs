//! Issue 14 on the real kube-apiserver (`dev/kubernetes/`), the parts that need Kubernetes
//! identities:
//!
//! - a platform controller authenticated by its **ServiceAccount token** (TokenRequest,
//!   the configured audience), checked by TokenReview: it creates a sandbox for its tenant
//!   (the tenant's OIDC user sees it, another team's does not, the audit event names the
//!   ServiceAccount, the controller and the tenant); a wrong audience or a forged token is
//!   401, a ServiceAccount no controller lists is 403, and an OIDC bearer still works
//!   beside it; with the API server down a token never reviewed is 503, one reviewed
//!   before keeps working from the cache;
//! - the backend's Kubernetes driver **projecting the sandbox's ServiceAccount token**:
//!   the Pod read back has the projected volume with the configured audience, and a
//!   pod-bound token (the test plays kubelet) exchanges at `POST /auth/sandbox/token` for a
//!   sandbox token that reads that sandbox and gets 404 for another.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::api::send_req;
use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::k8s::Cluster;
use gatehouse_tests::kubelet::TestKubelet;
use gatehouse_tests::login::tokens_for;
use gatehouse_tests::principals::{user, TRUSTED_PROXY_SECTION};
use gatehouse_tests::stacks::OidcStack;
use gatehouse_tests::{wait_for, Backend, BackendOptions};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::{json, Value};
use std::time::Duration;

/// The audience controllers request their token for.
const PLATFORM_AUDIENCE: &str = "gatehouse-platform";
/// The audience of sandbox pods' projected tokens.
const SANDBOX_AUDIENCE: &str = "gatehouse-sandboxes";

fn short() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// A sandbox the test kubelet runs.
fn body(extensions: Value) -> Value {
    json!({
        "image": {"uri": "gatehouse/busybox:latest"},
        "entrypoint": ["/bin/serve", "--port", "8080"],
        "timeout": 600,
        "resourceLimits": {"cpu": "250m", "memory": "64Mi"},
        "extensions": extensions,
    })
}

async fn send(
    gw: &Gateway,
    bearer: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .request(method.parse().unwrap(), gw.at(path))
        .bearer_auth(bearer);
    if let Some(b) = body {
        r = r.json(b);
    }
    send_req(r).await
}

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .filter_map(|i| i["id"].as_str().map(str::to_owned))
        .collect()
}

/// The backend's `[kubernetes]` section for pods in `ns`.
fn backend_kubernetes(c: &Cluster, ns: &str, more: &str) -> String {
    format!(
        "kubeconfig_path = \"{}\"\nnamespace = \"{ns}\"\nservice_account = \"sandbox\"\n\
         sandbox_create_timeout_seconds = 20\napi_timeout = 5\n{more}",
        c.kubeconfig.display()
    )
}

/// `[platform]`: ServiceAccount `ns/onboarding` is controller `onboarding`, for team-a.
fn platform_section(c: &Cluster, ns: &str) -> String {
    format!(
        "[platform.kubernetes]\nkubeconfig_path = \"{}\"\naudience = \"{PLATFORM_AUDIENCE}\"\n\
         issuer = \"https://kubernetes.default.svc\"\ncache_seconds = 300\ntimeout_ms = 2000\n\n\
         [[platform.controllers]]\nname = \"onboarding\"\n\
         kubernetes_service_accounts = [\"{ns}/onboarding\"]\ntenants = [\"team-a\"]\n",
        c.kubeconfig.display()
    )
}

#[tokio::test]
async fn a_controller_service_account_creates_sandboxes_for_its_tenant() {
    let c = Cluster::shared().await.unwrap();
    let tag = short();
    let (home, platform) = (format!("pcsa-{tag}"), format!("plat-{tag}"));
    c.namespace(&home).await.unwrap();
    c.namespace(&platform).await.unwrap();
    c.service_account(&platform, "onboarding").await.unwrap();
    c.service_account(&platform, "stranger").await.unwrap();
    let backend = BackendOptions {
        kubernetes: Some(backend_kubernetes(&c, &home, "")),
        ..Default::default()
    };
    let st = OidcStack::start_with(backend, "", &platform_section(&c, &platform))
        .await
        .unwrap();
    let _kubelet = TestKubelet::start(
        c.client.clone(),
        &st.backend.instance,
        &format!("node-{}", st.backend.instance),
    )
    .await
    .unwrap();
    let gw = &st.gw;

    // The controller's token, for the audience the gateway expects: a create for team-a.
    let controller = c
        .token(&platform, "onboarding", PLATFORM_AUDIENCE, None, 600)
        .await
        .unwrap();
    let (s, me) = send(gw, &controller, "GET", "/auth/me", None).await;
    assert_eq!(s, 200, "{me}\n{}", gw.log());
    assert_eq!(
        me["subject"],
        format!("system:serviceaccount:{platform}:onboarding")
    );
    assert_eq!(me["role"], "platform_controller");
    assert_eq!(me["authMethod"], "service_account");
    let (s, v) = send(
        gw,
        &controller,
        "POST",
        "/v1/sandboxes",
        Some(&body(json!({"gatehouse.tenant.team": "team-a"}))),
    )
    .await;
    assert_eq!(s, 202, "{v}\n{}", gw.log());
    let id = v["id"].as_str().unwrap().to_string();
    // Outside its allowlist: 403 naming the field, as for the key path.
    let (s, v) = send(
        gw,
        &controller,
        "POST",
        "/v1/sandboxes",
        Some(&body(json!({"gatehouse.tenant.team": "team-b"}))),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["code"], "GATEWAY::PLATFORM_NOT_ALLOWED");

    // The tenant's user (an OIDC bearer, beside the ServiceAccount path) sees it; another
    // team's user does not; the controller sees what it made.
    let cb = format!("{}/auth/callback", gw.url);
    let alice = tokens_for(&st.idp, "alice", &cb)
        .await
        .unwrap()
        .access_token;
    let carol = tokens_for(&st.idp, "carol", &cb)
        .await
        .unwrap()
        .access_token;
    for who in [&alice, &controller] {
        let (s, v) = send(gw, who, "GET", "/v1/sandboxes", None).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(ids(&v), vec![id.clone()], "{v}");
    }
    let (s, v) = send(gw, &alice, "GET", &format!("/v1/sandboxes/{id}"), None).await;
    assert_eq!((s, v["id"].as_str()), (200, Some(id.as_str())), "{v}");
    let (s, v) = send(gw, &carol, "GET", "/v1/sandboxes", None).await;
    assert_eq!(s, 200, "{v}");
    assert!(ids(&v).is_empty(), "{v}");
    let (s, _) = send(gw, &carol, "GET", &format!("/v1/sandboxes/{id}"), None).await;
    assert_eq!(s, 404);

    // Refusals, in the API's error shape.
    let wrong_aud = c
        .token(&platform, "onboarding", "someone-else", None, 600)
        .await
        .unwrap();
    let stranger = c
        .token(&platform, "stranger", PLATFORM_AUDIENCE, None, 600)
        .await
        .unwrap();
    // Looks like a ServiceAccount token (so it is this authenticator's to decide) but
    // is signed by nobody the API server knows.
    let forged = {
        let (head, rest) = controller.split_once('.').unwrap();
        let (payload, _) = rest.split_once('.').unwrap();
        format!("{head}.{payload}.c2lnbmF0dXJl")
    };
    for (name, t, status, code) in [
        (
            "wrong audience",
            wrong_aud.as_str(),
            401,
            "GATEWAY::INVALID_SERVICE_ACCOUNT_TOKEN",
        ),
        (
            "forged",
            forged.as_str(),
            401,
            "GATEWAY::INVALID_SERVICE_ACCOUNT_TOKEN",
        ),
        (
            "not a controller",
            stranger.as_str(),
            403,
            "GATEWAY::NOT_A_PLATFORM_CONTROLLER",
        ),
        ("garbage", "not-a-token", 401, "GATEWAY::INVALID_TOKEN"),
    ] {
        let (s, v) = send(gw, t, "GET", "/v1/sandboxes", None).await;
        assert_eq!(s, status, "{name}: {v}");
        assert_eq!(v["code"], code, "{name}: {v}");
        assert!(v["message"].is_string(), "{name}: {v}");
    }

    // The audit event names the ServiceAccount, the controller and the tenant.
    let made = wait_for(
        "the create's audit event",
        Duration::from_secs(10),
        || async {
            gw.audit_events()
                .into_iter()
                .find(|e| e["action"] == "sandbox:create" && e["sandbox_id"] == id.as_str())
        },
    )
    .await
    .unwrap();
    let p = &made["principal"];
    assert_eq!(
        p["subject"],
        format!("system:serviceaccount:{platform}:onboarding")
    );
    assert_eq!(p["auth_method"], "service_account");
    assert_eq!(p["key_name"], "onboarding");
    assert_eq!(p["role"], "platform_controller");
    assert_eq!(made["on_behalf_of"]["team"], "team-a");
    let (s, _) = send(
        gw,
        &controller,
        "DELETE",
        &format!("/v1/sandboxes/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    for t in [&controller, &wrong_aud, &stranger, &alice] {
        assert!(!gw.exposes(t), "a token appears in the log or audit");
    }
}

/// The API server down: a token it never reviewed is 503 with `Retry-After` (never let
/// through), a token it reviewed before is served from the cache.
#[tokio::test]
async fn with_the_api_server_down_new_controller_tokens_are_503_and_cached_ones_work() {
    let c = Cluster::private().await.unwrap();
    let platform = "platform";
    c.namespace(platform).await.unwrap();
    c.service_account(platform, "onboarding").await.unwrap();
    let gw = Gateway::start(
        &format!("http://127.0.0.1:{}", gatehouse_tests::free_port()),
        "unused-key",
        &platform_section(&c, platform),
    )
    .await
    .unwrap();
    let reviewed = c
        .token(platform, "onboarding", PLATFORM_AUDIENCE, None, 600)
        .await
        .unwrap();
    let fresh = c
        .token(platform, "onboarding", PLATFORM_AUDIENCE, None, 600)
        .await
        .unwrap();
    let (s, v) = send(&gw, &reviewed, "GET", "/auth/me", None).await;
    assert_eq!(s, 200, "{v}");

    let argv = c.stop_apiserver().unwrap();
    let r = reqwest::Client::new()
        .get(gw.at("/auth/me"))
        .bearer_auth(&fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "GATEWAY::AUTH_UNAVAILABLE", "{v}");
    let (s, v) = send(&gw, &reviewed, "GET", "/auth/me", None).await;
    assert_eq!(s, 200, "the reviewed token is served from the cache: {v}");

    // Back: the controller's retry gets in (the API server may refuse reviews for a
    // moment while it starts, and a refusal is remembered for 10 s).
    c.start_apiserver(&argv).await.unwrap();
    let v = wait_for(
        "the new token accepted",
        Duration::from_secs(60),
        || async {
            let (s, v) = send(&gw, &fresh, "GET", "/auth/me", None).await;
            (s == 200).then_some(v)
        },
    )
    .await
    .unwrap();
    assert_eq!(v["authMethod"], "service_account");
}

#[tokio::test]
async fn a_sandbox_pod_gets_a_projected_token_that_becomes_its_identity() {
    let c = Cluster::shared().await.unwrap();
    let ns = format!("sbxid-{}", short());
    c.namespace(&ns).await.unwrap();
    let b = Backend::start(BackendOptions {
        kubernetes: Some(backend_kubernetes(
            &c,
            &ns,
            &format!(
                "\n[kubernetes.sandbox_identity]\nservice_account = \"sandbox\"\n\
                 audience = \"{SANDBOX_AUDIENCE}\"\nexpiration_seconds = 900\n"
            ),
        )),
        ..Default::default()
    })
    .await
    .unwrap();
    let _kubelet = TestKubelet::start(
        c.client.clone(),
        &b.instance,
        &format!("node-{}", b.instance),
    )
    .await
    .unwrap();
    let extra = format!(
        "[sandbox_identity]\nissuer = \"gatehouse-e2e\"\naudience = \"gatehouse-e2e\"\npush = false\n\n\
         [sandbox_identity.kubernetes]\nkubeconfig_path = \"{}\"\naudience = \"{SANDBOX_AUDIENCE}\"\n\
         namespaces = [\"{ns}\"]\nservice_account = \"sandbox\"\ntimeout_ms = 5000\n\n{TRUSTED_PROXY_SECTION}",
        c.kubeconfig.display()
    );
    let gw = Gateway::start(&b.url, &b.api_key, &extra).await.unwrap();
    let alice = user("alice", Some("team-a"), Some("operator"));
    let mut made = Vec::new();
    for _ in 0..2 {
        let (s, v) = send_req(alice.post(gw.at("/v1/sandboxes")).json(&body(json!({})))).await;
        assert_eq!(s, 202, "{v}\n{}", b.log());
        made.push(v["id"].as_str().unwrap().to_string());
    }
    let (id, other) = (&made[0], &made[1]);

    // The Pod as the API server has it: the sandbox ServiceAccount, no API token, and the
    // projected identity token for the gateway's audience, read-only, named by the env.
    let pod = Api::<Pod>::namespaced(c.client.clone(), &ns)
        .get(&format!("sandbox-{id}"))
        .await
        .unwrap();
    let spec = pod.spec.clone().unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("sandbox"));
    assert_eq!(spec.automount_service_account_token, Some(false));
    let volume = spec
        .volumes
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.projected.is_some())
        .expect("a projected volume");
    let projected = volume.projected.unwrap().sources.unwrap()[0]
        .service_account_token
        .clone()
        .expect("a serviceAccountToken projection");
    assert_eq!(projected.audience.as_deref(), Some(SANDBOX_AUDIENCE));
    assert_eq!(projected.expiration_seconds, Some(900));
    let container = &spec.containers[0];
    let mount = container
        .volume_mounts
        .clone()
        .unwrap()
        .into_iter()
        .find(|m| m.name == volume.name)
        .unwrap();
    assert_eq!(mount.read_only, Some(true));
    let file = format!("{}/{}", mount.mount_path, projected.path);
    let env = container.env.clone().unwrap();
    let named = env
        .iter()
        .find(|e| e.name == "GATEHOUSE_SERVICE_ACCOUNT_TOKEN_FILE")
        .unwrap();
    assert_eq!(named.value.as_deref(), Some(file.as_str()));

    // Playing kubelet: the token it would write into that file, bound to this pod.
    let projected_token = c
        .token(
            &ns,
            spec.service_account_name.as_deref().unwrap(),
            projected.audience.as_deref().unwrap(),
            Some(&pod),
            600,
        )
        .await
        .unwrap();
    let (s, v) = send_req(
        reqwest::Client::new()
            .post(gw.at("/auth/sandbox/token"))
            .bearer_auth(&projected_token),
    )
    .await;
    assert_eq!(s, 200, "{v}\n{}", gw.log());
    assert_eq!(v["sandboxId"], id.as_str());
    let sandbox_token = v["token"].as_str().unwrap().to_owned();
    let (s, v) = send(
        &gw,
        &sandbox_token,
        "GET",
        &format!("/v1/sandboxes/{id}"),
        None,
    )
    .await;
    assert_eq!((s, v["id"].as_str()), (200, Some(id.as_str())), "{v}");
    let (s, v) = send(
        &gw,
        &sandbox_token,
        "GET",
        &format!("/v1/sandboxes/{other}"),
        None,
    )
    .await;
    assert_eq!(s, 404, "{v}");
    for t in [&projected_token, &sandbox_token] {
        assert!(!gw.exposes(t), "a token appears in the log or audit");
    }
}
