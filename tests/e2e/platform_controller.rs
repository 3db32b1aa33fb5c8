//! The platform-controller principal (issue 14): a trusted control plane, authenticated by
//! a named key of kind `platform_controller`, creates sandboxes on behalf of tenants
//! through a real gateway. On a real kube-apiserver (`dev/kubernetes/`, the test kubelet
//! plays the node) the Pod read back shows the namespace, RuntimeClass, ServiceAccount
//! and Secret env refs it asked for; anything outside its allowlists is 403 naming the
//! field and creates nothing. The tenant's users see the sandbox, nobody else does, and
//! the audit trail names both the controller and the tenant. On Docker the placement
//! fields are refused with a clear 400.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::k8s::Cluster;
use gatehouse_tests::kubelet::TestKubelet;
use gatehouse_tests::principals::{keyed, user, TRUSTED_PROXY_SECTION};
use gatehouse_tests::{wait_for, Backend, BackendOptions};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::Api;
use serde_json::{json, Value};
use std::time::Duration;

const CONTROLLER_KEY: &str = "pc-onboarding-key-0123456789";
const TEAM_A_KEY: &str = "team-a-ci-key-0123456789";

fn short() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

fn sha(key: &str) -> String {
    gatehouse_authn::sha256_hex(key)
}

/// The gateway's `[[auth.api_keys]]` and `[platform]`: the controller may act for
/// `team-a` only, in `namespace`, with RuntimeClass gvisor, ServiceAccount `runner` and
/// Secrets `tenant-a-*`.
fn gateway_extra(namespace: &str) -> String {
    format!(
        "[[auth.api_keys]]\nname = \"onboarding\"\nsha256 = \"{}\"\nkind = \"platform_controller\"\nrole = \"platform_controller\"\n\n\
         [[auth.api_keys]]\nname = \"team-a-ci\"\nsha256 = \"{}\"\nrole = \"operator\"\nteam = \"team-a\"\n\n\
         [[platform.controllers]]\nname = \"onboarding\"\ntenants = [\"team-a\"]\nnamespaces = [\"{namespace}\"]\n\
         runtime_classes = [\"gvisor\"]\nservice_accounts = [\"runner\"]\nsecrets = [\"tenant-a-*\"]\n\n{TRUSTED_PROXY_SECTION}",
        sha(CONTROLLER_KEY),
        sha(TEAM_A_KEY),
    )
}

fn body(extensions: Value) -> Value {
    json!({
        "image": {"uri": "gatehouse/busybox:latest"},
        "entrypoint": ["/bin/serve", "--port", "8080"],
        "timeout": 600,
        "resourceLimits": {"cpu": "250m", "memory": "64Mi"},
        "env": {"GREETING": "hi"},
        "metadata": {"access.team": "forged", "purpose": "onboarding"},
        "extensions": extensions,
    })
}

async fn send(c: &reqwest::Client, method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
    let mut r = c.request(method.parse().unwrap(), url);
    if let Some(b) = body {
        r = r.json(b);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str().map(str::to_owned))
        .collect()
}

async fn runtime_class(cluster: &Cluster, name: &str) {
    let rc: Api<RuntimeClass> = Api::all(cluster.client.clone());
    let obj = RuntimeClass {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        handler: "runsc".into(),
        ..Default::default()
    };
    if let Err(e) = rc.create(&PostParams::default(), &obj).await {
        assert!(matches!(&e, kube::Error::Api(s) if s.code == 409), "{e}");
    }
}

