//! Creating a sandbox: make the image available, create the container, start it. On any
//! failure after the container exists it is force-removed, so nothing is left behind.

use crate::client::{timed, CallError, RUNTIME};
use crate::codes::{
    ALREADY_EXISTS, ENGINE_UNAVAILABLE, ENTRYPOINT_NOT_EXECUTABLE, IMAGE_PULL_FAILED, START_FAILED,
};
use crate::driver::{container_name, Inner};
use crate::execd::{self, ExecdDelivery};
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
    if let Some(d) = &inner.execd {
        let Some(token) = spec.execd_token.as_deref() else {
            return Err(RuntimeError::Failed {
                code: START_FAILED,
                op: "create",
                detail: "the in-sandbox agent is configured but the create carries no token".into(),
            });
        };
        let owner = image_owner(&inner, &docker, &spec.image).await;
        if let Err(e) = d.write_token(&spec.id, token, owner) {
            d.remove(&spec.id);
            return Err(RuntimeError::Failed {
                code: START_FAILED,
                op: "create",
                detail: format!("writing the sandbox's execd token directory: {e}"),
            });
        }
    }
    let out = create_container(&inner, &docker, &spec, &name).await;
    if out.is_err() {
        if let Some(d) = &inner.execd {
            d.remove(&spec.id);
        }
    }
    out
}

