//! The governance pages of the console end to end in a real browser (Debian chromium,
//! playwright-core) against the whole stack: dev IdP, gateway with its default SQLite
//! governance store serving `console/dist`, backend, Docker, and the real Python SDK.
//!
//! alice creates a personal key in the console (shown once), the SDK uses it and is scoped
//! exactly like her, she revokes it and the SDK is refused; she reads her team's audit
//! events and has no Bindings page; dana, made service_admin with `gatehouse rbac` (the
//! bootstrap path), adds a binding in the Bindings page and erin's role changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::stacks::OidcStack;
use gatehouse_tests::{bin_dir, repo_root, sdk};
use serde_json::json;

#[tokio::test]
async fn keys_audit_and_bindings_in_chromium() {
    let python = sdk::python().unwrap();
    let dist = repo_root().join("console/dist");
    assert!(
        dist.join("index.html").exists(),
        "console/dist is missing: `make test` builds it (npm ci && npm run build)"
    );
    let console = format!("[console]\ndir = \"{}\"\n", dist.display());
    let users = json!({ "erin": { "name": "Erin New", "team": "team-e", "groups": [] } });
    let st = OidcStack::start_with_users("", &console, Some(users))
        .await
        .unwrap();
    let (backend, gw) = (&st.backend, &st.gw);

    // Bootstrap: the first service_admin is bound with the CLI, on the gateway's store.
    let out = std::process::Command::new(bin_dir().join("gatehouse"))
        .arg("--config")
        .arg(&gw.config_path)
        .args(["rbac", "bind", "subject", "dana", "service_admin"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let shots = repo_root().join("target/screenshots/console-governance");
    let report = gatehouse_tests::browser::run_script(
        "console-governance.mjs",
        gw,
        &backend.api_key,
        &shots,
        &[
            ("PYTHON", std::ffi::OsStr::new(&python)),
            (
                "SDK_SCRIPT",
                repo_root().join("tests/python/sdk_scope.py").as_os_str(),
            ),
        ],
    )
    .await
    .unwrap();
    println!("axe: {}", report["axe"]);
    let alice_box = report["sandboxes"]["alice"].as_str().unwrap();
    let carol_box = report["sandboxes"]["carol"].as_str().unwrap();
    assert_eq!(report["sdkBefore"]["listed_ids"], json!([alice_box]));
    assert_ne!(alice_box, carol_box);
    assert!(report["sdkAfter"]["list_error"].is_string());
    assert_eq!(report["erinRole"], "operator");

    // The audit trail the gateway wrote: the key's life and the binding, by the right
    // people, and the SDK's requests as alice through her key.
    let events = gw.audit_events();
    let by = |action: &str, subject: &str| {
        events
            .iter()
            .any(|e| e["action"] == action && e["principal"]["subject"] == subject)
    };
    assert!(by("key:create", "alice") && by("key:revoke", "alice"));
    assert!(by("binding:put", "dana"));
    // The key itself is nowhere: not in the gateway's log, not in its audit file.
    let revoked = report["revokedKey"].as_str().unwrap();
    assert!(revoked.starts_with("gk_"));
    assert!(!gw.exposes(revoked));
    assert!(!gw.exposes(&backend.api_key));
}
