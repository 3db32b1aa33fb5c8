//! Creating a sandbox: make the image available, create the container, start it. On any
//! failure after the container exists it is force-removed, so nothing is left behind.

use crate::client::{timed, CallError, RUNTIME};
use crate::codes::{
    ALREADY_EXISTS, ENGINE_UNAVAILABLE, ENTRYPOINT_NOT_EXECUTABLE, IMAGE_PULL_FAILED, START_FAILED,
};
use crate::driver::{container_name, Inner};
use crate::{labels, ops};
use bollard::auth::DockerCredentials;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding, PortMap};
use bollard::query_parameters::{CreateContainerOptions, CreateImageOptions};
use bollard::Docker;
use futures_util::StreamExt;
use gatehouse_lifecycle::{codes, Observed, RuntimeError, SandboxSpec};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Creates and starts the sandbox of `spec`; on error nothing is left behind.
pub(crate) async fn create(inner: Arc<Inner>, spec: SandboxSpec) -> Result<Observed, RuntimeError> {
    let Some(name) = container_name(&spec.id) else {
        return Err(RuntimeError::Invalid {
            status: 400,
            code: codes::INVALID_PARAMETER,
            message: format!("Sandbox id '{}' cannot name a Docker container.", spec.id),
        });
    };
    if let Some(k) = spec
        .extensions
        .keys()
        .find(|k| k.starts_with("kubernetes."))
    {
        return Err(RuntimeError::Invalid {
            status: 400,
            code: codes::API_NOT_SUPPORTED,
            message: format!(
                "Extension '{k}' needs the Kubernetes runtime; this backend drives Docker."
            ),
        });
    }
    if spec.entrypoint.first().is_none_or(|c| c.trim().is_empty()) {
        return Err(RuntimeError::Invalid {
            status: 400,
            code: codes::INVALID_ENTRYPOINT,
            message: "Entrypoint must contain at least one command.".into(),
        });
    }
    let docker = inner.client.get().await?;
    ensure_image(&inner, &docker, &spec).await?;

    let options = CreateContainerOptions {
        name: Some(name.clone()),
        platform: platform(&spec).unwrap_or_default(),
    };
    let body = container_body(&inner, &spec);
    if let Err(e) = timed(inner.limit(), docker.create_container(Some(options), body)).await {
        return Err(match e.status() {
            // Someone else's container (or an earlier sandbox with this id): not ours to remove.
            Some(409) => RuntimeError::Conflict {
                code: ALREADY_EXISTS,
                message: format!("A container named '{name}' already exists."),
            },
            Some(404) => RuntimeError::Image {
                code: IMAGE_PULL_FAILED,
                image: spec.image.clone(),
                detail: e.message(),
            },
            _ => {
                // After a timeout the engine may still have created it.
                if e.is_unavailable() {
                    cleanup(&inner, &docker, &name).await;
                }
                e.into_runtime(START_FAILED, "create")
            }
        });
    }

    if let Err(e) = timed(inner.limit(), docker.start_container(&name, None)).await {
        cleanup(&inner, &docker, &name).await;
        return Err(match start_failure_is_entrypoint(&e.message()) {
            true => RuntimeError::Invalid {
                status: 400,
                code: ENTRYPOINT_NOT_EXECUTABLE,
                message: format!(
                    "Entrypoint '{}' cannot be executed in image '{}': no such executable.",
                    spec.entrypoint
                        .first()
                        .map(String::as_str)
                        .unwrap_or_default(),
                    spec.image
                ),
            },
            false => e.into_runtime(START_FAILED, "start"),
        });
    }

    match ops::inspect_with(&inner, &docker, &spec.id, &name).await {
        Ok(Some(observed)) => Ok(observed),
        Ok(None) => Err(RuntimeError::Failed {
            code: START_FAILED,
            op: "start",
            detail: format!("container {name} disappeared right after it started"),
        }),
        Err(e) => Err(e),
    }
}

/// Whether an engine start error means the entrypoint cannot be executed (the user's
/// input), as opposed to an engine failure.
fn start_failure_is_entrypoint(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("executable file not found")
        || (m.contains("exec:") && m.contains("no such file or directory"))
        || (m.contains("permission denied") && m.contains("exec"))
}

/// Removes a half-created container, logging (not returning) any failure.
async fn cleanup(inner: &Inner, docker: &Docker, name: &str) {
    if let Err(e) = ops::remove(inner, docker, name).await {
        tracing::error!(container = name, error = %e, "could not remove a container after a failed create");
    }
}

/// `os/arch` of the spec's platform, if any.
fn platform(spec: &SandboxSpec) -> Option<String> {
    spec.platform
        .as_ref()
        .map(|p| format!("{}/{}", p.os, p.arch))
}

