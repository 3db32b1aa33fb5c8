//! [`DockerRuntime`]: the [`Runtime`] implementation on a Docker engine.
//!
//! Each sandbox is one container named `sandbox-<id>`, labelled as [`crate::labels`]
//! describes. Every engine call runs under the configured API timeout inside a `docker`
//! tracing span carrying `op` and `sandbox.id`.

use crate::client::{Client, Target, RUNTIME};
use crate::codes::{INIT_ERROR, START_FAILED};
use crate::config::DockerConfig;
use crate::execd::ExecdDelivery;
use crate::{create, ops};
use async_trait::async_trait;
use gatehouse_lifecycle::runtime::Discovered;
use gatehouse_lifecycle::{Observed, Runtime, RuntimeError, SandboxSpec};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Longest wait for the engine while connecting; later calls wait the full API timeout.
const CONNECT_PROBE: Duration = Duration::from_secs(10);

/// Prefix of every sandbox container name.
const NAME_PREFIX: &str = "sandbox-";

/// State shared by the driver and its spawned create tasks.
pub(crate) struct Inner {
    /// The configuration the driver was built from.
    pub cfg: DockerConfig,
    /// The engine client.
    pub client: Client,
    /// `HostConfig.SecurityOpt` of every sandbox.
    pub security_opt: Vec<String>,
    /// How the in-sandbox agent is delivered; `None` runs exactly the entrypoint.
    pub execd: Option<ExecdDelivery>,
}

impl Inner {
    /// The API timeout.
    pub fn limit(&self) -> Duration {
        self.client.timeout()
    }
}

/// The container name of sandbox `id`, or `None` when `id` cannot name a container.
pub(crate) fn container_name(id: &str) -> Option<String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    ok.then(|| format!("{NAME_PREFIX}{id}"))
}

/// A Docker engine driving sandboxes.
#[derive(Clone)]
pub struct DockerRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("docker_host", &self.inner.cfg.resolved_docker_host())
            .field("network_mode", &self.inner.cfg.network_mode)
            .finish_non_exhaustive()
    }
}

impl DockerRuntime {
    /// Builds the driver and negotiates the API version with the engine.
    ///
    /// Fails only on a configuration it cannot use (`Failed` with
    /// `DOCKER::INITIALIZATION_ERROR`). An unreachable engine is logged, not fatal: the
    /// version is negotiated again before the next call, so the backend starts while the
    /// engine is down and recovers when it returns.
    pub async fn connect(cfg: &DockerConfig) -> Result<Self, RuntimeError> {
        Self::connect_with_execd(cfg, None).await
    }

    /// Like [`DockerRuntime::connect`], with every sandbox running the in-sandbox agent
    /// delivered as `execd` says (see [`crate::execd`]).
    pub async fn connect_with_execd(
        cfg: &DockerConfig,
        execd: Option<ExecdDelivery>,
    ) -> Result<Self, RuntimeError> {
        let init = |detail: String| RuntimeError::Failed {
            code: INIT_ERROR,
            op: "connect",
            detail,
        };
        cfg.validate().map_err(init)?;
        let host = cfg.resolved_docker_host();
        let target = Target::parse(&host).map_err(init)?;
        let security_opt = security_opts(cfg).map_err(init)?;
        if let Some(d) = &execd {
            d.prepare().map_err(init)?;
        }
        let timeout = Duration::from_secs(cfg.api_timeout_secs());
        let inner = Inner {
            cfg: cfg.clone(),
            client: Client::new(target, timeout),
            security_opt,
            execd,
        };
        let rt = Self {
            inner: Arc::new(inner),
        };
        match rt.inner.client.get_within(timeout.min(CONNECT_PROBE)).await {
            Ok(_) => tracing::info!(docker_host = %host, "docker engine connected"),
            Err(e) => tracing::warn!(
                docker_host = %host,
                error = %e,
                "docker engine unreachable; will retry on the next call"
            ),
        }
        Ok(rt)
    }

    /// The configuration this driver runs with.
    pub fn config(&self) -> &DockerConfig {
        &self.inner.cfg
    }

    /// The container name of sandbox `id` (`sandbox-<id>`), or `None` when `id` has
    /// characters a container name cannot hold.
    pub fn container_name(id: &str) -> Option<String> {
        container_name(id)
    }
}

/// `HostConfig.SecurityOpt` from the configuration; a seccomp profile given as a file path
/// is read here, since the engine API takes the profile's JSON, not a path.
fn security_opts(cfg: &DockerConfig) -> Result<Vec<String>, String> {
    let mut opts = Vec::new();
    if cfg.no_new_privileges {
        opts.push("no-new-privileges:true".to_string());
    }
    if let Some(p) = &cfg.apparmor_profile {
        opts.push(format!("apparmor={}", p.trim()));
    }
    if let Some(p) = &cfg.seccomp_profile {
        let p = p.trim();
        let value = if p.starts_with('{') || !p.contains('/') {
            p.to_string()
        } else {
            std::fs::read_to_string(p)
                .map_err(|e| format!("seccomp_profile \"{p}\" cannot be read: {e}"))?
        };
        opts.push(format!("seccomp={value}"));
    }
    Ok(opts)
}

/// The span of one operation.
fn span(op: &'static str, id: &str) -> tracing::Span {
    tracing::info_span!("docker", op, sandbox.id = %id)
}

