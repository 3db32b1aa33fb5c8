//! The runtime seam: which engine drives sandboxes.
//!
//! [`build`] reads `runtime.type` and returns the one driver the service uses, wrapped in
//! [`Traced`] so every call, whatever the engine, gets a span and a deadline. Adding an
//! engine means a new arm here and a crate beside `gatehouse-runtime-docker` and
//! `gatehouse-runtime-kubernetes`; nothing else in the backend names an engine.

mod traced;

pub use traced::Traced;

use crate::config::{Config, RuntimeType};
use gatehouse_lifecycle::{Runtime, RuntimeError};
use std::sync::Arc;
use std::time::Duration;

/// Why no runtime could be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeSetupError {
    /// The driver rejected its configuration section.
    #[error("configuring the {runtime} runtime: {source}")]
    Driver {
        /// `docker`, `kubernetes`.
        runtime: &'static str,
        /// What the driver said.
        #[source]
        source: RuntimeError,
    },
    /// The configured engine is not built into this binary.
    #[error("runtime.type = \"{0}\" is not available in this build")]
    Unavailable(&'static str),
}

/// The driver `cfg.runtime.type` names, behind the per-call span and deadline.
pub async fn build(cfg: &Config) -> Result<Arc<dyn Runtime>, RuntimeSetupError> {
    match cfg.runtime.kind {
        RuntimeType::Docker => {
            let docker = gatehouse_runtime_docker::DockerRuntime::connect_with_execd(
                &cfg.docker,
                cfg.execd_delivery(),
            )
            .await
            .map_err(|source| RuntimeSetupError::Driver {
                runtime: "docker",
                source,
            })?;
            let deadline = Duration::from_secs(cfg.docker.api_timeout_secs()) + CALL_SLACK;
            Ok(Arc::new(Traced::new(docker, deadline)))
        }
        RuntimeType::Kubernetes => {
            let kube = gatehouse_runtime_kubernetes::KubernetesRuntime::connect(&cfg.kubernetes)
                .await
                .map_err(|source| RuntimeSetupError::Driver {
                    runtime: "kubernetes",
                    source,
                })?;
            // A create waits for the pod to run, so the deadline covers that wait.
            let deadline = Duration::from_secs(cfg.kubernetes.call_timeout_secs()) + CALL_SLACK;
            Ok(Arc::new(Traced::new(kube, deadline)))
        }
    }
}

/// Time the wrapper's deadline adds to the driver's own per-request timeout, so the
/// driver's error (which says more) normally wins.
const CALL_SLACK: Duration = Duration::from_secs(5);