/// The create body: entrypoint as `Cmd` with the image's `Entrypoint` cleared, merged env,
/// labels, limits, hardening and port publishing.
pub(crate) fn container_body(inner: &Inner, spec: &SandboxSpec) -> ContainerCreateBody {
    let cfg = &inner.cfg;
    let mut env: BTreeMap<String, String> = cfg.sandbox_env.clone();
    env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let env: Vec<String> = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();

    let publish = !cfg.is_host_network() && !cfg.exposed_ports.is_empty();
    let port_keys: Vec<String> = cfg
        .exposed_ports
        .iter()
        .map(|p| format!("{p}/tcp"))
        .collect();
    let port_bindings: Option<PortMap> = publish.then(|| {
        port_keys
            .iter()
            .map(|k| {
                let binding = PortBinding {
                    host_ip: Some(cfg.publish_host.trim().to_string()),
                    // Empty: the engine picks an ephemeral host port.
                    host_port: Some(String::new()),
                };
                (k.clone(), Some(vec![binding]))
            })
            .collect()
    });

    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let host_config = HostConfig {
        cap_drop: non_empty(&cfg.drop_capabilities),
        security_opt: non_empty(&inner.security_opt),
        pids_limit: cfg.pids_limit,
        nano_cpus: spec.resources.nano_cpus,
        memory: spec.resources.memory_bytes,
        binds: non_empty(&cfg.sandbox_binds),
        network_mode: Some(cfg.network_mode_value()),
        port_bindings,
        ..Default::default()
    };

    ContainerCreateBody {
        image: Some(spec.image.clone()),
        // An empty (not absent) Entrypoint clears the image's, so exactly the requested
        // command runs.
        entrypoint: Some(Vec::new()),
        cmd: Some(spec.entrypoint.clone()),
        env: Some(env),
        labels: Some(labels::for_spec(spec, &cfg.instance)),
        exposed_ports: publish.then_some(port_keys),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// Makes `spec.image` present locally, pulling it when missing.
async fn ensure_image(
    inner: &Inner,
    docker: &Docker,
    spec: &SandboxSpec,
) -> Result<(), RuntimeError> {
    let image = spec.image.trim();
    let bad = |detail: String| RuntimeError::Image {
        code: IMAGE_PULL_FAILED,
        image: spec.image.clone(),
        detail,
    };
    if !is_reference(image) {
        return Err(bad("not a valid image reference".into()));
    }
    match timed(inner.limit(), docker.inspect_image(image)).await {
        Ok(_) => return Ok(()),
        Err(e) if e.status() == Some(404) => {}
        Err(e) if e.is_unavailable() => return Err(e.into_runtime(START_FAILED, "inspect_image")),
        Err(e) => return Err(bad(e.message())),
    }
    tracing::info!(
        image,
        authenticated = spec.image_auth.is_some(),
        "pulling image"
    );
    pull(inner, docker, spec).await.map_err(|e| {
        if e.is_unavailable() {
            RuntimeError::Unavailable {
                runtime: RUNTIME,
                code: ENGINE_UNAVAILABLE,
                detail: format!("pull: {e}"),
            }
        } else {
            bad(e.message())
        }
    })
}

/// Pulls the image; each progress message must arrive within the API timeout.
async fn pull(inner: &Inner, docker: &Docker, spec: &SandboxSpec) -> Result<(), CallError> {
    let (from_image, tag) = split_reference(spec.image.trim());
    let options = CreateImageOptions {
        from_image: Some(from_image),
        tag,
        platform: platform(spec).unwrap_or_default(),
        ..Default::default()
    };
    let credentials = spec.image_auth.as_ref().map(|a| DockerCredentials {
        username: a.username.clone(),
        password: a.password.clone(),
        serveraddress: Some(registry_of(spec.image.trim())),
        ..Default::default()
    });
    let mut stream = docker.create_image(Some(options), None, credentials);
    loop {
        match tokio::time::timeout(inner.limit(), stream.next()).await {
            Err(_) => return Err(CallError::Timeout(inner.limit())),
            Ok(None) => return Ok(()),
            Ok(Some(Ok(_progress))) => {}
            Ok(Some(Err(e))) => return Err(CallError::Api(e)),
        }
    }
}

/// Whether `r` only has characters an image reference can have (it goes into a URL path).
fn is_reference(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 512
        && !r.contains("..")
        && !r.starts_with(['/', ':', '@'])
        && r.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'/' | b':' | b'@')
        })
}

/// Splits a reference into `fromImage` and `tag` for a pull; a missing tag means `latest`
/// (an empty tag would pull every tag), a digest reference is passed whole.
fn split_reference(r: &str) -> (String, Option<String>) {
    if r.contains('@') {
        return (r.to_string(), None);
    }
    let name_start = r.rfind('/').map_or(0, |i| i + 1);
    match r[name_start..].rfind(':') {
        Some(i) => {
            let split = name_start + i;
            (r[..split].to_string(), Some(r[split + 1..].to_string()))
        }
        None => (r.to_string(), Some("latest".to_string())),
    }
}

