//! The Docker driver against a real engine.
//!
//! Needs `DOCKER_HOST` (e.g. `unix:///tmp/gatehouse-dev/docker.sock`) and an image with
//! busybox `httpd` serving `/www` (env `GATEHOUSE_TEST_IMAGE`, default
//! `gatehouse/busybox:latest`). Without `DOCKER_HOST` every test fails, unless
//! `GATEHOUSE_SKIP_DOCKER=1`. Every container a test creates is removed, even when the
//! test fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bollard::Docker;
use gatehouse_lifecycle::validate::Resources;
use gatehouse_lifecycle::{Runtime, RuntimeError, SandboxSpec, SandboxState};
use gatehouse_runtime_docker::{codes, labels, DockerConfig, DockerRuntime, SAFE_VERSION};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PAGE: &str = "hello from a gatehouse sandbox";
const IMAGE_LABEL: &str = "org.gatehouse.image";

struct Ctx {
    rt: DockerRuntime,
    raw: Docker,
    image: String,
}

/// The test context, or `None` when the engine tests are explicitly skipped.
async fn setup() -> Option<Arc<Ctx>> {
    if std::env::var("GATEHOUSE_SKIP_DOCKER").as_deref() == Ok("1") {
        eprintln!("GATEHOUSE_SKIP_DOCKER=1: skipping the Docker engine tests");
        return None;
    }
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    assert!(
        !host.trim().is_empty(),
        "DOCKER_HOST is not set: these tests need a real Docker engine, e.g. \
         DOCKER_HOST=unix:///tmp/gatehouse-dev/docker.sock cargo test -p gatehouse-runtime-docker \
         (set GATEHOUSE_SKIP_DOCKER=1 to skip them explicitly)"
    );
    let image =
        std::env::var("GATEHOUSE_TEST_IMAGE").unwrap_or_else(|_| "gatehouse/busybox:latest".into());
    let cfg = DockerConfig {
        docker_host: Some(host.clone()),
        api_timeout: Some(60),
        ..Default::default()
    };
    let rt = DockerRuntime::connect(&cfg).await.expect("driver connects");
    rt.ping().await.expect("engine answers the ping");
    // A raw client to check what the driver did; the test engine speaks API 1.41.
    let raw = match host.strip_prefix("unix://") {
        Some(path) => Docker::connect_with_unix(path, 60, &SAFE_VERSION),
        None => Docker::connect_with_http(&host, 60, &SAFE_VERSION),
    }
    .expect("raw client");
    Some(Arc::new(Ctx { rt, raw, image }))
}

