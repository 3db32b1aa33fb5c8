//! [`KubernetesRuntime`]: the [`Runtime`] implementation on a Kubernetes API server.
//!
//! Each sandbox is one Pod `sandbox-<id>` ([`crate::pod`]) in the default namespace or
//! its tenant's ([`crate::namespace`]). State comes from reflectors ([`crate::watch`]).

use crate::codes::{self, INIT_ERROR};
use crate::config::KubernetesConfig;
use crate::limiter::Limiter;
use crate::watch::Watches;
use crate::{namespace, ops};
use async_trait::async_trait;
use gatehouse_lifecycle::runtime::Discovered;
use gatehouse_lifecycle::{Observed, Runtime, RuntimeError, SandboxSpec};
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Short name used in error codes and logs.
pub const RUNTIME: &str = "KUBERNETES";

/// Longest wait for the API server while connecting.
const CONNECT_PROBE: Duration = Duration::from_secs(10);

/// State shared by every call.
pub(crate) struct Inner {
    /// The configuration the driver was built from.
    pub cfg: KubernetesConfig,
    /// The API client.
    pub client: kube::Client,
    /// Namespace of sandboxes without a tenant namespace.
    pub namespace: String,
    /// Every namespace sandboxes may live in (the default one first).
    pub namespaces: Vec<String>,
    /// The pod reflectors.
    pub watches: Watches,
    /// `read_qps`.
    pub reads: Limiter,
    /// `write_qps`.
    pub writes: Limiter,
    /// Timeout of each API request.
    pub timeout: Duration,
}

impl Inner {
    /// The namespace the sandbox of `spec` goes to; refuses one outside the allowlist.
    /// The request's `kubernetes.namespace` extension comes first, then
    /// `namespace_template`.
    pub fn namespace_for(&self, spec: &SandboxSpec) -> Result<String, RuntimeError> {
        if let Some(ns) = spec.extensions.get(crate::placement::NAMESPACE) {
            if self.namespaces.contains(ns) {
                return Ok(ns.clone());
            }
            return Err(RuntimeError::Invalid {
                status: 403,
                code: codes::NAMESPACE_NOT_ALLOWED,
                message: format!(
                    "Namespace '{ns}' ('{}') is not one this backend manages; it creates sandboxes only in: {}.",
                    crate::placement::NAMESPACE,
                    self.namespaces.join(", ")
                ),
            });
        }
        let Some(t) = &self.cfg.namespace_template else {
            return Ok(self.namespace.clone());
        };
        match namespace::resolve(t, &spec.metadata) {
            None => Ok(self.namespace.clone()),
            Some(ns) if self.namespaces.contains(&ns) => Ok(ns),
            Some(ns) => Err(RuntimeError::Invalid {
                status: 403,
                code: codes::NAMESPACE_NOT_ALLOWED,
                message: format!(
                    "Namespace '{ns}' (from namespace_template) is not in kubernetes.namespace_allowlist; \
                     this backend creates sandboxes only in: {}.",
                    self.namespaces.join(", ")
                ),
            }),
        }
    }
}

/// A Kubernetes API server driving sandboxes as Pods.
#[derive(Clone)]
pub struct KubernetesRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KubernetesRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesRuntime")
            .field("namespaces", &self.inner.namespaces)
            .field("instance", &self.inner.cfg.instance)
            .finish_non_exhaustive()
    }
}

/// The client configuration: `kubeconfig_path` (and `context`), else inferred
/// (`KUBECONFIG`, `~/.kube/config`, then in-cluster).
async fn client_config(cfg: &KubernetesConfig) -> Result<kube::Config, String> {
    let options = KubeConfigOptions {
        context: cfg.context.clone(),
        ..Default::default()
    };
    match &cfg.kubeconfig_path {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| format!("kubeconfig_path \"{path}\" cannot be read: {e}"))?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| format!("kubeconfig_path \"{path}\": {e}"))
        }
        None if cfg.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| format!("context: {e}")),
        None => kube::Config::infer().await.map_err(|e| {
            format!("no kubeconfig (KUBECONFIG, ~/.kube/config) and not in a cluster: {e}")
        }),
    }
}