/// Runs one operation in its span and logs how it ended.
async fn traced<T, F>(op: &'static str, id: &str, fut: F) -> Result<T, RuntimeError>
where
    F: Future<Output = Result<T, RuntimeError>>,
{
    in_span(span(op, id), fut).await
}

/// Runs `fut` in `span` and logs how it ended.
async fn in_span<T, F>(span: tracing::Span, fut: F) -> Result<T, RuntimeError>
where
    F: Future<Output = Result<T, RuntimeError>>,
{
    async move {
        let start = Instant::now();
        let out = fut.await;
        let ms = start.elapsed().as_millis() as u64;
        match &out {
            Ok(_) => tracing::debug!(duration_ms = ms, "docker call done"),
            Err(e) => tracing::warn!(duration_ms = ms, error = %e, "docker call failed"),
        }
        out
    }
    .instrument(span)
    .await
}

#[async_trait]
impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        RUNTIME
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        traced("ping", "", ops::ping(&self.inner)).await
    }

    async fn create(&self, spec: &SandboxSpec) -> Result<Observed, RuntimeError> {
        // Run to completion even if the caller goes away, so a failed create always
        // cleans up after itself.
        let span = span("create", &spec.id);
        let task =
            tokio::spawn(create::create(self.inner.clone(), spec.clone()).instrument(span.clone()));
        in_span(span, async move {
            task.await.map_err(|e| RuntimeError::Failed {
                code: START_FAILED,
                op: "create",
                detail: format!("create task ended abnormally: {e}"),
            })?
        })
        .await
    }

    async fn inspect(&self, id: &str) -> Result<Option<Observed>, RuntimeError> {
        traced("inspect", id, ops::inspect(&self.inner, id)).await
    }

    async fn list(&self) -> Result<Vec<Discovered>, RuntimeError> {
        traced("list", "", ops::list(&self.inner)).await
    }

    async fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        traced("delete", id, ops::delete(&self.inner, id)).await
    }

    async fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        traced("pause", id, ops::pause(&self.inner, id)).await
    }

    async fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        traced("resume", id, ops::resume(&self.inner, id)).await
    }

    async fn endpoint(&self, id: &str, port: u16) -> Result<SocketAddr, RuntimeError> {
        traced("endpoint", id, ops::endpoint(&self.inner, id, port)).await
    }

    fn execd_enabled(&self) -> bool {
        self.inner.execd.is_some()
    }

    async fn logs(&self, id: &str, tail: usize) -> Result<String, RuntimeError> {
        traced("logs", id, ops::logs(&self.inner, id, tail)).await
    }

    async fn events(&self, id: &str) -> Result<String, RuntimeError> {
        traced("events", id, ops::events(&self.inner, id)).await
    }

    async fn deliver_identity(&self, id: &str, token: &str) -> Result<(), RuntimeError> {
        let Some(d) = &self.inner.execd else {
            return Err(RuntimeError::Invalid {
                status: 501,
                code: gatehouse_lifecycle::codes::API_NOT_SUPPORTED,
                message:
                    "Sandbox identity tokens need the in-sandbox agent (runtime.execd_binary)."
                        .into(),
            });
        };
        match d.write_sandbox_token(id, token) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(RuntimeError::NotFound(id.to_owned()))
            }
            Err(e) => Err(RuntimeError::Failed {
                code: crate::codes::START_FAILED,
                op: "deliver_identity",
                detail: format!("writing the sandbox token file: {e}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names() {
        assert_eq!(
            container_name("abc-1.x_y").as_deref(),
            Some("sandbox-abc-1.x_y")
        );
        assert_eq!(container_name(""), None);
        assert_eq!(container_name("../etc"), None);
        assert_eq!(container_name("a/b"), None);
        assert_eq!(container_name("a?b"), None);
    }

    #[test]
    fn security_options() {
        let cfg = DockerConfig {
            apparmor_profile: Some("docker-default".into()),
            seccomp_profile: Some("unconfined".into()),
            ..Default::default()
        };
        assert_eq!(
            security_opts(&cfg).unwrap(),
            vec![
                "no-new-privileges:true",
                "apparmor=docker-default",
                "seccomp=unconfined"
            ]
        );
        let cfg = DockerConfig {
            no_new_privileges: false,
            seccomp_profile: Some("/nonexistent/profile.json".into()),
            ..Default::default()
        };
        assert!(security_opts(&cfg).unwrap_err().contains("seccomp_profile"));
    }

    #[tokio::test]
    async fn connect_does_not_fail_when_the_engine_is_down() {
        let cfg = DockerConfig {
            docker_host: Some("unix:///nonexistent/docker.sock".into()),
            ..Default::default()
        };
        let rt = DockerRuntime::connect(&cfg).await.unwrap();
        assert!(matches!(
            rt.ping().await,
            Err(RuntimeError::Unavailable {
                runtime: "DOCKER",
                ..
            })
        ));
        assert!(matches!(
            rt.inspect("x").await,
            Err(RuntimeError::Unavailable { .. })
        ));
    }

    #[tokio::test]
    async fn connect_rejects_a_bad_config() {
        let cfg = DockerConfig {
            publish_host: "nope".into(),
            ..Default::default()
        };
        let e = DockerRuntime::connect(&cfg).await.unwrap_err();
        assert!(
            matches!(
                e,
                RuntimeError::Failed {
                    code: INIT_ERROR,
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