/// Runs `scenario`, then removes the containers of `ids` whatever happened.
async fn run<F, Fut>(ids: &[String], scenario: F)
where
    F: FnOnce(Arc<Ctx>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(ctx) = setup().await else { return };
    let outcome = tokio::spawn(scenario(ctx.clone())).await;
    for id in ids {
        let name = DockerRuntime::container_name(id).unwrap();
        let opts = bollard::query_parameters::RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        let _ = ctx.raw.remove_container(&name, Some(opts)).await;
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn new_id(tag: &str) -> String {
    format!("gh-test-{tag}-{}", uuid::Uuid::new_v4().simple())
}

fn spec(ctx: &Ctx, id: &str, entrypoint: &[&str]) -> SandboxSpec {
    let now = gatehouse_lifecycle::time::now();
    SandboxSpec {
        id: id.to_string(),
        image: ctx.image.clone(),
        image_auth: None,
        entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(),
        env: BTreeMap::from([("GREETING".to_string(), "hi".to_string())]),
        metadata: BTreeMap::from([
            ("team".to_string(), "core".to_string()),
            ("example.com/owner".to_string(), "alice".to_string()),
        ]),
        resources: Resources {
            nano_cpus: Some(500_000_000),
            memory_bytes: Some(64 * 1024 * 1024),
        },
        expires_at: Some(now + chrono::Duration::hours(1)),
        created_at: now,
        platform: None,
        extensions: Default::default(),
        execd_token: None,
    }
}

/// Whether the engine still has the container of sandbox `id`.
async fn exists(ctx: &Ctx, id: &str) -> bool {
    let name = DockerRuntime::container_name(id).unwrap();
    match ctx.raw.inspect_container(&name, None).await {
        Ok(_) => true,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => false,
        Err(e) => panic!("inspect {name}: {e}"),
    }
}

/// GETs `/` from `addr`, retrying while the server starts.
async fn http_get(addr: SocketAddr) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(mut s) => {
                s.write_all(b"GET / HTTP/1.0\r\nHost: sandbox\r\n\r\n")
                    .await
                    .unwrap();
                let mut buf = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
                let text = String::from_utf8_lossy(&buf).to_string();
                if text.contains("200") {
                    return text;
                }
                last = text;
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no HTTP answer from {addr}: {last}");
}

#[tokio::test]
async fn sandbox_lifecycle() {
    let id = new_id("life");
    let ids = vec![id.clone()];
    run(&ids, move |ctx| async move {
        let spec = spec(&ctx, &id, &["httpd", "-f", "-p", "8080", "-h", "/www"]);
        let observed = ctx.rt.create(&spec).await.expect("create");
        assert_eq!(observed.state, SandboxState::Running, "{observed:?}");
        assert_eq!(observed.reason, "CONTAINER_RUNNING");
        assert!(observed.since.is_some());

        // The published port answers on loopback.
        let addr = ctx.rt.endpoint(&id, 8080).await.expect("endpoint");
        assert!(addr.ip().is_loopback(), "{addr}");
        assert!(http_get(addr).await.contains(PAGE));

        // An unpublished port.
        match ctx.rt.endpoint(&id, 9999).await {
            Err(RuntimeError::Invalid {
                status: 404,
                code,
                message,
            }) => {
                assert_eq!(code, codes::ENDPOINT_NOT_AVAILABLE);
                assert_eq!(
                    message,
                    "Port 9999 is not published by this sandbox; published ports: 8080, 44772."
                );
            }
            other => panic!("expected Invalid 404, got {other:?}"),
        }

        // list() recovers what was set, without the image's labels.
        let all = ctx.rt.list().await.expect("list");
        let found = all.iter().find(|d| d.observed.id == id).expect("listed");
        assert_eq!(found.metadata, spec.metadata);
        assert!(!found.metadata.contains_key(IMAGE_LABEL));
        assert_eq!(found.image, spec.image);
        assert_eq!(found.entrypoint, spec.entrypoint);
        assert_eq!(found.expires_at, spec.expires_at);
        assert_eq!(found.created_at, spec.created_at);
        assert_eq!(found.observed.state, SandboxState::Running);

        // What the engine was told.
        let name = DockerRuntime::container_name(&id).unwrap();
        let c = ctx.raw.inspect_container(&name, None).await.unwrap();
        let hc = c.host_config.clone().unwrap();
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.memory, Some(64 * 1024 * 1024));
        assert_eq!(hc.pids_limit, Some(4096));
        let dropped = hc.cap_drop.clone().unwrap_or_default();
        for cap in DockerConfig::default().drop_capabilities {
            assert!(dropped.contains(&cap), "{cap} not dropped: {dropped:?}");
        }
        let sec = hc.security_opt.clone().unwrap_or_default();
        assert!(
            sec.contains(&"no-new-privileges:true".to_string()),
            "{sec:?}"
        );
        let config = c.config.clone().unwrap();
        assert_eq!(config.entrypoint.unwrap_or_default(), Vec::<String>::new());
        assert!(config
            .env
            .unwrap_or_default()
            .contains(&"GREETING=hi".to_string()));
        let l = config.labels.unwrap_or_default();
        assert_eq!(l.get(labels::ID), Some(&id));
        assert_eq!(
            l.get(labels::MANAGED_BY).map(String::as_str),
            Some(labels::MANAGED_BY_VALUE)
        );
        assert!(l.contains_key(labels::EXPIRES_AT));
        assert!(!l.contains_key(labels::MANUAL_CLEANUP));

        // Pause and resume.
        ctx.rt.pause(&id).await.expect("pause");
        assert_eq!(
            ctx.rt.inspect(&id).await.unwrap().unwrap().state,
            SandboxState::Paused
        );
        match ctx.rt.pause(&id).await {
            Err(RuntimeError::Conflict { code, .. }) => assert_eq!(code, codes::NOT_RUNNING),
            other => panic!("expected Conflict, got {other:?}"),
        }
        ctx.rt.resume(&id).await.expect("resume");
        assert_eq!(
            ctx.rt.inspect(&id).await.unwrap().unwrap().state,
            SandboxState::Running
        );
        match ctx.rt.resume(&id).await {
            Err(RuntimeError::Conflict { code, .. }) => assert_eq!(code, codes::NOT_PAUSED),
            other => panic!("expected Conflict, got {other:?}"),
        }
        assert!(http_get(addr).await.contains(PAGE));

        // Two concurrent deletes both succeed and the container is gone.
        let (a, b) = tokio::join!(ctx.rt.delete(&id), ctx.rt.delete(&id));
        a.expect("first delete");
        b.expect("second delete");
        assert!(!exists(&ctx, &id).await);
        assert!(ctx.rt.inspect(&id).await.unwrap().is_none());
        ctx.rt.delete(&id).await.expect("delete is idempotent");
        assert!(matches!(
            ctx.rt.pause(&id).await,
            Err(RuntimeError::NotFound(_))
        ));
        assert!(matches!(
            ctx.rt.resume(&id).await,
            Err(RuntimeError::NotFound(_))
        ));
        assert!(matches!(
            ctx.rt.endpoint(&id, 8080).await,
            Err(RuntimeError::NotFound(_))
        ));
        assert!(!ctx
            .rt
            .list()
            .await
            .unwrap()
            .iter()
            .any(|d| d.observed.id == id));
    })
    .await;
}

#[tokio::test]
async fn paused_sandbox_is_deleted() {
    let id = new_id("paused");
    let ids = vec![id.clone()];
    run(&ids, move |ctx| async move {
        let mut s = spec(&ctx, &id, &["sleep", "300"]);
        s.expires_at = None;
        ctx.rt.create(&s).await.expect("create");
        let name = DockerRuntime::container_name(&id).unwrap();
        let l = ctx
            .raw
            .inspect_container(&name, None)
            .await
            .unwrap()
            .config
            .unwrap()
            .labels
            .unwrap();
        assert_eq!(
            l.get(labels::MANUAL_CLEANUP).map(String::as_str),
            Some("true")
        );
        ctx.rt.pause(&id).await.expect("pause");
        ctx.rt.delete(&id).await.expect("delete a paused sandbox");
        assert!(!exists(&ctx, &id).await);
    })
    .await;
}

#[tokio::test]
async fn exited_sandboxes_are_observed() {
    let ok = new_id("true");
    let bad = new_id("false");
    let ids = vec![ok.clone(), bad.clone()];
    run(&ids, move |ctx| async move {
        ctx.rt
            .create(&spec(&ctx, &ok, &["true"]))
            .await
            .expect("create true");
        ctx.rt
            .create(&spec(&ctx, &bad, &["sh", "-c", "exit 3"]))
            .await
            .expect("create exit 3");
        let mut states = (None, None);
        for _ in 0..50 {
            states = (
                ctx.rt.inspect(&ok).await.unwrap(),
                ctx.rt.inspect(&bad).await.unwrap(),
            );
            let done = |o: &Option<gatehouse_lifecycle::Observed>| {
                o.as_ref().is_some_and(|o| {
                    !matches!(o.state, SandboxState::Running | SandboxState::Pending)
                })
            };
            if done(&states.0) && done(&states.1) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (t, f) = (states.0.unwrap(), states.1.unwrap());
        assert_eq!(
            (t.state, t.reason.as_str()),
            (SandboxState::Terminated, "CONTAINER_EXITED")
        );
        assert!(t.since.is_some());
        assert_eq!(
            (f.state, f.reason.as_str()),
            (SandboxState::Failed, "CONTAINER_EXITED_ERROR")
        );
        assert_eq!(f.message, "Sandbox container exited with code 3.");
        // A stopped sandbox has no reachable port.
        assert!(matches!(
            ctx.rt.endpoint(&ok, 8080).await,
            Err(RuntimeError::Conflict {
                code: codes::NOT_RUNNING,
                ..
            })
        ));
        assert!(matches!(
            ctx.rt.pause(&ok).await,
            Err(RuntimeError::Conflict {
                code: codes::NOT_RUNNING,
                ..
            })
        ));
        // Stopped sandboxes are still listed.
        let listed = ctx.rt.list().await.unwrap();
        assert!(listed
            .iter()
            .any(|d| d.observed.id == ok && d.observed.state == SandboxState::Terminated));
        ctx.rt.delete(&ok).await.unwrap();
        ctx.rt.delete(&bad).await.unwrap();
        assert!(!exists(&ctx, &ok).await && !exists(&ctx, &bad).await);
    })
    .await;
}

#[tokio::test]
async fn failed_creates_leave_nothing_behind() {
    let missing = new_id("noimage");
    let broken = new_id("badcmd");
    let ids = vec![missing.clone(), broken.clone()];
    run(&ids, move |ctx| async move {
        let mut s = spec(&ctx, &missing, &["sleep", "10"]);
        s.image = "gatehouse/does-not-exist:latest".into();
        match ctx.rt.create(&s).await {
            Err(RuntimeError::Image { image, .. }) => assert_eq!(image, s.image),
            other => panic!("expected an Image error, got {other:?}"),
        }
        assert!(!exists(&ctx, &missing).await);

        match ctx.rt.create(&spec(&ctx, &broken, &["/nonexistent"])).await {
            // An entrypoint the image cannot execute is the caller's mistake: 400, not 500.
            Err(RuntimeError::Invalid { status, code, .. }) => {
                assert_eq!((status, code), (400, codes::ENTRYPOINT_NOT_EXECUTABLE))
            }
            other => panic!("expected an entrypoint error, got {other:?}"),
        }
        assert!(!exists(&ctx, &broken).await);
        assert!(ctx.rt.inspect(&broken).await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn starts_while_the_engine_is_down_and_recovers() {
    let Some(ctx) = setup().await else { return };
    let host = std::env::var("DOCKER_HOST").unwrap();
    let Some(real) = host.strip_prefix("unix://").map(str::to_string) else {
        eprintln!("DOCKER_HOST is not a unix socket: recovery test not applicable");
        return;
    };
    drop(ctx);
    // The driver points at a socket that does not exist yet.
    let path =
        std::env::temp_dir().join(format!("gh-recover-{}.sock", uuid::Uuid::new_v4().simple()));
    let cfg = DockerConfig {
        docker_host: Some(format!("unix://{}", path.display())),
        api_timeout: Some(10),
        ..Default::default()
    };
    let rt = DockerRuntime::connect(&cfg)
        .await
        .expect("connect while the engine is down");
    match rt.ping().await {
        Err(RuntimeError::Unavailable { runtime, .. }) => assert_eq!(runtime, "DOCKER"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(matches!(
        rt.list().await,
        Err(RuntimeError::Unavailable { .. })
    ));

    // The engine "comes back": a socket forwarding to the real one.
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let proxy = tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let real = real.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::UnixStream::connect(&real).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    rt.ping().await.expect("ping after the engine returned");
    rt.list().await.expect("list after the engine returned");
    assert!(rt.inspect("gh-test-absent").await.unwrap().is_none());
    proxy.abort();
    let _ = std::fs::remove_file(&path);
}
