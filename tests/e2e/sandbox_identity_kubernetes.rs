//! Sandbox identities on Kubernetes (pull bootstrap) against the real kube-apiserver
//! (`dev/kubernetes/`): a pod-bound, audience-bound ServiceAccount token from the
//! TokenRequest API (what kubelet projects into a sandbox pod) is exchanged at
//! `POST /auth/sandbox/token` for a sandbox token. The gateway asks the API server's
//! TokenReview, requires the sandbox ServiceAccount in an allowed namespace, fetches the
//! bound pod, checks its UID and reads its `opensandbox.io/id` label.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::api::send_req;
use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::k8s::Cluster;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::Api;
use serde_json::Value;

const AUDIENCE: &str = "gatehouse-e2e";

fn short() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// Creates pod `name` in `ns` running as `sa`, labelled with sandbox `id` when given.
async fn pod(c: &Cluster, ns: &str, name: &str, sa: &str, id: Option<&str>) -> Pod {
    let labels = id.map(|id| [("opensandbox.io/id".to_string(), id.to_string())].into());
    let p = Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels,
            ..Default::default()
        },
        spec: Some(PodSpec {
            service_account_name: Some(sa.into()),
            automount_service_account_token: Some(false),
            containers: vec![Container {
                name: "main".into(),
                image: Some("busybox".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    Api::<Pod>::namespaced(c.client.clone(), ns)
        .create(&PostParams::default(), &p)
        .await
        .unwrap()
}

async fn exchange(gw: &Gateway, token: &str) -> (u16, Value) {
    send_req(
        reqwest::Client::new()
            .post(gw.at("/auth/sandbox/token"))
            .bearer_auth(token),
    )
    .await
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &data_encoding::BASE64URL_NOPAD
            .decode(payload.as_bytes())
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_pod_bound_service_account_token_becomes_a_sandbox_token() {
    let c = Cluster::shared().await.unwrap();
    let (ns, ns_other) = (format!("sbx-{}", short()), format!("sbx-{}", short()));
    c.namespace(&ns).await.unwrap();
    c.namespace(&ns_other).await.unwrap();
    c.service_account(&ns, "builder").await.unwrap();
    let extra = format!(
        "[sandbox_identity]\nissuer = \"gatehouse-e2e\"\naudience = \"gatehouse-e2e\"\npush = false\n\n\
         [sandbox_identity.kubernetes]\nkubeconfig_path = \"{}\"\naudience = \"{AUDIENCE}\"\n\
         namespaces = [\"{ns}\"]\nservice_account = \"sandbox\"\ntimeout_ms = 5000\n",
        c.kubeconfig.display()
    );
    // No backend is needed for the exchange: the upstream is a closed port.
    let gw = Gateway::start(
        &format!("http://127.0.0.1:{}", gatehouse_tests::free_port()),
        "unused-key",
        &extra,
    )
    .await
    .unwrap();

    // The good exchange: the sandbox token names the pod's sandbox and authenticates.
    let p1 = pod(&c, &ns, "sbx-pod-1", "sandbox", Some("sbx-k8s-1")).await;
    let sa_token = c
        .token(&ns, "sandbox", AUDIENCE, Some(&p1), 600)
        .await
        .unwrap();
    let (s, v) = exchange(&gw, &sa_token).await;
    assert_eq!(s, 200, "{v}");
    let t = v["token"].as_str().unwrap().to_owned();
    assert_eq!(v["sandboxId"], "sbx-k8s-1");
    let cl = claims(&t);
    assert_eq!(cl["sub"], "sbx-k8s-1");
    assert_eq!(cl["aud"], "gatehouse-e2e");
    let (s, me) = send_req(
        reqwest::Client::new()
            .get(gw.at("/auth/me"))
            .bearer_auth(&t),
    )
    .await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["subject"], "sandbox:sbx-k8s-1");
    assert_eq!(me["role"], "sandbox");
    assert_eq!(me["authMethod"], "sandbox_token");

    // Refusals, each in the error shape.
    let check = |name: &'static str, got: (u16, Value), status: u16, code: &str| {
        assert_eq!(got.0, status, "{name}: {}", got.1);
        assert_eq!(got.1["code"], code, "{name}: {}", got.1);
        assert!(got.1["message"].is_string(), "{name}");
    };
    let invalid = "GATEWAY::INVALID_SERVICE_ACCOUNT_TOKEN";

    // Another ServiceAccount of the namespace.
    let p2 = pod(&c, &ns, "builder-pod", "builder", Some("sbx-k8s-2")).await;
    let wrong_sa = c
        .token(&ns, "builder", AUDIENCE, Some(&p2), 600)
        .await
        .unwrap();
    check(
        "wrong ServiceAccount",
        exchange(&gw, &wrong_sa).await,
        403,
        "GATEWAY::WRONG_SERVICE_ACCOUNT",
    );

    // Another audience.
    let wrong_aud = c
        .token(
            &ns,
            "sandbox",
            "https://kubernetes.default.svc",
            Some(&p1),
            600,
        )
        .await
        .unwrap();
    check(
        "wrong audience",
        exchange(&gw, &wrong_aud).await,
        401,
        invalid,
    );

    // A namespace not allowed.
    let p3 = pod(&c, &ns_other, "sbx-pod-3", "sandbox", Some("sbx-k8s-3")).await;
    let other_ns = c
        .token(&ns_other, "sandbox", AUDIENCE, Some(&p3), 600)
        .await
        .unwrap();
    check(
        "namespace not allowed",
        exchange(&gw, &other_ns).await,
        403,
        "GATEWAY::NAMESPACE_NOT_ALLOWED",
    );

    // Not bound to a pod.
    let unbound = c.token(&ns, "sandbox", AUDIENCE, None, 600).await.unwrap();
    check("not pod-bound", exchange(&gw, &unbound).await, 401, invalid);

    // A pod that is not a sandbox (no id label).
    let p4 = pod(&c, &ns, "plain-pod", "sandbox", None).await;
    let plain = c
        .token(&ns, "sandbox", AUDIENCE, Some(&p4), 600)
        .await
        .unwrap();
    check(
        "no sandbox label",
        exchange(&gw, &plain).await,
        403,
        "GATEWAY::NOT_A_SANDBOX_POD",
    );

    // The pod deleted, then re-created under the same name (another UID).
    let pods = Api::<Pod>::namespaced(c.client.clone(), &ns);
    pods.delete("sbx-pod-1", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    gatehouse_tests::wait_for("pod gone", std::time::Duration::from_secs(30), || {
        let pods = pods.clone();
        async move { pods.get_opt("sbx-pod-1").await.ok().filter(Option::is_none) }
    })
    .await
    .unwrap();
    check("pod deleted", exchange(&gw, &sa_token).await, 401, invalid);
    let again = pod(&c, &ns, "sbx-pod-1", "sandbox", Some("sbx-k8s-1")).await;
    assert_ne!(again.metadata.uid, p1.metadata.uid);
    check("UID mismatch", exchange(&gw, &sa_token).await, 401, invalid);

    // No credential at all, and a garbage one.
    check(
        "no token",
        send_req(reqwest::Client::new().post(gw.at("/auth/sandbox/token"))).await,
        401,
        "GATEWAY::MISSING_SERVICE_ACCOUNT_TOKEN",
    );
    check("garbage", exchange(&gw, "not-a-token").await, 401, invalid);

    // No ServiceAccount token reached the log or the audit trail.
    for t in [&sa_token, &wrong_sa, &t] {
        assert!(
            !gw.exposes(t),
            "a token appears in the gateway's log or audit"
        );
    }
}
