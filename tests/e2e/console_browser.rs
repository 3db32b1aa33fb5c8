//! The console end to end in a real browser (Debian chromium driven by playwright-core)
//! against the whole stack: dev IdP, gateway serving `console/dist`, backend, Docker.
//! alice logs in, creates a sandbox, sees it Running, renews it, copies its endpoint, opens
//! it through the proxy and deletes it; bob sees it with mutating actions disabled and his
//! direct API attempt gets 403; carol never sees it. Screenshots go to a printed folder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::repo_root;
use gatehouse_tests::stacks::OidcStack;

#[tokio::test]
async fn console_in_chromium() {
    let dist = repo_root().join("console/dist");
    assert!(
        dist.join("index.html").exists(),
        "console/dist is missing: `make test` builds it (npm ci && npm run build)"
    );
    // The built bundle carries no API key and never sets the key header.
    for entry in std::fs::read_dir(dist.join("assets")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        assert!(
            !text.contains("OPEN-SANDBOX-API-KEY"),
            "the bundle references the API key header"
        );
    }

    let console = format!("[console]\ndir = \"{}\"\n", dist.display());
    let st = OidcStack::start("", &console).await.unwrap();
    let (backend, gw) = (&st.backend, &st.gw);
    let shots = repo_root().join("target/screenshots/console");

    let report =
        gatehouse_tests::browser::run_script("console.mjs", gw, &backend.api_key, &shots, &[])
            .await
            .unwrap();
    assert_eq!(report["bobDirectDelete"]["status"], 403);
    assert!(shots.join("10-list-alice.png").exists());
    assert!(!gw.settled_log().contains(&backend.api_key));
}

/// Phase 2 of the console in Chromium, on a stack whose sandboxes run the in-sandbox
/// agent: a failed sandbox explains itself and shows its logs, the ports are listed up
/// front with live resources, the terminal runs `echo hi` (and the gateway audits it), a
/// paused sandbox's proxy actions are disabled and its proxy answers at once, a read_only
/// user at 390 px sees every reason inline, a bulk delete of three needs the count typed,
/// axe-core finds no violation on any page, and no request leaves for another host.
#[tokio::test]
async fn console_debugging_and_bulk_actions_in_chromium() {
    let dist = repo_root().join("console/dist");
    assert!(
        dist.join("index.html").exists(),
        "console/dist is missing: `make test` builds it (npm ci && npm run build)"
    );
    let console = format!("[console]\ndir = \"{}\"\n", dist.display());
    let opts = gatehouse_tests::BackendOptions {
        execd: true,
        ..Default::default()
    };
    let st = OidcStack::start_with(opts, "", &console).await.unwrap();
    let (backend, gw) = (&st.backend, &st.gw);
    let shots = repo_root().join("target/screenshots/console-phase2");

    let report = gatehouse_tests::browser::run_script(
        "console-phase2.mjs",
        gw,
        &backend.api_key,
        &shots,
        &[],
    )
    .await
    .unwrap();
    println!(
        "paused proxy answered in {} ms; first row at {} px on a 390 px phone; axe: {}",
        report["pausedProxyMs"], report["phoneFirstRowY"], report["axe"]
    );
    assert!(report["pausedProxyMs"].as_f64().unwrap() < 2000.0);
    assert_eq!(report["bulkDeleted"], 3);
    // The terminal's command went through the proxy route and is in the audit log.
    let sandbox = report["sandbox"].as_str().unwrap();
    let audited = gw.audit_events().into_iter().any(|e| {
        e["action"] == "sandbox:proxy"
            && e["method"] == "POST"
            && e["sandbox_id"] == sandbox
            && e["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/proxy/44772/command"))
            && e["principal"]["subject"] == "alice"
    });
    assert!(
        audited,
        "terminal command not audited: {:?}",
        gw.audit_events()
    );
    assert!(!gw.settled_log().contains(&backend.api_key));
}
