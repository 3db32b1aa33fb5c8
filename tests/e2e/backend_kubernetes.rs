//! `gatehouse-backend` with `runtime.type = "kubernetes"` against a real kube-apiserver
//! (`make test` starts one; `dev/kubernetes/`). No kubelet runs there: the test kubelet
//! (`harness/kubelet.rs`) binds the pods, reports their status and serves their ports on
//! 127.0.0.0/8, so endpoints and the server proxy reach a real socket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::k8s::Cluster;
use gatehouse_tests::kubelet::{frame, read_frame, ws_accept, TestKubelet};
use gatehouse_tests::{repo_root, wait_for, Backend, BackendOptions};
use k8s_openapi::api::core::v1::{Pod, ResourceQuota};
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::{json, Value};
use std::time::Duration;

/// A namespace of its own, a backend in kubernetes mode on it, and a test kubelet.
struct Setup {
    cluster: Cluster,
    ns: String,
    b: Backend,
    _kubelet: TestKubelet,
}

fn short() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// The `[kubernetes]` body every test uses, plus `extra`.
fn kube_section(cluster: &Cluster, ns: &str, extra: &str) -> String {
    let create_timeout = match extra.contains("sandbox_create_timeout_seconds") {
        true => "",
        false => "sandbox_create_timeout_seconds = 20\n",
    };
    format!(
        "kubeconfig_path = \"{}\"\nnamespace = \"{ns}\"\nservice_account = \"sandbox\"\n\
         {create_timeout}api_timeout = 5\n{extra}\n",
        cluster.kubeconfig.display()
    )
}

async fn setup_on(cluster: Cluster, extra: &str) -> Setup {
    setup_full(cluster, extra, "").await
}

