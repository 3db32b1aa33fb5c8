//! The docker-compose stack (`docker-compose.yml`, images from `deploy/docker/`): its
//! images built from this checkout with nothing pulled, brought up with Compose on the
//! test engine, and the real Python SDK run through the gateway — create a sandbox, run a
//! command, delete it — with the audit events landing in the stack's PostgreSQL. Then the
//! stack is taken down, volumes included.
//!
//! Needs `GATEHOUSE_COMPOSE` (the Compose binary `dev/compose/build.sh` builds and caches;
//! `make test` sets it), `GATEHOUSE_EXECD_BINARY`, the SDK venv and a built console
//! (`console/dist`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::docker::containers_of;
use gatehouse_tests::{bin_dir, docker_host, free_port, repo_root, test_image, wait_for};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const KEY: &str = "compose-operator-key-0123456789";

fn compose_bin() -> String {
    std::env::var("GATEHOUSE_COMPOSE").unwrap_or_else(|_| {
        panic!("GATEHOUSE_COMPOSE is not set: run through `make test` (dev/compose/build.sh builds Compose)")
    })
}

fn check(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A compose project on the test engine, taken down (volumes too) when dropped.
struct Stack {
    project: String,
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Stack {
    fn compose(&self, args: &[&str]) -> Output {
        Command::new(compose_bin())
            .current_dir(repo_root())
            .args([
                "--project-name",
                &self.project,
                "--file",
                "docker-compose.yml",
            ])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("DOCKER_HOST", docker_host())
            .output()
            .expect("running compose")
    }

    fn logs(&self) -> String {
        let out = self.compose(&["logs", "--no-color"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "--volumes", "--remove-orphans", "--timeout", "3"]);
    }
}

/// The stack's own config files with this test's free ports and one named key.
fn write_config(dir: &Path, gw: u16, be: u16, idp: u16) {
    let src = repo_root().join("deploy/compose");
    let ports = |s: String| {
        s.replace("127.0.0.1:8080", &format!("127.0.0.1:{gw}"))
            .replace("localhost:8080", &format!("localhost:{gw}"))
            .replace("127.0.0.1:8090", &format!("127.0.0.1:{be}"))
            .replace("127.0.0.1:9000", &format!("127.0.0.1:{idp}"))
    };
    let mut gateway = ports(std::fs::read_to_string(src.join("gatehouse.toml")).unwrap());
    gateway.push_str(&format!(
        "\n[[auth.api_keys]]\nname = \"compose-ci\"\nsha256 = \"{}\"\nrole = \"service_admin\"\nteam = \"team-compose\"\n",
        hex::encode(Sha256::digest(KEY))
    ));
    std::fs::write(dir.join("gatehouse.toml"), gateway).unwrap();
    let backend = ports(std::fs::read_to_string(src.join("backend.toml")).unwrap());
    std::fs::write(dir.join("backend.toml"), backend).unwrap();
}

#[tokio::test]
async fn compose_stack_serves_the_sdk_through_the_gateway() {
    let started = Instant::now();
    let execd = std::env::var("GATEHOUSE_EXECD_BINARY")
        .expect("GATEHOUSE_EXECD_BINARY is not set: run through `make test`");
    // A bind mount needs the canonical path (agent/build-static.sh prints `agent/../target/…`).
    let execd = std::fs::canonicalize(&execd)
        .expect("GATEHOUSE_EXECD_BINARY names no file")
        .to_string_lossy()
        .into_owned();
    let socket = docker_host()
        .strip_prefix("unix://")
        .map(PathBuf::from)
        .expect(
            "the compose test needs a unix:// DOCKER_HOST (its socket is mounted into the backend)",
        );

    // 1. The images, from this checkout's binaries (unchanged ones are not rebuilt).
    let out = Command::new(repo_root().join("deploy/docker/images.sh"))
        .env("GATEHOUSE_BIN_DIR", bin_dir())
        .output()
        .unwrap();
    check("deploy/docker/images.sh", &out);
    let tag = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("GATEHOUSE_IMAGE_TAG=").map(str::to_owned))
        .expect("images.sh printed no tag");
    let built = started.elapsed();

    // 2. Up, on free loopback ports.
    let dir = tempfile::tempdir().unwrap();
    let (gw, be, idp, pg) = (free_port(), free_port(), free_port(), free_port());
    write_config(dir.path(), gw, be, idp);
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let backend_key = format!("compose-backend-{}", uuid::Uuid::new_v4().simple());
    let env = [
        ("GATEHOUSE_IMAGE_TAG", tag.clone()),
        ("GATEHOUSE_CONFIG_DIR", dir.path().display().to_string()),
        ("GATEHOUSE_DATA_DIR", data.display().to_string()),
        ("GATEHOUSE_DOCKER_SOCKET", socket.display().to_string()),
        ("GATEHOUSE_EXECD_BINARY", execd),
        ("GATEHOUSE_BACKEND_API_KEY", backend_key.clone()),
        (
            "GATEHOUSE_PG_PASSWORD",
            hex::encode(Sha256::digest(&backend_key))[..24].to_string(),
        ),
        ("GATEHOUSE_PORT", gw.to_string()),
        ("GATEHOUSE_BACKEND_PORT", be.to_string()),
        ("GATEHOUSE_IDP_PORT", idp.to_string()),
        ("GATEHOUSE_PG_PORT", pg.to_string()),
    ];
    let stack = Stack {
        project: format!("gh-compose-{}", std::process::id()),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        _dir: dir,
    };
    let up = stack.compose(&["up", "--detach", "--wait", "--wait-timeout", "120"]);
    if !up.status.success() {
        panic!(
            "compose up failed: {}\n{}\n{}",
            String::from_utf8_lossy(&up.stdout),
            String::from_utf8_lossy(&up.stderr),
            stack.logs()
        );
    }
    let up_at = started.elapsed();

    // 3. Ready: backend, IdP discovery and the PostgreSQL store all answer.
    let gateway = format!("http://127.0.0.1:{gw}");
    let http = reqwest::Client::new();
    let ready = wait_for("/readyz 200", Duration::from_secs(60), || async {
        let r = http.get(format!("{gateway}/readyz")).send().await.ok()?;
        (r.status() == 200).then_some(())?;
        r.json::<Value>().await.ok()
    })
    .await;
    let ready = ready.unwrap_or_else(|e| panic!("{e}:\n{}", stack.logs()));
    assert_eq!(ready["checks"]["backend"], "ok", "{ready}");
    assert_eq!(ready["checks"]["idp_discovery"], "ok", "{ready}");
    assert_eq!(ready["checks"]["store"], "ok", "{ready}");
    // The console is served by the gateway image.
    let console = http
        .get(format!("{gateway}/console/"))
        .send()
        .await
        .unwrap();
    assert_eq!(console.status(), 200);
    assert!(console.text().await.unwrap().contains("<html"));

    // 4. The real SDK through the gateway.
    let sdk = tokio::process::Command::new(gatehouse_tests::sdk::python().unwrap())
        .arg(repo_root().join("tests/python/sdk_compose.py"))
        .args([&format!("127.0.0.1:{gw}"), KEY, &test_image()])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&sdk.stdout);
    assert!(
        sdk.status.success(),
        "SDK through the compose stack failed: {stdout}\n{}\n{}",
        String::from_utf8_lossy(&sdk.stderr),
        stack.logs()
    );
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    let id = seen["id"].as_str().unwrap().to_owned();
    assert_eq!(seen["exit_code"], 0, "{seen}");
    assert_eq!(seen["stdout"][0], "hello from compose", "{seen}");
    // Endpoints point at the gateway, never at the backend or the sandbox.
    assert!(
        seen["execd_endpoint"]
            .as_str()
            .unwrap()
            .starts_with(&format!("127.0.0.1:{gw}/")),
        "{seen}"
    );
    let after = seen["after_kill"].as_str().unwrap().to_lowercase();
    assert!(
        after.contains("404") || after.contains("not found"),
        "{seen}"
    );
    assert!(
        containers_of(&id).unwrap().is_empty(),
        "sandbox {id} still has containers"
    );

    // 5. The audit trail reached PostgreSQL (the durable writer batches; give it a moment).
    let audited = wait_for("the audit event", Duration::from_secs(20), || async {
        let r = http
            .get(format!("{gateway}/gatehouse/v1/audit?limit=200"))
            .header("OPEN-SANDBOX-API-KEY", KEY)
            .send()
            .await
            .ok()?;
        let body: Value = r.json().await.ok()?;
        let items = body["items"].as_array()?;
        items
            .iter()
            .any(|e| e["action"] == "sandbox:create" && e.to_string().contains(&id))
            .then_some(())
    })
    .await;
    assert!(
        audited.is_ok(),
        "no sandbox:create event for {id} in the store"
    );

    eprintln!(
        "compose stack: images {:.1} s, up {:.1} s, total with the SDK run {:.1} s",
        built.as_secs_f64(),
        (up_at - built).as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