/// Creates and starts the container; on error it is removed.
async fn create_container(
    inner: &Inner,
    docker: &Docker,
    spec: &SandboxSpec,
    name: &str,
) -> Result<Observed, RuntimeError> {
    let name = name.to_string();

    let options = CreateContainerOptions {
        name: Some(name.clone()),
        platform: platform(spec).unwrap_or_default(),
    };
    let body = container_body(inner, spec);
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
                    cleanup(inner, docker, &name).await;
                }
                e.into_runtime(START_FAILED, "create")
            }
        });
    }

    if let Err(e) = timed(inner.limit(), docker.start_container(&name, None)).await {
        cleanup(inner, docker, &name).await;
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

    match ops::inspect_with(inner, docker, &spec.id, &name).await {
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

    let mut ports = cfg.exposed_ports.clone();
    if inner.execd.is_some() {
        for p in [execd::EXECD_PORT, execd::EGRESS_PORT] {
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
    }
    let publish = !cfg.is_host_network() && !ports.is_empty();
    let port_keys: Vec<String> = ports.iter().map(|p| format!("{p}/tcp")).collect();
    let mut env = env;
    let mut binds = cfg.sandbox_binds.clone();
    if let Some(d) = &inner.execd {
        binds.extend(d.binds(&spec.id));
        env.retain(|e| !e.starts_with("EXECD_ENVS="));
        env.push(format!("EXECD_ENVS={}", execd::ENVS_FILE));
        // Where the gateway's token appears once pushed (the path only, never the token).
        env.retain(|e| !e.starts_with("GATEHOUSE_SANDBOX_TOKEN_FILE="));
        env.push(format!(
            "{}={}",
            execd::SANDBOX_TOKEN_ENV,
            execd::SANDBOX_TOKEN_FILE
        ));
    }
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
        binds: non_empty(&binds),
        network_mode: Some(cfg.network_mode_value()),
        port_bindings,
        ..Default::default()
    };

    ContainerCreateBody {
        image: Some(spec.image.clone()),
        // An empty (not absent) Entrypoint clears the image's, so exactly the requested
        // command runs; with the agent, the agent runs it as its child.
        entrypoint: Some(match &inner.execd {
            Some(_) => {
                ExecdDelivery::entrypoint(cfg.is_host_network().then_some(cfg.host_execd_port))
            }
            None => Vec::new(),
        }),
        cmd: Some(spec.entrypoint.clone()),
        env: Some(env),
        labels: Some(labels::for_spec(spec, &cfg.instance)),
        exposed_ports: publish.then_some(port_keys),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// The non-root uid the image runs as, so the agent (running as that user) can read its
/// token; `None` for root, or when it cannot be told (logged).
async fn image_owner(inner: &Inner, docker: &Docker, image: &str) -> Option<u32> {
    let user = match timed(inner.limit(), docker.inspect_image(image.trim())).await {
        Ok(i) => i.config.and_then(|c| c.user).unwrap_or_default(),
        Err(e) => {
            tracing::warn!(image, error = %e, "cannot read the image's user; the token stays root-owned");
            return None;
        }
    };
    match execd::image_uid(&user) {
        Ok(uid) => uid,
        Err(name) => {
            tracing::warn!(
                image,
                user = %name,
                "the image runs as a named user; the agent token stays root-owned, so the \
                 agent can read it only if that user is root (use a numeric USER)"
            );
            None
        }
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
            let raw = e.message();
            tracing::warn!(image, error = %raw, "image pull failed");
            bad(pull_failure(&raw).to_string())
        }
    })
}

/// What a failed pull means for the user, without the engine's raw text (which names
/// internal resolvers and addresses); the raw text goes to the log.
pub(crate) fn pull_failure(raw: &str) -> &'static str {
    let m = raw.to_ascii_lowercase();
    let unreachable = [
        "dial tcp",
        "lookup ",
        "no such host",
        "connection refused",
        "i/o timeout",
        "tls handshake timeout",
        "request canceled",
        "network is unreachable",
        "server misbehaving",
        "temporary failure in name resolution",
    ];
    if unreachable.iter().any(|p| m.contains(p)) {
        return "the image is not present on the engine and no registry is reachable from it \
                (load the image with `docker load`/`docker import`, or give the engine registry access)";
    }
    if m.contains("unauthorized") || m.contains("denied") || m.contains("authentication required") {
        return "the image is not present on the engine and the registry refused the pull \
                (check image.auth)";
    }
    if m.contains("not found") || m.contains("manifest unknown") || m.contains("does not exist") {
        return "the image is not present on the engine and the registry does not have it";
    }
    "the image is not present on the engine and could not be pulled (details in the server log)"
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
            execd: None,
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
            execd_token: None,
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
    fn the_agent_listens_on_the_configured_host_port_in_host_mode() {
        let with_agent = |cfg: DockerConfig| Inner {
            execd: Some(ExecdDelivery {
                binary: "/opt/execd".into(),
                state_dir: "/tmp/state".into(),
            }),
            ..inner(cfg)
        };
        let entrypoint = |cfg: DockerConfig| {
            container_body(&with_agent(cfg), &spec())
                .entrypoint
                .unwrap()
                .join(" ")
        };
        let host = |port| DockerConfig {
            network_mode: "host".into(),
            host_execd_port: port,
            ..Default::default()
        };
        let plain = "/opt/gatehouse/execd --token-file /run/gatehouse/execd-token --";
        assert_eq!(entrypoint(DockerConfig::default()), plain);
        assert_eq!(entrypoint(host(44772)), plain);
        assert_eq!(
            entrypoint(host(24772)),
            "/opt/gatehouse/execd --listen 0.0.0.0:24772 --token-file /run/gatehouse/execd-token --"
        );
        // Bridge mode publishes the container's 44772 whatever the host-mode port.
        let bridge = DockerConfig {
            host_execd_port: 24772,
            ..Default::default()
        };
        assert_eq!(entrypoint(bridge), plain);
    }

    #[test]
    fn pull_failures_never_show_the_raw_dial_error() {
        let raw = "Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io on 10.0.0.2:53: no such host";
        let m = pull_failure(raw);
        assert!(m.contains("no registry is reachable"), "{m}");
        assert!(!m.contains("10.0.0.2"));
        assert!(
            pull_failure("pull access denied for x, repository does not exist").contains("refused")
        );
        assert!(pull_failure("manifest for x:1 not found: manifest unknown")
            .contains("does not have it"));
        assert!(pull_failure("something else").contains("could not be pulled"));
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