async fn setup_full(cluster: Cluster, extra: &str, server_extra: &str) -> Setup {
    let ns = format!("gh-{}", short());
    cluster.namespace(&ns).await.unwrap();
    let b = Backend::start(BackendOptions {
        kubernetes: Some(kube_section(&cluster, &ns, extra)),
        server_extra: server_extra.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let kubelet = TestKubelet::start(
        cluster.client.clone(),
        &b.instance,
        &format!("node-{}", b.instance),
    )
    .await
    .unwrap();
    Setup {
        cluster,
        ns,
        b,
        _kubelet: kubelet,
    }
}

async fn setup(extra: &str) -> Setup {
    setup_on(Cluster::shared().await.unwrap(), extra).await
}

async fn setup_with(extra: &str, server_extra: &str) -> Setup {
    setup_full(Cluster::shared().await.unwrap(), extra, server_extra).await
}

fn body(image: &str, timeout: Option<i64>, metadata: Value) -> Value {
    json!({
        "image": {"uri": image},
        "entrypoint": ["/bin/serve", "--port", "8080"],
        "timeout": timeout,
        "resourceLimits": {"cpu": "250m", "memory": "64Mi"},
        "env": {"GREETING": "hi"},
        "metadata": metadata,
    })
}

async fn post(b: &Backend, path: &str, body: &Value) -> (u16, Value) {
    let r = b.client().post(b.at(path)).json(body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn get(b: &Backend, path: &str) -> (u16, Value) {
    let r = b.client().get(b.at(path)).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn create(b: &Backend, body: Value) -> Value {
    let (s, v) = post(b, "/v1/sandboxes", &body).await;
    assert_eq!(s, 202, "create answered {v}\nbackend log:\n{}", b.log());
    v
}

async fn delete(b: &Backend, id: &str) -> u16 {
    b.client()
        .delete(b.at(&format!("/v1/sandboxes/{id}")))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn pods(s: &Setup, ns: &str) -> Api<Pod> {
    Api::namespaced(s.cluster.client.clone(), ns)
}

async fn pod_gone(api: &Api<Pod>, name: &str) {
    wait_for(
        &format!("pod {name} gone"),
        Duration::from_secs(20),
        || async { matches!(api.get_opt(name).await, Ok(None)).then_some(()) },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn lifecycle_create_list_get_renew_delete() {
    let s = setup("").await;
    let b = &s.b;
    let suite = short();
    let created = create(
        b,
        body(
            "gatehouse/busybox:latest",
            Some(600),
            json!({"suite": suite, "project": "apollo"}),
        ),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["status"]["state"], "Running", "{created}");
    assert_eq!(created["status"]["reason"], "POD_RUNNING");

    // The pod as the API server holds it: labels, annotations, hardening, resources.
    let pod = pods(&s, &s.ns).get(&format!("sandbox-{id}")).await.unwrap();
    let labels = pod.metadata.labels.clone().unwrap();
    assert_eq!(labels["opensandbox.io/id"], id);
    assert_eq!(labels["opensandbox.io/managed-by"], "gatehouse-backend");
    assert_eq!(labels["opensandbox.io/instance"], b.instance);
    assert_eq!(labels["project"], "apollo");
    let ann = pod.metadata.annotations.clone().unwrap();
    assert_eq!(
        ann["opensandbox.io/expires-at"],
        created["expiresAt"].as_str().unwrap()
    );
    let spec = pod.spec.clone().unwrap();
    assert_eq!(spec.automount_service_account_token, Some(false));
    assert_eq!(spec.service_account_name.as_deref(), Some("sandbox"));
    assert_eq!(
        spec.security_context
            .unwrap()
            .seccomp_profile
            .unwrap()
            .type_,
        "RuntimeDefault"
    );
    let c = &spec.containers[0];
    assert_eq!(
        c.command.clone().unwrap(),
        vec!["/bin/serve", "--port", "8080"]
    );
    let sc = c.security_context.clone().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.capabilities.unwrap().drop.unwrap(), vec!["ALL"]);
    let limits = c.resources.clone().unwrap().limits.unwrap();
    assert_eq!(limits["cpu"].0, "250m");
    assert_eq!(c.env.clone().unwrap()[0].value.as_deref(), Some("hi"));

    // Get, list with label (metadata) and state filters.
    let (st, got) = get(b, &format!("/v1/sandboxes/{id}")).await;
    assert_eq!((st, &got["status"]["state"]), (200, &json!("Running")));
    let second = create(
        b,
        body(
            "gatehouse/busybox:latest",
            None,
            json!({"suite": suite, "project": "gemini"}),
        ),
    )
    .await;
    let id2 = second["id"].as_str().unwrap().to_string();
    let (_, v) = get(b, &format!("/v1/sandboxes?metadata=suite%3D{suite}")).await;
    assert_eq!(v["pagination"]["totalItems"], 2, "{v}");
    let (_, v) = get(
        b,
        &format!("/v1/sandboxes?metadata=suite%3D{suite}%26project%3Dgemini&state=running"),
    )
    .await;
    assert_eq!(v["pagination"]["totalItems"], 1, "{v}");
    assert_eq!(v["items"][0]["id"], id2);
    let (_, v) = get(
        b,
        &format!("/v1/sandboxes?metadata=suite%3D{suite}&state=paused"),
    )
    .await;
    assert_eq!(v["pagination"]["totalItems"], 0);

    // Renew.
    let at = chrono::Utc::now() + chrono::Duration::hours(3);
    let (st, v) = post(
        b,
        &format!("/v1/sandboxes/{id}/renew-expiration"),
        &json!({"expiresAt": at.to_rfc3339()}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (_, got) = get(b, &format!("/v1/sandboxes/{id}")).await;
    assert_eq!(got["expiresAt"], v["expiresAt"]);

    // Pause and resume: not supported on Kubernetes.
    for op in ["pause", "resume"] {
        let (st, v) = post(b, &format!("/v1/sandboxes/{id}/{op}"), &json!({})).await;
        assert_eq!(st, 501, "{v}");
        assert_eq!(v["code"], "SANDBOX::API_NOT_SUPPORTED");
    }

    // Delete: gone from the API, 404 after, the pod removed.
    for sid in [&id, &id2] {
        assert_eq!(delete(b, sid).await, 204);
        let (st, _) = get(b, &format!("/v1/sandboxes/{sid}")).await;
        assert_eq!(st, 404);
        assert_eq!(delete(b, sid).await, 404);
        pod_gone(&pods(&s, &s.ns), &format!("sandbox-{sid}")).await;
    }
}

#[tokio::test]
async fn endpoint_and_server_proxy_reach_the_pod_port() {
    let s = setup("").await;
    let b = &s.b;
    let created = create(b, body("gatehouse/busybox:latest", Some(600), json!({}))).await;
    let id = created["id"].as_str().unwrap().to_string();
    let pod = pods(&s, &s.ns).get(&format!("sandbox-{id}")).await.unwrap();
    let ip = pod.status.unwrap().pod_ip.unwrap();
    assert!(ip.starts_with("127."), "{ip}");

    let (st, ep) = get(b, &format!("/v1/sandboxes/{id}/endpoints/8080")).await;
    assert_eq!(st, 200, "{ep}");
    assert_eq!(ep["endpoint"], format!("{ip}:8080"));
    let text = reqwest::get(format!("http://{ip}:8080/direct"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, format!("pod=sandbox-{id} port=8080 path=/direct"));

    // The server proxy streams to the pod port, both mounts.
    for prefix in ["", "/v1"] {
        let r = b
            .client()
            .get(b.at(&format!("{prefix}/sandboxes/{id}/proxy/44772/ping?x=1")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.text().await.unwrap(),
            format!("pod=sandbox-{id} port=44772 path=/ping?x=1")
        );
    }

    // A WebSocket through the proxy: the pod's handshake and frames come back intact.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = b.url.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "GET /sandboxes/{id}/proxy/8080/ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOPEN-SANDBOX-API-KEY: {}\r\n\r\n",
        b.api_key
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed during the handshake");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let accept = ws_accept("dGhlIHNhbXBsZSBub25jZQ==");
    assert!(
        head.lines().any(|l| l.to_ascii_lowercase()
            == format!("sec-websocket-accept: {}", accept.to_ascii_lowercase())),
        "{head}"
    );
    let mut pending = buf[head_end..].to_vec();
    for (op, msg) in [
        (0x1u8, b"hello over a websocket".to_vec()),
        (0x2, vec![9u8; 100_000]),
    ] {
        sock.write_all(&frame(op, &msg, Some([9, 8, 7, 6])))
            .await
            .unwrap();
        let (got_op, got) =
            tokio::time::timeout(Duration::from_secs(5), read_frame(&mut sock, &mut pending))
                .await
                .unwrap()
                .expect("an echoed frame");
        assert_eq!((got_op, got.len()), (op, msg.len()));
        assert_eq!(got, msg);
    }
    assert_eq!(delete(b, &id).await, 204);
}

#[tokio::test]
async fn failures_are_reported_with_reasons() {
    let s = setup("").await;
    let b = &s.b;
    // An image that never pulls: Failed with the reason, the kubelet's message kept.
    let v = create(
        b,
        body("registry.invalid/unpullable:1", Some(600), json!({})),
    )
    .await;
    assert_eq!(v["status"]["state"], "Failed", "{v}");
    assert_eq!(v["status"]["reason"], "IMAGE_PULL_FAILED");
    let msg = v["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("ErrImagePull") && msg.contains("registry.invalid/unpullable:1"),
        "{msg}"
    );
    let id = v["id"].as_str().unwrap().to_string();
    let (_, got) = get(b, &format!("/v1/sandboxes/{id}")).await;
    assert_eq!(got["status"]["reason"], "IMAGE_PULL_FAILED");
    let (st, ep) = get(b, &format!("/v1/sandboxes/{id}/endpoints/8080")).await;
    assert_eq!(st, 409, "{ep}");
    assert_eq!(ep["code"], "KUBERNETES::SANDBOX_NOT_RUNNING");

    // A container that exits with code 3.
    let v = create(b, body("gatehouse/exit-3:latest", Some(600), json!({}))).await;
    assert_eq!(v["status"]["state"], "Failed", "{v}");
    assert_eq!(v["status"]["reason"], "CONTAINER_EXITED_ERROR");
    assert_eq!(
        v["status"]["message"],
        "Sandbox container exited with code 3."
    );
    let v = create(b, body("gatehouse/exit-0:latest", Some(600), json!({}))).await;
    assert_eq!(v["status"]["state"], "Terminated", "{v}");

    // OOMKilled, CrashLoopBackOff, Evicted: Failed with their reasons.
    for (image, reason, says) in [
        ("gatehouse/oom:1", "OOM_KILLED", "memory limit"),
        (
            "gatehouse/crashloop:1",
            "CRASH_LOOP_BACK_OFF",
            "last exit code 1",
        ),
        ("gatehouse/evicted:1", "EVICTED", "low on resource"),
    ] {
        let v = create(b, body(image, Some(600), json!({}))).await;
        assert_eq!(
            (&v["status"]["state"], &v["status"]["reason"]),
            (&json!("Failed"), &json!(reason)),
            "{v}"
        );
        assert!(
            v["status"]["message"].as_str().unwrap().contains(says),
            "{v}"
        );
    }
}

#[tokio::test]
async fn an_unschedulable_pod_stays_pending_with_the_schedulers_reason_and_expiry_removes_it() {
    let s = setup_with(
        "sandbox_create_timeout_seconds = 2",
        "min_sandbox_timeout_seconds = 1",
    )
    .await;
    let b = &s.b;
    let v = create(b, body("gatehouse/unschedulable:1", Some(600), json!({}))).await;
    let id = v["id"].as_str().unwrap().to_string();
    let v = wait_for(
        "the scheduler's reason",
        Duration::from_secs(10),
        || async {
            let (_, v) = get(b, &format!("/v1/sandboxes/{id}")).await;
            (v["status"]["reason"] == "POD_UNSCHEDULABLE").then_some(v)
        },
    )
    .await
    .unwrap();
    assert_eq!(v["status"]["state"], "Pending");
    assert!(
        v["status"]["message"]
            .as_str()
            .unwrap()
            .contains("0/1 nodes are available"),
        "{v}"
    );
    assert_eq!(delete(b, &id).await, 204);

    // TTL expiry through the backend's scheduler deletes the pod.
    let v = create(b, body("gatehouse/busybox:latest", Some(2), json!({}))).await;
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["status"]["state"], "Running", "{v}");
    pod_gone(&pods(&s, &s.ns), &format!("sandbox-{id}")).await;
    let (st, _) = get(b, &format!("/v1/sandboxes/{id}")).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn a_pod_deleted_behind_the_backends_back_disappears_and_a_new_backend_adopts() {
    let s = setup("").await;
    let b = &s.b;
    let v = create(
        b,
        body("gatehouse/busybox:latest", Some(600), json!({"k": "v"})),
    )
    .await;
    let id = v["id"].as_str().unwrap().to_string();
    let keep = create(
        b,
        body("gatehouse/busybox:latest", Some(600), json!({"k": "kept"})),
    )
    .await;
    let keep_id = keep["id"].as_str().unwrap().to_string();
    pods(&s, &s.ns)
        .delete(
            &format!("sandbox-{id}"),
            &DeleteParams::default().grace_period(0),
        )
        .await
        .unwrap();
    wait_for("the backend to notice", Duration::from_secs(15), || async {
        (get(b, &format!("/v1/sandboxes/{id}")).await.0 == 404).then_some(())
    })
    .await
    .unwrap();
    let (_, v) = get(b, "/v1/sandboxes?metadata=k%3Dv").await;
    assert_eq!(v["pagination"]["totalItems"], 0, "{v}");

    // A second backend of the same instance with an empty store adopts what it finds.
    let b2 = Backend::start(BackendOptions {
        kubernetes: Some(kube_section(&s.cluster, &s.ns, "")),
        instance: Some(b.instance.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    let v = wait_for("the adoption", Duration::from_secs(15), || async {
        let (st, v) = get(&b2, &format!("/v1/sandboxes/{keep_id}")).await;
        (st == 200).then_some(v)
    })
    .await
    .unwrap();
    assert_eq!(v["metadata"], json!({"k": "kept"}));
    assert_eq!(v["expiresAt"], keep["expiresAt"]);
    assert_eq!(v["status"]["state"], "Running");
    assert_eq!(delete(&b2, &keep_id).await, 204);
    pod_gone(&pods(&s, &s.ns), &format!("sandbox-{keep_id}")).await;
}

#[tokio::test]
async fn the_apiserver_stopped_and_restarted_mid_watch() {
    let cluster = Cluster::private().await.unwrap();
    let s = setup_on(cluster, "").await;
    let b = &s.b;
    let v = create(
        b,
        body(
            "gatehouse/busybox:latest",
            Some(600),
            json!({"phase": "before"}),
        ),
    )
    .await;
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["status"]["state"], "Running");

    let argv = s.cluster.stop_apiserver().unwrap();
    // Reads are served from the last observed state; writes answer 503.
    let (st, got) = get(b, &format!("/v1/sandboxes/{id}")).await;
    assert_eq!(
        (st, &got["status"]["state"]),
        (200, &json!("Running")),
        "{got}"
    );
    let (st, _) = get(b, "/v1/sandboxes?metadata=phase%3Dbefore").await;
    assert_eq!(st, 200);
    let (st, err) = post(
        b,
        "/v1/sandboxes",
        &body("gatehouse/busybox:latest", Some(600), json!({})),
    )
    .await;
    assert_eq!(st, 503, "{err}");
    assert_eq!(err["code"], "KUBERNETES::UNAVAILABLE");
    // A reconciliation round passes without dropping anything.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (st, _) = get(b, &format!("/v1/sandboxes/{id}")).await;
    assert_eq!(st, 200, "nothing is dropped during an outage");

    s.cluster.start_apiserver(&argv).await.unwrap();
    // The watch resumes: a pod deleted now is noticed, and creates work again.
    let v = wait_for("creates to work again", Duration::from_secs(40), || async {
        let (st, v) = post(
            b,
            "/v1/sandboxes",
            &body(
                "gatehouse/busybox:latest",
                Some(600),
                json!({"phase": "after"}),
            ),
        )
        .await;
        (st == 202).then_some(v)
    })
    .await
    .unwrap();
    assert_eq!(v["status"]["state"], "Running", "{v}");
    pods(&s, &s.ns)
        .delete(
            &format!("sandbox-{id}"),
            &DeleteParams::default().grace_period(0),
        )
        .await
        .unwrap();
    wait_for(
        "the resumed watch to see the deletion",
        Duration::from_secs(20),
        || async { (get(b, &format!("/v1/sandboxes/{id}")).await.0 == 404).then_some(()) },
    )
    .await
    .unwrap();
    assert!(b.log().contains("kubernetes pod watch lost"), "{}", b.log());
}

#[tokio::test]
async fn a_missing_permission_is_named() {
    let cluster = Cluster::shared().await.unwrap();
    let ns = format!("gh-{}", short());
    cluster.namespace(&ns).await.unwrap();
    // The backend's own ServiceAccount may read pods but not create them.
    cluster.service_account(&ns, "backend").await.unwrap();
    cluster
        .grant_pods(&ns, "backend", &["get", "list", "watch"])
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("gh-rbac-{}", short()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = cluster.kubeconfig_for(&ns, "backend", &dir).await.unwrap();
    let section = format!(
        "kubeconfig_path = \"{}\"\nnamespace = \"{ns}\"\nservice_account = \"sandbox\"\napi_timeout = 5\n",
        kubeconfig.display()
    );
    let b = Backend::start(BackendOptions {
        kubernetes: Some(section),
        ..Default::default()
    })
    .await
    .unwrap();
    let (st, v) = post(
        &b,
        "/v1/sandboxes",
        &body("gatehouse/busybox:latest", Some(600), json!({})),
    )
    .await;
    assert_eq!(st, 500, "{v}");
    assert_eq!(v["code"], "KUBERNETES::FORBIDDEN");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("'create'") && msg.contains("'pods'") && msg.contains(&format!("'{ns}'")),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("system:serviceaccount:{ns}:backend")),
        "{msg}"
    );
    // Reads it may do still work.
    let (st, _) = get(&b, "/v1/sandboxes").await;
    assert_eq!(st, 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_missing_namespace_and_a_full_quota_say_so() {
    let s = setup("").await;
    // A full ResourceQuota (no quota controller runs, so its status is set here).
    let quotas: Api<ResourceQuota> = Api::namespaced(s.cluster.client.clone(), &s.ns);
    let q = ResourceQuota {
        metadata: ObjectMeta {
            name: Some("pods".into()),
            ..Default::default()
        },
        spec: Some(serde_json::from_value(json!({"hard": {"pods": "1"}})).unwrap()),
        ..Default::default()
    };
    quotas.create(&PostParams::default(), &q).await.unwrap();
    quotas
        .patch_status(
            "pods",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"hard": {"pods": "1"}, "used": {"pods": "1"}}})),
        )
        .await
        .unwrap();
    let (st, v) = wait_for("the quota to apply", Duration::from_secs(10), || async {
        let (st, v) = post(
            &s.b,
            "/v1/sandboxes",
            &body("gatehouse/busybox:latest", Some(600), json!({})),
        )
        .await;
        (st != 202).then_some((st, v))
    })
    .await
    .unwrap();
    assert_eq!(st, 429, "{v}");
    assert_eq!(v["code"], "KUBERNETES::QUOTA_EXCEEDED");
    assert!(
        v["message"].as_str().unwrap().contains("exceeded quota"),
        "{v}"
    );

    // A namespace that does not exist.
    let missing = format!("gh-missing-{}", short());
    let b = Backend::start(BackendOptions {
        kubernetes: Some(kube_section(&s.cluster, &missing, "")),
        ..Default::default()
    })
    .await
    .unwrap();
    let (st, v) = post(
        &b,
        "/v1/sandboxes",
        &body("gatehouse/busybox:latest", Some(600), json!({})),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["code"], "KUBERNETES::NAMESPACE_NOT_FOUND");
    assert!(v["message"].as_str().unwrap().contains(&missing), "{v}");
}

#[tokio::test]
async fn two_teams_in_two_namespaces() {
    let cluster = Cluster::shared().await.unwrap();
    let tag = short();
    let (red, blue) = (format!("t{tag}-red"), format!("t{tag}-blue"));
    for ns in [&red, &blue] {
        cluster.namespace(ns).await.unwrap();
    }
    let extra = format!(
        "namespace_template = \"t{tag}-{{team}}\"\nnamespace_allowlist = [\"{red}\", \"{blue}\"]"
    );
    let s = setup_on(cluster, &extra).await;
    let b = &s.b;
    let r = create(
        b,
        body(
            "gatehouse/busybox:latest",
            Some(600),
            json!({"access.team": "red"}),
        ),
    )
    .await;
    let bl = create(
        b,
        body(
            "gatehouse/busybox:latest",
            Some(600),
            json!({"access.team": "blue"}),
        ),
    )
    .await;
    let plain = create(b, body("gatehouse/busybox:latest", Some(600), json!({}))).await;
    for (v, ns) in [(&r, &red), (&bl, &blue), (&plain, &s.ns)] {
        assert_eq!(v["status"]["state"], "Running", "{v}");
        let id = v["id"].as_str().unwrap();
        pods(&s, ns).get(&format!("sandbox-{id}")).await.unwrap();
    }
    // Each team's list (the gateway adds this filter) holds its own sandbox only.
    let (_, v) = get(b, "/v1/sandboxes?metadata=access.team%3Dred").await;
    assert_eq!(v["pagination"]["totalItems"], 1, "{v}");
    assert_eq!(v["items"][0]["id"], r["id"]);
    let blue_pods = pods(&s, &blue).list(&ListParams::default()).await.unwrap();
    assert_eq!(blue_pods.items.len(), 1);
    // A team whose namespace is not allowed: refused, no pod anywhere.
    let (st, v) = post(
        b,
        "/v1/sandboxes",
        &body(
            "gatehouse/busybox:latest",
            Some(600),
            json!({"access.team": "green"}),
        ),
    )
    .await;
    assert_eq!(st, 403, "{v}");
    assert_eq!(v["code"], "KUBERNETES::NAMESPACE_NOT_ALLOWED");
    let all: Api<Pod> = Api::all(s.cluster.client.clone());
    let ours = all
        .list(&ListParams::default().labels(&format!("opensandbox.io/instance={}", b.instance)))
        .await
        .unwrap();
    assert_eq!(ours.items.len(), 3);
}

/// The real Python SDK: `Sandbox.create` (endpoint resolution and the execd ping answered by
/// the pod's responder), then list, get, endpoint and kill; directly and through the
/// gateway with the backend's own key.
#[tokio::test]
async fn python_sdk_creates_lists_gets_and_kills() {
    let python = std::env::var("GATEHOUSE_PYTHON")
        .expect("GATEHOUSE_PYTHON is not set: run through `make test`, which builds the SDK venv");
    let s = setup("").await;
    let b = &s.b;
    let gw = Gateway::start(&b.url, &b.api_key, "").await.unwrap();
    for url in [&b.url, &gw.url] {
        let token = short();
        let domain = url.trim_start_matches("http://").to_string();
        let out = tokio::process::Command::new(&python)
            .arg(repo_root().join("tests/python/sdk_lifecycle.py"))
            .args([&domain, &b.api_key, "gatehouse/busybox:latest", &token])
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "SDK script failed: {stdout}\n{}\nbackend log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            b.log()
        );
        let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
        let id = seen["id"].as_str().unwrap().to_string();
        assert_eq!(seen["listed_ids"], json!([id]), "{seen}");
        assert!(
            seen["state"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("running"),
            "{seen}"
        );
        assert_eq!(seen["metadata"], json!({"suite": token}));
        assert!(
            seen["endpoint"].as_str().unwrap().starts_with("127."),
            "{seen}"
        );
        let after = seen["after_kill"].as_str().unwrap();
        assert!(
            after.contains("404") || after.to_lowercase().contains("not found"),
            "{seen}"
        );
        pod_gone(&pods(&s, &s.ns), &format!("sandbox-{id}")).await;
    }
}

fn trusted_user(name: &str, team: &str) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("X-OpenSandbox-User", name.parse().unwrap());
    h.insert("X-OpenSandbox-Team", team.parse().unwrap());
    h.insert("X-OpenSandbox-Roles", "operator".parse().unwrap());
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .default_headers(h)
        .build()
        .unwrap()
}

/// Through the gateway: each team's sandboxes land in the team's own namespace (from the
/// `access.team` token the gateway injects), and each team sees and reaches only its own.
#[tokio::test]
async fn through_the_gateway_each_team_gets_its_own_namespace() {
    let cluster = Cluster::shared().await.unwrap();
    let tag = short();
    let template = format!("t{tag}-{{team}}");
    let ns_of = |team: &str| {
        let md = std::collections::BTreeMap::from([(
            "access.team".to_string(),
            gatehouse_scope::token::canonical(team),
        )]);
        gatehouse_runtime_kubernetes::namespace::resolve(&template, &md).unwrap()
    };
    let (ns_a, ns_b) = (ns_of("team-a"), ns_of("team-b"));
    for ns in [&ns_a, &ns_b] {
        cluster.namespace(ns).await.unwrap();
    }
    let extra = format!(
        "namespace_template = \"{template}\"\nnamespace_allowlist = [\"{ns_a}\", \"{ns_b}\"]"
    );
    let s = setup_on(cluster, &extra).await;
    let gw = Gateway::start(
        &s.b.url,
        &s.b.api_key,
        "[auth]\nmode = \"api_key_and_user\"\n\n[auth.trusted_header]\ntrusted_proxies = [\"127.0.0.2/32\"]\n",
    )
    .await
    .unwrap();
    let (alice, carol) = (
        trusted_user("alice", "team-a"),
        trusted_user("carol", "team-b"),
    );
    let mut ids = Vec::new();
    for (who, ns) in [(&alice, &ns_a), (&carol, &ns_b)] {
        let r = who
            .post(gw.at("/v1/sandboxes"))
            .json(&body("gatehouse/busybox:latest", Some(600), json!({})))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"]["state"], "Running", "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        pods(&s, ns).get(&format!("sandbox-{id}")).await.unwrap();
        ids.push(id);
    }
    let (a_id, c_id) = (&ids[0], &ids[1]);
    // Each sees only its own, and reaches only its own pod.
    let v: Value = alice
        .get(gw.at("/v1/sandboxes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seen: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(seen, vec![a_id.as_str()], "{v}");
    let r = carol
        .get(gw.at(&format!("/v1/sandboxes/{a_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = carol
        .get(gw.at(&format!("/v1/sandboxes/{a_id}/proxy/8080/x")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = carol
        .get(gw.at(&format!("/v1/sandboxes/{c_id}/proxy/8080/x")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        format!("pod=sandbox-{c_id} port=8080 path=/x")
    );
    let r = alice
        .delete(gw.at(&format!("/v1/sandboxes/{c_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    for (who, id, ns) in [(&alice, a_id, &ns_a), (&carol, c_id, &ns_b)] {
        let r = who
            .delete(gw.at(&format!("/v1/sandboxes/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        pod_gone(&pods(&s, ns), &format!("sandbox-{id}")).await;
    }
}

/// Plural resource name of a manifest kind.
fn plural(kind: &str) -> &'static str {
    match kind {
        "Namespace" => "namespaces",
        "ServiceAccount" => "serviceaccounts",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "ConfigMap" => "configmaps",
        "Deployment" => "deployments",
        "Service" => "services",
        "PodDisruptionBudget" => "poddisruptionbudgets",
        other => panic!("deploy/kubernetes has a kind this test does not know: {other}"),
    }
}

/// Whether `user` may `verb` `resource` (`sub` subresource) in `ns`, per the API server.
async fn can(
    cluster: &Cluster,
    user: &str,
    verb: &str,
    resource: &str,
    sub: &str,
    ns: &str,
) -> bool {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
    };
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.into()),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(ns.into()),
                verb: Some(verb.into()),
                resource: Some(resource.into()),
                subresource: (!sub.is_empty()).then(|| sub.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<SubjectAccessReview>::all(cluster.client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .is_some_and(|s| s.allowed)
}

/// Applies every object of one manifest file with server-side apply (`dryRun=All` when
/// `dry_run`); returns the objects.
async fn apply_manifest(cluster: &Cluster, file: &std::path::Path, dry_run: bool) -> Vec<Value> {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let text = std::fs::read_to_string(file).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text).unwrap();
    for doc in &docs {
        let kind = doc["kind"].as_str().unwrap();
        let api_version = doc["apiVersion"].as_str().unwrap();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let name = doc["metadata"]["name"].as_str().unwrap();
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            plural(kind),
        );
        let api: Api<DynamicObject> = match doc["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(cluster.client.clone(), ns, &ar),
            None => Api::all_with(cluster.client.clone(), &ar),
        };
        let mut pp = PatchParams::apply("gatehouse-tests").force();
        pp.dry_run = dry_run;
        let applied = api.patch(name, &pp, &Patch::Apply(doc)).await;
        assert!(
            applied.is_ok(),
            "{} {kind}/{name}: {:?}",
            file.display(),
            applied.err()
        );
    }
    docs
}

/// `deploy/kubernetes/`: every manifest is accepted by the real API server (server-side
/// apply with `dryRun=All`; namespaces and RBAC applied for real), the backend's
/// ServiceAccount can do exactly what the driver needs, and `backend.toml` passes the
/// backend's own validation.
#[tokio::test]
async fn deploy_manifests_pass_a_server_side_dry_run() {
    let cluster = Cluster::shared().await.unwrap();
    let dir = repo_root().join("deploy/kubernetes");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    // Namespaces and RBAC first: they are applied for real, the rest only dry-run.
    files.sort_by_key(|p| {
        let n = p.file_name().unwrap().to_string_lossy().to_string();
        (!n.starts_with("namespaces"), !n.starts_with("rbac"), n)
    });
    let mut kinds = Vec::new();
    let mut backend_toml = None;
    let mut gateway_toml = None;
    let mut gateway_replicas = None;
    for file in &files {
        let n = file.file_name().unwrap().to_string_lossy().to_string();
        let real = n.starts_with("namespaces") || n.starts_with("rbac");
        for doc in apply_manifest(&cluster, file, !real).await {
            let kind = doc["kind"].as_str().unwrap().to_string();
            if kind == "ConfigMap" && doc["metadata"]["name"] == "gatehouse-backend" {
                backend_toml = doc["data"]["backend.toml"].as_str().map(str::to_owned);
            }
            if kind == "ConfigMap" && doc["metadata"]["name"] == "gatehouse-gateway" {
                gateway_toml = doc["data"]["gatehouse.toml"].as_str().map(str::to_owned);
            }
            if kind == "Deployment" && doc["metadata"]["name"] == "gatehouse-gateway" {
                gateway_replicas = doc["spec"]["replicas"].as_u64();
            }
            kinds.push(kind);
        }
    }
    for k in [
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no {k} in deploy/kubernetes");
    }
    // Several gateway replicas, sharing sessions and the change log through PostgreSQL.
    assert!(
        gateway_replicas.is_some_and(|n| n >= 3),
        "{gateway_replicas:?}"
    );
    let gw: gatehouse::config::GatewayConfig =
        toml::from_str(&gateway_toml.expect("gatehouse.toml in the ConfigMap")).unwrap();
    // Valid, except that the in-cluster backend name does not resolve outside the cluster.
    if let Err(e) = gw.validate() {
        let e = format!("{e:?}");
        assert!(
            e.contains("upstream.url") && e.contains("cannot resolve"),
            "{e}"
        );
    }
    assert_eq!(gw.store.kind, gatehouse_store::StoreKind::Postgres);
    assert_eq!(
        gw.replication.sessions,
        gatehouse::replication::SessionPlacement::Store
    );

    // Least privilege, as the API server's authorizer sees it.
    let sa = "system:serviceaccount:gatehouse:gatehouse-backend";
    for verb in ["get", "list", "watch", "create", "delete"] {
        assert!(
            can(&cluster, sa, verb, "pods", "", "gatehouse-sandboxes").await,
            "{verb} pods"
        );
    }
    for (verb, res, sub, ns) in [
        ("update", "pods", "", "gatehouse-sandboxes"),
        ("create", "pods", "exec", "gatehouse-sandboxes"),
        ("get", "secrets", "", "gatehouse-sandboxes"),
        ("create", "pods", "", "gatehouse"),
        ("get", "secrets", "", "gatehouse"),
        ("create", "pods", "", "default"),
    ] {
        assert!(
            !can(&cluster, sa, verb, res, sub, ns).await,
            "{verb} {res}/{sub} in {ns} must be denied"
        );
    }
    assert!(
        !can(
            &cluster,
            "system:serviceaccount:gatehouse:gatehouse-gateway",
            "list",
            "pods",
            "",
            "gatehouse-sandboxes"
        )
        .await
    );

    // The backend's ConfigMap is a valid backend configuration for the Kubernetes runtime.
    let cfg = gatehouse_backend::config::Config::parse(
        &backend_toml.expect("backend.toml in the ConfigMap"),
    )
    .unwrap();
    cfg.validate().unwrap();
    assert_eq!(
        cfg.runtime.kind,
        gatehouse_backend::config::RuntimeType::Kubernetes
    );
    assert_eq!(
        cfg.kubernetes.namespace.as_deref(),
        Some("gatehouse-sandboxes")
    );
}

/// Placement through `extensions`: a RuntimeClass, node-selector entries and tolerations
/// the configuration allows reach the pod; anything else is refused before a pod exists.
#[tokio::test]
async fn placement_extensions_only_within_what_is_allowed() {
    use k8s_openapi::api::node::v1::RuntimeClass;
    let s = setup(
        "allowed_runtime_classes = [\"gvisor\"]\nallowed_node_selector_keys = [\"pool\"]\nallowed_toleration_keys = [\"sandbox\"]",
    )
    .await;
    let rc: Api<RuntimeClass> = Api::all(s.cluster.client.clone());
    let gvisor = RuntimeClass {
        metadata: ObjectMeta {
            name: Some("gvisor".into()),
            ..Default::default()
        },
        handler: "runsc".into(),
        ..Default::default()
    };
    if let Err(e) = rc.create(&PostParams::default(), &gvisor).await {
        assert!(matches!(&e, kube::Error::Api(s) if s.code == 409), "{e}");
    }
    let mut ok = body("gatehouse/busybox:latest", Some(600), json!({}));
    ok["extensions"] = json!({
        "kubernetes.runtimeClassName": "gvisor",
        "kubernetes.nodeSelector": "{\"pool\":\"sandboxes\"}",
        "kubernetes.tolerations": "[{\"key\":\"sandbox\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"}]",
    });
    let v = create(&s.b, ok).await;
    let id = v["id"].as_str().unwrap();
    let spec = pods(&s, &s.ns)
        .get(&format!("sandbox-{id}"))
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(spec.runtime_class_name.as_deref(), Some("gvisor"));
    assert_eq!(spec.node_selector.unwrap()["pool"], "sandboxes");
    assert_eq!(spec.tolerations.unwrap()[0].key.as_deref(), Some("sandbox"));

    for (key, value) in [
        ("kubernetes.runtimeClassName", "kata"),
        (
            "kubernetes.nodeSelector",
            "{\"kubernetes.io/hostname\":\"n1\"}",
        ),
        ("kubernetes.tolerations", "[{\"operator\":\"Exists\"}]"),
        ("kubernetes.hostNetwork", "true"),
    ] {
        let mut bad = body("gatehouse/busybox:latest", Some(600), json!({}));
        bad["extensions"] = json!({ key: value });
        let (st, v) = post(&s.b, "/v1/sandboxes", &bad).await;
        assert_eq!(st, 400, "{key}: {v}");
        assert_eq!(v["code"], "KUBERNETES::PLACEMENT_NOT_ALLOWED", "{v}");
    }
    let all = pods(&s, &s.ns).list(&ListParams::default()).await.unwrap();
    assert_eq!(all.items.len(), 1, "no pod for a refused placement");
}

/// The backend running as `deploy/kubernetes/`'s ServiceAccount (a TokenRequest token for
/// `gatehouse/gatehouse-backend`, bound only to the manifests' Role) drives the whole
/// lifecycle in `gatehouse-sandboxes`: that Role is enough, and the pods pass the
/// namespace's PodSecurity `baseline` enforcement.
#[tokio::test]
async fn the_deploy_role_is_enough_for_the_whole_lifecycle() {
    let cluster = Cluster::shared().await.unwrap();
    let dir = repo_root().join("deploy/kubernetes");
    for f in ["namespaces.yaml", "rbac.yaml"] {
        apply_manifest(&cluster, &dir.join(f), false).await;
    }
    let tmp = std::env::temp_dir().join(format!("gh-deploy-{}", short()));
    std::fs::create_dir_all(&tmp).unwrap();
    let kubeconfig = cluster
        .kubeconfig_for("gatehouse", "gatehouse-backend", &tmp)
        .await
        .unwrap();
    let b = Backend::start(BackendOptions {
        kubernetes: Some(format!(
            "kubeconfig_path = \"{}\"\nnamespace = \"gatehouse-sandboxes\"\nservice_account = \"sandbox\"\n\
             sandbox_create_timeout_seconds = 20\napi_timeout = 5\n",
            kubeconfig.display()
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
    let suite = short();
    let v = create(
        &b,
        body(
            "gatehouse/busybox:latest",
            Some(600),
            json!({"suite": suite}),
        ),
    )
    .await;
    assert_eq!(v["status"]["state"], "Running", "{v}\n{}", b.log());
    let id = v["id"].as_str().unwrap().to_string();
    let (_, l) = get(&b, &format!("/v1/sandboxes?metadata=suite%3D{suite}")).await;
    assert_eq!(l["pagination"]["totalItems"], 1, "{l}");
    let (st, ep) = get(&b, &format!("/v1/sandboxes/{id}/endpoints/8080")).await;
    assert_eq!(st, 200, "{ep}");
    let r = b
        .client()
        .get(b.at(&format!("/v1/sandboxes/{id}/proxy/8080/hello")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.text().await.unwrap(),
        format!("pod=sandbox-{id} port=8080 path=/hello")
    );
    assert_eq!(delete(&b, &id).await, 204);
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), "gatehouse-sandboxes");
    pod_gone(&api, &format!("sandbox-{id}")).await;
    assert!(!b.log().contains("RBAC forbids"), "{}", b.log());
    assert!(
        b.log().contains("kubernetes pod watch in sync"),
        "{}",
        b.log()
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
