//! The `docker` CLI against the test engine, for checks a user would make by hand
//! (is the container gone? what labels does it carry?) and for out-of-band changes.

use anyhow::{bail, Result};
use std::process::Command;

/// Runs `docker ARGS` against `host` and returns stdout.
pub fn docker_at(host: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", host)
        .output()?;
    if !out.status.success() {
        bail!(
            "docker {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs `docker ARGS` against the test engine.
pub fn docker(args: &[&str]) -> Result<String> {
    docker_at(&crate::docker_host(), args)
}

/// Ids of containers (running or not) labelled with this sandbox id.
pub fn containers_of(sandbox_id: &str) -> Result<Vec<String>> {
    let filter = format!("label=opensandbox.io/id={sandbox_id}");
    Ok(docker(&["ps", "-aq", "--filter", &filter])?
        .lines()
        .map(str::to_owned)
        .collect())
}