/// Audit events of `action` once at least `n` are written.
async fn audited(gw: &Gateway, action: &str, n: usize) -> Vec<Value> {
    wait_for(
        &format!("{n} audit events {action}"),
        Duration::from_secs(10),
        || async {
            let ev: Vec<Value> = gw
                .audit_events()
                .into_iter()
                .filter(|e| e["action"] == action)
                .collect();
            (ev.len() >= n).then_some(ev)
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_controller_places_tenant_sandboxes_within_its_allowlists() {
    let cluster = Cluster::shared().await.unwrap();
    let tag = short();
    let (home, tenant_ns, other_ns) = (
        format!("pc-{tag}"),
        format!("pc-{tag}-a"),
        format!("pc-{tag}-x"),
    );
    for ns in [&home, &tenant_ns, &other_ns] {
        cluster.namespace(ns).await.unwrap();
    }
    cluster.service_account(&tenant_ns, "runner").await.unwrap();
    runtime_class(&cluster, "gvisor").await;
    runtime_class(&cluster, "kata").await;
    // The backend would allow more than the controller may ask for: the gateway's
    // allowlists are what refuse these.
    let b = Backend::start(BackendOptions {
        kubernetes: Some(format!(
            "kubeconfig_path = \"{}\"\nnamespace = \"{home}\"\nservice_account = \"sandbox\"\n\
             sandbox_create_timeout_seconds = 20\napi_timeout = 5\n\
             namespace_allowlist = [\"{tenant_ns}\", \"{other_ns}\"]\n\
             allowed_runtime_classes = [\"gvisor\", \"kata\"]\n\
             allowed_service_accounts = [\"runner\", \"sandbox\"]\n\
             allowed_secrets = [\"tenant-a-creds\", \"tenant-a-extra\", \"platform-root\"]\n",
            cluster.kubeconfig.display()
        )),
        ..Default::default()
    })
    .await
    .unwrap();
    let _kubelet = TestKubelet::start(
        cluster.client.clone(),
        &b.instance,
        &format!("node-{}", b.instance),
    )
    .await
    .unwrap();
    let gw = Gateway::start(&b.url, &b.api_key, &gateway_extra(&tenant_ns))
        .await
        .unwrap();
    let controller = keyed(CONTROLLER_KEY);
    let sandboxes = gw.at("/v1/sandboxes");

    // Allowed: the tenant, its namespace, RuntimeClass, ServiceAccount and Secret refs.
    let ok = body(json!({
        "gatehouse.tenant.team": "team-a",
        "kubernetes.namespace": tenant_ns,
        "kubernetes.runtimeClassName": "gvisor",
        "kubernetes.serviceAccountName": "runner",
        "kubernetes.secretEnv": "[{\"name\":\"API_TOKEN\",\"secretKeyRef\":{\"name\":\"tenant-a-creds\",\"key\":\"token\"}}]",
        "kubernetes.secretEnvFrom": "[\"tenant-a-extra\"]",
    }));
    let (s, v) = send(&controller, "POST", &sandboxes, Some(&ok)).await;
    assert_eq!(s, 202, "{v}\n{}", gw.log());
    assert_eq!(v["status"]["state"], "Running", "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let pod = Api::<Pod>::namespaced(cluster.client.clone(), &tenant_ns)
        .get(&format!("sandbox-{id}"))
        .await
        .unwrap();
    let spec = pod.spec.unwrap();
    assert_eq!(spec.runtime_class_name.as_deref(), Some("gvisor"));
    assert_eq!(spec.service_account_name.as_deref(), Some("runner"));
    let c = &spec.containers[0];
    let env = c.env.clone().unwrap();
    let token = env.iter().find(|e| e.name == "API_TOKEN").unwrap();
    let r = token
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (r.name.as_str(), r.key.as_str()),
        ("tenant-a-creds", "token")
    );
    assert!(token.value.is_none());
    assert!(env.iter().any(|e| e.name == "GREETING"));
    let from = c.env_from.clone().unwrap();
    assert_eq!(from[0].secret_ref.as_ref().unwrap().name, "tenant-a-extra");
    // The tenant's scope, not the forged one and not the controller's.
    let labels = pod.metadata.labels.unwrap();
    assert_eq!(
        labels["access.team"],
        gatehouse_scope::token::canonical("team-a")
    );

    // Outside an allowlist: 403 naming the field, and no pod anywhere.
    for (key, value) in [
        ("gatehouse.tenant.team", "team-b".to_string()),
        ("kubernetes.namespace", other_ns.clone()),
        ("kubernetes.runtimeClassName", "kata".to_string()),
        ("kubernetes.serviceAccountName", "sandbox".to_string()),
        (
            "kubernetes.secretEnv",
            "[{\"name\":\"ROOT\",\"secretKeyRef\":{\"name\":\"platform-root\",\"key\":\"t\"}}]"
                .to_string(),
        ),
        (
            "kubernetes.secretEnvFrom",
            "[\"platform-root\"]".to_string(),
        ),
    ] {
        let mut ext = json!({"gatehouse.tenant.team": "team-a", "kubernetes.namespace": tenant_ns});
        ext[key] = json!(value);
        let (s, v) = send(&controller, "POST", &sandboxes, Some(&body(ext))).await;
        assert_eq!(s, 403, "{key}: {v}");
        assert_eq!(v["code"], "GATEWAY::PLATFORM_NOT_ALLOWED", "{v}");
        let msg = v["message"].as_str().unwrap();
        assert!(msg.contains(&format!("'extensions.{key}'")), "{msg}");
        assert!(msg.contains("'onboarding'"), "{msg}");
    }
    for ns in [&tenant_ns, &other_ns, &home] {
        let pods = Api::<Pod>::namespaced(cluster.client.clone(), ns)
            .list(&ListParams::default())
            .await
            .unwrap();
        let expected = usize::from(ns == &tenant_ns);
        assert_eq!(pods.items.len(), expected, "pods in {ns}");
    }

    // Only controllers may send these fields at all.
    let alice = user("alice", Some("team-a"), Some("operator"));
    let (s, v) = send(
        &alice,
        "POST",
        &sandboxes,
        Some(&body(json!({"kubernetes.runtimeClassName": "gvisor"}))),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["code"], "GATEWAY::CONTROLLER_ONLY");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("'extensions.kubernetes.runtimeClassName'"));

    // The tenant's users see it (a user of team-a, a team-a key); team-b does not; the
    // controller sees what it made.
    for who in [&alice, &keyed(TEAM_A_KEY), &controller] {
        let (s, v) = send(who, "GET", &sandboxes, None).await;
        assert_eq!(s, 200);
        assert_eq!(ids(&v), vec![id.clone()], "{v}");
        let (s, _) = send(who, "GET", &gw.at(&format!("/v1/sandboxes/{id}")), None).await;
        assert_eq!(s, 200);
    }
    let carol = user("carol", Some("team-b"), Some("operator"));
    let (_, v) = send(&carol, "GET", &sandboxes, None).await;
    assert!(ids(&v).is_empty(), "{v}");
    let (s, _) = send(&carol, "GET", &gw.at(&format!("/v1/sandboxes/{id}")), None).await;
    assert_eq!(s, 404);
    // Nobody can take the sandbox away from the controller's scope.
    let (s, v) = send(
        &alice,
        "PATCH",
        &gw.at(&format!("/v1/sandboxes/{id}/metadata")),
        Some(&json!({"access.controller": null})),
    )
    .await;
    assert_eq!(s, 400, "{v}");

    // The audit trail names the controller and the tenant.
    let (s, _) = send(
        &controller,
        "DELETE",
        &gw.at(&format!("/v1/sandboxes/{id}")),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let creates = audited(&gw, "sandbox:create", 8).await;
    let made = creates
        .iter()
        .find(|e| e["sandbox_id"] == id.as_str())
        .unwrap();
    assert_eq!(made["principal"]["subject"], "key:onboarding");
    assert_eq!(made["principal"]["role"], "platform_controller");
    assert_eq!(made["on_behalf_of"]["team"], "team-a");
    let refused: Vec<&Value> = creates
        .iter()
        .filter(|e| e["outcome"] == "denied")
        .collect();
    assert!(refused.len() >= 6, "{refused:?}");
    assert!(refused
        .iter()
        .filter(|e| e["principal"]["subject"] == "key:onboarding")
        .all(|e| e["reason"] == "GATEWAY::PLATFORM_NOT_ALLOWED" && !e["on_behalf_of"].is_null()));
    let deleted = audited(&gw, "sandbox:delete", 1).await;
    assert_eq!(deleted[0]["principal"]["subject"], "key:onboarding");
    assert_eq!(
        deleted[0]["on_behalf_of"]["team"],
        gatehouse_scope::token::canonical("team-a")
    );
    // The durable store behind the audit API keeps both identities too.
    let admin = keyed(&b.api_key);
    let url = gw.at("/gatehouse/v1/audit?actor=key:onboarding&outcome=allowed");
    let stored = wait_for("the stored audit events", Duration::from_secs(10), || {
        let (admin, url) = (admin.clone(), url.clone());
        async move {
            let (s, v) = send(&admin, "GET", &url, None).await;
            (s == 200 && v["items"].as_array().is_some_and(|i| i.len() >= 2)).then_some(v)
        }
    })
    .await
    .unwrap();
    let made = stored["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "sandbox:create")
        .unwrap();
    assert_eq!(made["principal"]["subject"], "key:onboarding");
    assert_eq!(made["on_behalf_of"]["team"], "team-a");
    assert!(!gw.exposes(CONTROLLER_KEY));
}

/// On Docker: the tenant assertion works (the tenant's key sees the sandbox, another
/// team's does not), and placement the Docker driver cannot honour is a clear 400 naming
/// the field.
#[tokio::test]
async fn on_docker_the_tenant_works_and_placement_is_refused_clearly() {
    let b = Backend::start(BackendOptions::default()).await.unwrap();
    let gw = Gateway::start(&b.url, &b.api_key, &gateway_extra("tenant-a"))
        .await
        .unwrap();
    let controller = keyed(CONTROLLER_KEY);
    let sandboxes = gw.at("/v1/sandboxes");
    let mut plain = body(json!({"gatehouse.tenant.team": "team-a"}));
    plain["entrypoint"] = json!(["sleep", "600"]);
    let (s, v) = send(&controller, "POST", &sandboxes, Some(&plain)).await;
    assert_eq!(s, 202, "{v}\n{}", b.log());
    let id = v["id"].as_str().unwrap().to_string();
    let (_, v) = send(&keyed(TEAM_A_KEY), "GET", &sandboxes, None).await;
    assert_eq!(ids(&v), vec![id.clone()]);
    let (_, v) = send(
        &user("carol", Some("team-b"), Some("operator")),
        "GET",
        &sandboxes,
        None,
    )
    .await;
    assert!(ids(&v).is_empty(), "{v}");

    let mut placed = plain.clone();
    placed["extensions"]["kubernetes.namespace"] = json!("tenant-a");
    let (s, v) = send(&controller, "POST", &sandboxes, Some(&placed)).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["code"], "SANDBOX::API_NOT_SUPPORTED");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("kubernetes.namespace"),
        "{v}"
    );
    let (s, _) = send(
        &controller,
        "DELETE",
        &gw.at(&format!("/v1/sandboxes/{id}")),
        None,
    )
    .await;
    assert_eq!(s, 204);
}