/// The registry credentials are meant for: the reference's domain, else Docker Hub.
fn registry_of(r: &str) -> String {
    match r.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first.to_string(),
        _ => "https://index.docker.io/v1/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Client, Target};
    use crate::config::DockerConfig;
    use gatehouse_lifecycle::validate::Resources;
    use std::time::Duration;

    fn inner(cfg: DockerConfig) -> Inner {
        Inner {
            cfg,
            client: Client::new(Target::Unix("/nonexistent".into()), Duration::from_secs(1)),
            security_opt: vec!["no-new-privileges:true".into()],
        }
    }

    fn spec() -> SandboxSpec {
        SandboxSpec {
            id: "s1".into(),
            image: "busybox".into(),
            image_auth: None,
            entrypoint: vec!["sleep".into(), "1".into()],
            env: BTreeMap::from([
                ("A".to_string(), "req".to_string()),
                ("B".to_string(), "b".to_string()),
            ]),
            metadata: BTreeMap::new(),
            resources: Resources {
                nano_cpus: Some(500_000_000),
                memory_bytes: Some(64 << 20),
            },
            expires_at: None,
            created_at: gatehouse_lifecycle::time::now(),
            platform: None,
            extensions: Default::default(),
        }
    }

    #[test]
    fn body_in_bridge_mode() {
        let cfg = DockerConfig {
            sandbox_env: BTreeMap::from([
                ("A".to_string(), "cfg".to_string()),
                ("C".to_string(), "c".to_string()),
            ]),
            ..Default::default()
        };
        let b = container_body(&inner(cfg), &spec());
        assert_eq!(b.entrypoint, Some(vec![]));
        assert_eq!(b.cmd, Some(vec!["sleep".to_string(), "1".to_string()]));
        assert_eq!(
            b.env,
            Some(vec![
                "A=req".to_string(),
                "B=b".to_string(),
                "C=c".to_string()
            ])
        );
        assert_eq!(
            b.exposed_ports,
            Some(vec!["8080/tcp".to_string(), "44772/tcp".to_string()])
        );
        let hc = b.host_config.unwrap();
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.memory, Some(64 << 20));
        assert_eq!(hc.pids_limit, Some(4096));
        assert_eq!(hc.network_mode.as_deref(), Some("bridge"));
        let pb = hc.port_bindings.unwrap();
        let b8080 = pb["8080/tcp"].as_ref().unwrap();
        assert_eq!(b8080[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(b8080[0].host_port.as_deref(), Some(""));
        assert!(hc.cap_drop.unwrap().contains(&"SYS_ADMIN".to_string()));
    }

    #[tokio::test]
    async fn kubernetes_extensions_are_refused() {
        let mut s = spec();
        s.extensions
            .insert("kubernetes.runtimeClassName".into(), "gvisor".into());
        let e = create(Arc::new(inner(DockerConfig::default())), s)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, RuntimeError::Invalid { status: 400, message, .. } if message.contains("kubernetes.runtimeClassName")),
            "{e:?}"
        );
    }

    #[test]
    fn body_in_host_mode_publishes_nothing() {
        let cfg = DockerConfig {
            network_mode: "HOST".into(),
            ..Default::default()
        };
        let b = container_body(&inner(cfg), &spec());
        assert_eq!(b.exposed_ports, None);
        let hc = b.host_config.unwrap();
        assert_eq!(hc.port_bindings, None);
        assert_eq!(hc.network_mode.as_deref(), Some("host"));
    }

    #[test]
    fn references() {
        assert_eq!(
            split_reference("busybox"),
            ("busybox".into(), Some("latest".into()))
        );
        assert_eq!(
            split_reference("a/b:1.2"),
            ("a/b".into(), Some("1.2".into()))
        );
        assert_eq!(
            split_reference("reg:5000/a/b"),
            ("reg:5000/a/b".into(), Some("latest".into()))
        );
        assert_eq!(
            split_reference("reg:5000/a:t"),
            ("reg:5000/a".into(), Some("t".into()))
        );
        assert_eq!(split_reference("a@sha256:00"), ("a@sha256:00".into(), None));
        assert_eq!(registry_of("busybox"), "https://index.docker.io/v1/");
        assert_eq!(
            registry_of("library/busybox"),
            "https://index.docker.io/v1/"
        );
        assert_eq!(registry_of("ghcr.io/a/b"), "ghcr.io");
        assert_eq!(registry_of("localhost:5000/a"), "localhost:5000");
        assert!(is_reference("gatehouse/busybox:latest"));
        assert!(!is_reference("a?b"));
        assert!(!is_reference("../x"));
        assert!(!is_reference(""));
    }
}
