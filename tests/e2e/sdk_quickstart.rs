//! The OpenSandbox SDK's quick start, unchanged, against `gatehouse-backend` with the
//! in-sandbox agent (`gatehouse-execd`) delivered into every sandbox: the real Python SDK
//! (`Sandbox.create`, commands, files, metrics, health, kill) directly, through the server
//! proxy and through the gateway; the real CLI (`osb`); and what the agent's delivery
//! promises (token only in the backend, failure reasons, any port reachable).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::docker::containers_of;
use gatehouse_tests::{repo_root, test_image, Backend, BackendOptions};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

fn python() -> String {
    std::env::var("GATEHOUSE_PYTHON")
        .expect("GATEHOUSE_PYTHON is not set: run through `make test`, which builds the SDK venv")
}

async fn backend() -> Backend {
    Backend::start(BackendOptions {
        execd: true,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Runs the quick-start script against `domain` and returns what the SDK saw.
async fn quickstart(domain: &str, key: &str, mode: &str) -> Value {
    let out = tokio::process::Command::new(python())
        .arg(repo_root().join("tests/python/sdk_quickstart.py"))
        .args([domain, key, &test_image(), mode])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "SDK quick start ({mode}) failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap()
}

/// What every run of the quick start must show, whatever the route.
fn check_quickstart(seen: &Value) {
    assert_eq!(seen["echo_streamed"], json!(["hi"]), "{seen}");
    assert_eq!(seen["echo_stdout"], json!(["hi"]), "{seen}");
    assert_eq!(seen["echo_error"], Value::Null, "{seen}");
    assert_eq!(seen["fail_exit_code"], 7, "{seen}");
    assert_eq!(seen["fail_stderr"], json!(["oops"]), "{seen}");
    assert_eq!(seen["bg_logs"], "line1\nline2\nline3\n", "{seen}");
    assert_eq!(seen["bg_exit_code"], 0, "{seen}");
    assert_eq!(seen["bg_tail_after_cursor"], "", "{seen}");
    assert_eq!(seen["blob_round_trip"], true, "{seen}");
    assert_eq!(seen["blob_size"], 1024 * 1024, "{seen}");
    assert_eq!(seen["search"], json!(["/tmp/qs/note.txt"]), "{seen}");
    assert_eq!(seen["replaced"], "hello sdk\n", "{seen}");
    assert_eq!(seen["mode_after_chmod"], 600, "{seen}");
    assert_eq!(
        seen["listing"],
        json!(["blob.bin", "renamed.txt"]),
        "{seen}"
    );
    assert_eq!(seen["listing_after_delete"], json!(["blob.bin"]), "{seen}");
    assert!(
        seen["metrics"]["cpu_count"].as_f64().unwrap() >= 1.0,
        "{seen}"
    );
    assert!(
        seen["metrics"]["memory_total_in_mib"].as_f64().unwrap() > 0.0,
        "{seen}"
    );
    assert!(seen.get("egress_policy").is_some(), "{seen}");
    assert_eq!(seen["healthy"], true, "{seen}");
    assert!(
        seen["custom_health_checks"].as_u64().unwrap() >= 1,
        "{seen}"
    );
    assert_eq!(seen["custom_healthy"], true, "{seen}");
    for id in seen["killed_ids"].as_array().unwrap() {
        assert!(containers_of(id.as_str().unwrap()).unwrap().is_empty());
    }
}

#[tokio::test]
async fn sdk_quickstart_direct() {
    let b = backend().await;
    let domain = b.url.trim_start_matches("http://").to_string();
    let seen = quickstart(&domain, &b.api_key, "direct").await;
    check_quickstart(&seen);
    // Direct endpoints: published ports on loopback; the agent's carry its token.
    assert!(
        seen["execd_endpoint"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{seen}"
    );
    assert_eq!(
        seen["execd_headers"],
        json!(["X-EXECD-ACCESS-TOKEN"]),
        "{seen}"
    );
    // A port the sandbox does not publish goes through the agent's proxy, as upstream.
    assert!(
        seen["other_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/proxy/8081"),
        "{seen}"
    );
    assert_eq!(seen["ping_without_token"], 401, "{seen}");
    // The token is never logged.
    assert!(
        !b.log().to_lowercase().contains("execd-token\""),
        "{}",
        b.log()
    );
}

#[tokio::test]
async fn sdk_quickstart_through_the_server_proxy() {
    let b = backend().await;
    let domain = b.url.trim_start_matches("http://").to_string();
    let seen = quickstart(&domain, &b.api_key, "server-proxy").await;
    check_quickstart(&seen);
    // The backend adds the token itself: the user never receives it.
    assert_eq!(seen["execd_headers"], json!([]), "{seen}");
    assert!(
        seen["execd_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/proxy/44772"),
        "{seen}"
    );
}

#[tokio::test]
async fn sdk_quickstart_through_the_gateway_with_the_backend_key() {
    let b = backend().await;
    let gw = gatehouse_tests::gateway::Gateway::start(&b.url, &b.api_key, "")
        .await
        .unwrap();
    let domain = gw.url.trim_start_matches("http://").to_string();
    let seen = quickstart(&domain, &b.api_key, "direct").await;
    check_quickstart(&seen);
    assert_eq!(
        seen["execd_headers"],
        json!(["X-EXECD-ACCESS-TOKEN"]),
        "{seen}"
    );
    // Server-proxy mode: the gateway points the endpoints at itself; the backend's proxy
    // adds the token.
    let seen = quickstart(&domain, &b.api_key, "server-proxy").await;
    check_quickstart(&seen);
    assert_eq!(seen["execd_headers"], json!([]), "{seen}");
    assert!(
        seen["execd_endpoint"]
            .as_str()
            .unwrap()
            .starts_with(&domain),
        "{seen}"
    );
    assert!(!gw.audit_raw().contains(&b.api_key));
}

/// The CLI (`osb`, PyPI `opensandbox-cli`): create → exec → kill.
#[tokio::test]
async fn cli_create_exec_kill() {
    let b = backend().await;
    let osb = PathBuf::from(python()).with_file_name("osb");
    let home = std::env::temp_dir().join(format!("gatehouse-osb-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&home).unwrap();
    let domain = b.url.trim_start_matches("http://").to_string();
    let run = |args: Vec<String>| {
        let osb = osb.clone();
        let home = home.clone();
        let domain = domain.clone();
        let key = b.api_key.clone();
        async move {
            let out = tokio::process::Command::new(&osb)
                .env("HOME", &home)
                .env_remove("OPEN_SANDBOX_API_KEY")
                .env_remove("OPEN_SANDBOX_DOMAIN")
                .args(["--api-key", &key, "--domain", &domain, "--no-color"])
                .args(&args)
                .output()
                .await
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(
                out.status.success(),
                "osb {args:?} failed: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        }
    };
    let created = run([
        "sandbox",
        "create",
        "--image",
        &test_image(),
        "--entrypoint",
        "sleep",
        "--entrypoint",
        "3600",
        "--timeout",
        "10m",
        "-o",
        "json",
    ]
    .map(String::from)
    .to_vec())
    .await;
    let v: Value =
        serde_json::from_str(created.trim()).unwrap_or_else(|e| panic!("{e}: {created}"));
    let id = v["id"].as_str().unwrap().to_string();
    let out = run(
        ["command", "run", &id, "-o", "raw", "--", "echo", "from-cli"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert!(out.contains("from-cli"), "{out}");
    run(["sandbox", "kill", &id].map(String::from).to_vec()).await;
    assert!(containers_of(&id).unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&home);
}

async fn create(b: &Backend, body: Value) -> String {
    let r = b
        .client()
        .post(b.at("/v1/sandboxes"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The agent's delivery: the entrypoint's exit code and the agent's report line become the
/// failure reason; diagnostics show the sandbox's logs and events; a port the sandbox does
/// not publish is reachable through the agent's proxy, directly and through the server
/// proxy; the token file is gone inside the sandbox; an oversized upload is refused.
#[tokio::test]
async fn agent_delivery_failure_reason_diagnostics_and_any_port() {
    let b = backend().await;
    let c = b.client();

    // A missing image (no registry is reachable from the test engine): a clear message,
    // never the engine's raw dial error.
    let r = c
        .post(b.at("/v1/sandboxes"))
        .json(&json!({"image": {"uri": "gatehouse/not-there:1"}, "entrypoint": ["sh"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    let m = v["message"].as_str().unwrap();
    assert!(m.contains("not present on the engine"), "{v}");
    assert!(!m.contains("dial tcp") && !m.contains("lookup "), "{v}");

    // Failure reason.
    let id = create(
        &b,
        json!({"image": {"uri": test_image()}, "entrypoint": ["sh", "-c", "echo bye; exit 3"], "timeout": 600}),
    )
    .await;
    let mut sandbox = Value::Null;
    for _ in 0..100 {
        sandbox = c
            .get(b.at(&format!("/v1/sandboxes/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if sandbox["status"]["state"] == "Failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sandbox["status"]["state"], "Failed", "{sandbox}");
    let message = sandbox["status"]["message"].as_str().unwrap();
    assert!(message.contains("exited with code 3"), "{message}");
    assert!(
        message.contains("Entrypoint \"sh\" exited with code 3."),
        "{message}"
    );
    let logs: Value = c
        .get(b.at(&format!(
            "/v1/sandboxes/{id}/diagnostics/logs?scope=container"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(logs["kind"], "logs", "{logs}");
    assert_eq!(logs["delivery"], "inline", "{logs}");
    assert!(logs["content"].as_str().unwrap().contains("bye"), "{logs}");
    let events: Value = c
        .get(b.at(&format!(
            "/v1/sandboxes/{id}/diagnostics/events?scope=runtime"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = events["content"].as_str().unwrap();
    assert!(text.contains("container start"), "{events}");
    assert!(
        text.contains("container die") && text.contains("exitCode=3"),
        "{events}"
    );
    let r = c
        .get(b.at(&format!(
            "/v1/sandboxes/{id}/diagnostics/logs?scope=network"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        c.delete(b.at(&format!("/v1/sandboxes/{id}")))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );

    // Any port: a web server on an unpublished port.
    let id = create(
        &b,
        json!({"image": {"uri": test_image()}, "entrypoint": ["sh", "-c", "mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 8081 -h /www"], "timeout": 600}),
    )
    .await;
    let ep: Value = c
        .get(b.at(&format!("/v1/sandboxes/{id}/endpoints/8081")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("http://{}/index.html", ep["endpoint"].as_str().unwrap());
    let token = ep["headers"]["X-EXECD-ACCESS-TOKEN"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(token.len(), 64, "{ep}");
    let plain = reqwest::Client::new();
    let mut body = String::new();
    for _ in 0..50 {
        if let Ok(r) = plain
            .get(&url)
            .header("X-EXECD-ACCESS-TOKEN", &token)
            .send()
            .await
        {
            if r.status() == 200 {
                body = r.text().await.unwrap();
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(body, "served\n");
    assert_eq!(plain.get(&url).send().await.unwrap().status(), 401);
    let r = c
        .get(b.at(&format!("/v1/sandboxes/{id}/proxy/8081/index.html")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "served\n");

    // Inside the sandbox the token file is gone.
    let execd: Value = c
        .get(b.at(&format!("/v1/sandboxes/{id}/endpoints/44772")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let base = format!("http://{}", execd["endpoint"].as_str().unwrap());
    let r = plain
        .get(format!("{base}/files/info?path=/run/gatehouse/execd-token"))
        .header("X-EXECD-ACCESS-TOKEN", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "the token file was unlinked by the agent");
    let r = plain
        .get(format!("{base}/files/info?path=/run/gatehouse/envs"))
        .header("X-EXECD-ACCESS-TOKEN", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "its directory is mounted");

    // The token is nowhere but the store: not in the container's configuration (env,
    // labels, command), not in the backend's log; the binary is mounted read-only.
    let inspect = gatehouse_tests::docker::docker(&["inspect", &format!("sandbox-{id}")]).unwrap();
    assert!(
        !inspect.contains(&token),
        "the token leaked into docker inspect"
    );
    let v: Value = serde_json::from_str(&inspect).unwrap();
    let mounts = v[0]["Mounts"].as_array().unwrap();
    let agent = mounts
        .iter()
        .find(|m| m["Destination"] == "/opt/gatehouse/execd")
        .unwrap();
    assert_eq!(agent["RW"], false, "{agent}");
    let run_dir = mounts
        .iter()
        .find(|m| m["Destination"] == "/run/gatehouse")
        .unwrap();
    let host_dir = PathBuf::from(run_dir["Source"].as_str().unwrap());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&host_dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert!(
        !b.log().contains(&token),
        "the token leaked into the backend's log"
    );

    // Paths that climb out of `/` are the sandbox's own filesystem: the agent serves the
    // container's files, never the host's.
    let cid = v[0]["Id"].as_str().unwrap();
    let r = plain
        .get(format!("{base}/files/download?path=/../../../etc/hostname"))
        .header("X-EXECD-ACCESS-TOKEN", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap().trim(),
        &cid[..12],
        "the container's hostname"
    );

    // An upload larger than the agent accepts is refused with 413 before it is read.
    let r = raw_oversized_upload(execd["endpoint"].as_str().unwrap(), &token).await;
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");

    assert_eq!(
        c.delete(b.at(&format!("/v1/sandboxes/{id}")))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(containers_of(&id).unwrap().is_empty());
    assert!(
        !host_dir.exists(),
        "the token directory is removed with the sandbox"
    );
}

/// Sends the headers of a 2 GiB multipart upload and returns the status line.
async fn raw_oversized_upload(addr: &str, token: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /files/upload HTTP/1.1\r\nHost: {addr}\r\nX-EXECD-ACCESS-TOKEN: {token}\r\n\
         Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 2147483648\r\n\r\n--xyz\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).to_string()
}

/// An image that runs as a non-root (numeric) user: the agent runs as that user, reads
/// its token (the directory is chowned to it) and runs commands as it.
#[tokio::test]
async fn agent_in_an_image_with_a_non_root_user() {
    let b = backend().await;
    let c = b.client();
    let dir = std::env::temp_dir().join(format!("gatehouse-uid-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {}\nUSER 1000\n", test_image()),
    )
    .unwrap();
    let tag = "gatehouse/busybox-uid1000:latest";
    gatehouse_tests::docker::docker(&["build", "-q", "-t", tag, dir.to_str().unwrap()]).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let id = create(
        &b,
        json!({"image": {"uri": tag}, "entrypoint": ["sleep", "3600"], "timeout": 600}),
    )
    .await;
    let ep: Value = c
        .get(b.at(&format!("/v1/sandboxes/{id}/endpoints/44772")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let base = format!("http://{}", ep["endpoint"].as_str().unwrap());
    let token = ep["headers"]["X-EXECD-ACCESS-TOKEN"].as_str().unwrap();
    let plain = reqwest::Client::new();
    let mut out = String::new();
    for _ in 0..50 {
        if let Ok(r) = plain
            .post(format!("{base}/command"))
            .header("X-EXECD-ACCESS-TOKEN", token)
            .json(&json!({"command": "id -u"}))
            .send()
            .await
        {
            if r.status() == 200 {
                out = r.text().await.unwrap();
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(out.contains("\"1000\""), "{out}");
    let s: Value = c
        .get(b.at(&format!("/v1/sandboxes/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["status"]["state"], "Running", "{s}");
    assert_eq!(
        c.delete(b.at(&format!("/v1/sandboxes/{id}")))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
}