impl KubernetesRuntime {
    /// Builds the driver and starts watching its namespaces.
    ///
    /// Fails only on a configuration it cannot use (`Failed` with
    /// `KUBERNETES::INITIALIZATION_ERROR`). An unreachable API server is logged, not fatal:
    /// the watches retry with backoff and calls answer `KUBERNETES::UNAVAILABLE` meanwhile.
    pub async fn connect(cfg: &KubernetesConfig) -> Result<Self, RuntimeError> {
        let init = |detail: String| RuntimeError::Failed {
            code: INIT_ERROR,
            op: "connect",
            detail,
        };
        cfg.validate().map_err(init)?;
        let mut kcfg = client_config(cfg).await.map_err(init)?;
        let timeout = Duration::from_secs(cfg.api_timeout_secs());
        kcfg.connect_timeout = Some(timeout.min(CONNECT_PROBE));
        let namespace = cfg
            .namespace
            .clone()
            .unwrap_or_else(|| kcfg.default_namespace.clone());
        let server = kcfg.cluster_url.to_string();
        let client = kube::Client::try_from(kcfg).map_err(|e| init(e.to_string()))?;
        let mut namespaces = vec![namespace.clone()];
        for ns in &cfg.namespace_allowlist {
            if !namespaces.contains(ns) {
                namespaces.push(ns.clone());
            }
        }
        let watches = Watches::start(&client, &namespaces, &cfg.instance);
        let inner = Inner {
            cfg: cfg.clone(),
            client,
            namespace,
            namespaces,
            watches,
            reads: Limiter::new(cfg.read_qps),
            writes: Limiter::new(cfg.write_qps),
            timeout,
        };
        let rt = Self {
            inner: Arc::new(inner),
        };
        match tokio::time::timeout(CONNECT_PROBE, rt.inner.client.apiserver_version()).await {
            Ok(Ok(v)) => tracing::info!(
                %server,
                version = %v.git_version,
                namespaces = ?rt.inner.namespaces,
                "kubernetes API server connected"
            ),
            Ok(Err(e)) => {
                tracing::warn!(%server, error = %e, "kubernetes API server unreachable; will retry")
            }
            Err(_) => tracing::warn!(%server, "kubernetes API server did not answer; will retry"),
        }
        Ok(rt)
    }

    /// The configuration this driver runs with.
    pub fn config(&self) -> &KubernetesConfig {
        &self.inner.cfg
    }

    /// The namespaces sandboxes may live in, the default one first.
    pub fn namespaces(&self) -> &[String] {
        &self.inner.namespaces
    }
}

/// The answer to pause and resume: a pod cannot be frozen.
fn not_supported(what: &str) -> RuntimeError {
    RuntimeError::Invalid {
        status: 501,
        code: codes::API_NOT_SUPPORTED,
        message: format!(
            "{what} is not supported on the Kubernetes runtime: a pod cannot be frozen. \
             Delete the sandbox instead, or use the Docker runtime."
        ),
    }
}

#[async_trait]
impl Runtime for KubernetesRuntime {
    fn name(&self) -> &'static str {
        RUNTIME
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        ops::ping(&self.inner).await
    }

    async fn create(&self, spec: &SandboxSpec) -> Result<Observed, RuntimeError> {
        ops::create(&self.inner, spec).await
    }

    async fn inspect(&self, id: &str) -> Result<Option<Observed>, RuntimeError> {
        ops::inspect(&self.inner, id).await
    }

    async fn list(&self) -> Result<Vec<Discovered>, RuntimeError> {
        ops::list(&self.inner).await
    }

    async fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        ops::delete(&self.inner, id).await
    }

    async fn pause(&self, _id: &str) -> Result<(), RuntimeError> {
        Err(not_supported("Pause"))
    }

    async fn resume(&self, _id: &str) -> Result<(), RuntimeError> {
        Err(not_supported("Resume"))
    }

    async fn endpoint(&self, id: &str, port: u16) -> Result<SocketAddr, RuntimeError> {
        ops::endpoint(&self.inner, id, port).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bad_config_is_an_init_error() {
        let cfg = KubernetesConfig {
            kubeconfig_path: Some("/nonexistent/kubeconfig".into()),
            ..Default::default()
        };
        let e = KubernetesRuntime::connect(&cfg).await.unwrap_err();
        assert!(
            matches!(&e, RuntimeError::Failed { code: INIT_ERROR, detail, .. } if detail.contains("kubeconfig_path")),
            "{e:?}"
        );
    }

    #[test]
    fn pause_is_501() {
        let e = not_supported("Pause");
        assert!(matches!(
            e,
            RuntimeError::Invalid {
                status: 501,
                code: "SANDBOX::API_NOT_SUPPORTED",
                ..
            }
        ));
    }
}
