//! The contract between the API layer and a sandbox engine.
//!
//! A driver (Docker today, Kubernetes next) implements [`Runtime`] on its own native
//! objects; the API layer owns validation, persistence, expiry and the wire model. Every
//! operation is idempotent where the API needs it to be: deleting a sandbox the engine no
//! longer has succeeds, and creating one either yields a running sandbox or leaves nothing.

use crate::model::{PlatformSpec, SandboxState, StringMap};
use crate::validate::Resources;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Everything a runtime needs to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// Sandbox id (also labelled on the engine object).
    pub id: String,
    /// Image reference.
    pub image: String,
    /// Registry credentials for this pull only.
    pub image_auth: Option<crate::model::ImageAuth>,
    /// Entry process.
    pub entrypoint: Vec<String>,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// User metadata, labelled on the engine object.
    pub metadata: StringMap,
    /// Resource caps.
    pub resources: Resources,
    /// Expiry, labelled on the engine object so an adopted sandbox keeps its timer.
    pub expires_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Platform constraint.
    pub platform: Option<PlatformSpec>,
    /// The request's `extensions` (opaque to the API; a driver reads its own prefixed
    /// keys, e.g. `kubernetes.runtimeClassName`, and refuses another driver's).
    pub extensions: StringMap,
    /// Access token of the in-sandbox agent (execd), when the runtime delivers one; the
    /// runtime hands it to the agent and never labels or logs it.
    pub execd_token: Option<String>,
}

/// What a runtime observes of one sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Sandbox id.
    pub id: String,
    /// Mapped lifecycle state.
    pub state: SandboxState,
    /// Machine-readable reason, e.g. `CONTAINER_RUNNING`.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// When the engine says the state began, if it knows.
    pub since: Option<DateTime<Utc>>,
}

/// A sandbox the engine has but the store may not: enough to adopt it.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// Current state.
    pub observed: Observed,
    /// Image reference.
    pub image: String,
    /// Entry process.
    pub entrypoint: Vec<String>,
    /// User metadata from the engine's labels (image labels excluded).
    pub metadata: StringMap,
    /// Expiry from the engine's labels.
    pub expires_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Why a runtime call failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine did not answer (connection refused, timeout).
    #[error("{runtime} engine unreachable: {detail}")]
    Unavailable {
        /// Engine name, e.g. `DOCKER`.
        runtime: &'static str,
        /// The driver's code, e.g. `DOCKER::ENGINE_UNAVAILABLE`.
        code: &'static str,
        /// What failed, for the logs.
        detail: String,
    },
    /// The engine has no such sandbox.
    #[error("sandbox {0} does not exist in the engine")]
    NotFound(String),
    /// The image could not be found or pulled.
    #[error("image '{image}' is not available: {detail}")]
    Image {
        /// The driver's code, e.g. `DOCKER::SANDBOX_IMAGE_PULL_FAILED`.
        code: &'static str,
        /// Image reference.
        image: String,
        /// Why, safe to show (no credentials).
        detail: String,
    },
    /// The sandbox is in a state that forbids the operation.
    #[error("{message}")]
    Conflict {
        /// Upstream-style code, e.g. `DOCKER::SANDBOX_NOT_RUNNING`.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
    /// The request cannot be served by this engine (bad port, unsupported option, a
    /// namespace or permission the engine refuses). The message is shown to the client.
    #[error("{message}")]
    Invalid {
        /// Status to answer with (400, 403, 404, 429; 500 for a misconfigured engine
        /// identity; 501 for an operation the engine cannot do).
        status: u16,
        /// Upstream-style code.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
    /// The call did not finish within the driver's deadline.
    #[error("{op} timed out after {seconds} s")]
    Timeout {
        /// The driver's code, e.g. `DOCKER::ENGINE_UNAVAILABLE`.
        code: &'static str,
        /// Operation that timed out.
        op: &'static str,
        /// The deadline, in seconds.
        seconds: u64,
    },
    /// Anything else the engine reported.
    #[error("{op} failed: {detail}")]
    Failed {
        /// Upstream-style code, e.g. `DOCKER::SANDBOX_START_FAILED`.
        code: &'static str,
        /// Operation that failed.
        op: &'static str,
        /// Engine message, for the logs only.
        detail: String,
    },
}

/// A sandbox engine.
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// Short name used in error codes and logs: `DOCKER`, `KUBERNETES`.
    fn name(&self) -> &'static str;

    /// Checks that the engine answers.
    async fn ping(&self) -> Result<(), RuntimeError>;

    /// Creates and starts a sandbox. On error nothing is left behind.
    async fn create(&self, spec: &SandboxSpec) -> Result<Observed, RuntimeError>;

    /// Observes one sandbox; `Ok(None)` when the engine has no such sandbox.
    async fn inspect(&self, id: &str) -> Result<Option<Observed>, RuntimeError>;

    /// Observes every sandbox this runtime manages, with what is needed to adopt it.
    async fn list(&self) -> Result<Vec<Discovered>, RuntimeError>;

    /// Removes a sandbox; succeeds when it is already gone.
    async fn delete(&self, id: &str) -> Result<(), RuntimeError>;

    /// Freezes a running sandbox.
    async fn pause(&self, id: &str) -> Result<(), RuntimeError>;

    /// Thaws a paused sandbox.
    async fn resume(&self, id: &str) -> Result<(), RuntimeError>;

    /// The address on which this process reaches `port` of the sandbox.
    async fn endpoint(&self, id: &str, port: u16) -> Result<SocketAddr, RuntimeError>;

    /// Whether every sandbox this runtime creates runs the in-sandbox agent (execd) as
    /// its entrypoint, so a create must carry [`SandboxSpec::execd_token`].
    fn execd_enabled(&self) -> bool {
        false
    }

    /// The sandbox's own output (stdout and stderr), at most the last `tail` lines, as
    /// plain text for the diagnostics API.
    async fn logs(&self, id: &str, tail: usize) -> Result<String, RuntimeError> {
        let _ = (id, tail);
        Err(RuntimeError::Invalid {
            status: 501,
            code: crate::codes::API_NOT_SUPPORTED,
            message: "Diagnostic logs are not supported by this runtime.".into(),
        })
    }

    /// The engine's events about the sandbox, as plain text for the diagnostics API.
    async fn events(&self, id: &str) -> Result<String, RuntimeError> {
        let _ = id;
        Err(RuntimeError::Invalid {
            status: 501,
            code: crate::codes::API_NOT_SUPPORTED,
            message: "Diagnostic events are not supported by this runtime.".into(),
        })
    }

    /// Hands sandbox `id` its gateway identity token (the Docker push bootstrap): the
    /// runtime writes it where the sandbox's supervisor reads it
    /// (`GATEHOUSE_SANDBOX_TOKEN_FILE`) and never labels, stores or logs it.
    async fn deliver_identity(&self, id: &str, token: &str) -> Result<(), RuntimeError> {
        let _ = (id, token);
        Err(RuntimeError::Invalid {
            status: 501,
            code: crate::codes::API_NOT_SUPPORTED,
            message: "This runtime cannot deliver sandbox identity tokens.".into(),
        })
    }
}
