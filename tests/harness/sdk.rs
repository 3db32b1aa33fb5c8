//! The real OpenSandbox Python SDK (`tests/python/sdk_manager.py`, `SandboxManager`) run
//! against a lifecycle API, as a user's automation would.

use crate::repo_root;
use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The venv python from `GATEHOUSE_PYTHON`.
pub fn python() -> Result<String> {
    std::env::var("GATEHOUSE_PYTHON")
        .context("GATEHOUSE_PYTHON is not set: run through `make test`, which builds the SDK venv")
}

/// Runs the SDK script against `domain` (`host:port`) with `api_key` on sandbox `id`
/// created with metadata `suite=token`: it lists, gets, renews and kills it. Returns what
/// the SDK saw (`listed_ids`, `total`, `state`, `metadata`, `renewed_expires_at`,
/// `after_kill`).
pub async fn sandbox_manager(domain: &str, api_key: &str, id: &str, token: &str) -> Result<Value> {
    let out = tokio::process::Command::new(python()?)
        .arg(repo_root().join("tests/python/sdk_manager.py"))
        .args([domain, api_key, id, token])
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "SDK script failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .with_context(|| format!("the SDK script printed no JSON: {stdout}"))
}

/// Whether the SDK's `after_kill` says the killed sandbox is gone (404 / not found).
pub fn killed(seen: &Value) -> bool {
    let after = seen["after_kill"].as_str().unwrap_or_default();
    after.contains("404") || after.to_lowercase().contains("not found")
}
