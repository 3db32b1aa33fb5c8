//! Runs one of the browser scripts in `tests/browser/` (playwright-core driving Debian
//! chromium) against a running gateway and returns the JSON report it prints last.

use crate::gateway::Gateway;
use crate::{repo_root, test_image};
use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::path::Path;

/// Runs `tests/browser/{script}` with `GATEWAY_URL`, `BACKEND_KEY`, `SHOTS` (screenshots,
/// emptied first) and `TEST_IMAGE` set, plus `env`. Fails with the script's output and
/// the gateway's log when the script fails; otherwise the JSON of its last stdout line.
pub async fn run_script(
    script: &str,
    gw: &Gateway,
    backend_key: &str,
    shots: &Path,
    env: &[(&str, &OsStr)],
) -> Result<serde_json::Value> {
    let _ = std::fs::remove_dir_all(shots);
    let out = tokio::process::Command::new("node")
        .arg(repo_root().join("tests/browser").join(script))
        .env("GATEWAY_URL", &gw.url)
        .env("BACKEND_KEY", backend_key)
        .env("SHOTS", shots)
        .env("TEST_IMAGE", test_image())
        .envs(env.iter().copied())
        .output()
        .await
        .with_context(|| format!("running node {script}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("console screenshots: {}", shots.display());
    if !out.status.success() {
        bail!(
            "browser test failed:\n{stdout}\n{}\ngateway log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            gw.log()
        );
    }
    let last = stdout.lines().last().unwrap_or("");
    serde_json::from_str(last).with_context(|| format!("{script} printed no JSON report: {last}"))
}
