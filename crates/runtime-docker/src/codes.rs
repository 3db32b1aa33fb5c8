//! Error codes the driver reports, in the upstream server's `DOCKER::` style.

/// The driver cannot be set up from its configuration.
pub const INIT_ERROR: &str = "DOCKER::INITIALIZATION_ERROR";
/// A container could not be created or started.
pub const START_FAILED: &str = "DOCKER::SANDBOX_START_FAILED";
/// A container with the sandbox's name already exists.
pub const ALREADY_EXISTS: &str = "DOCKER::SANDBOX_ALREADY_EXISTS";
/// An engine query failed.
pub const QUERY_FAILED: &str = "DOCKER::CONTAINER_QUERY_FAILED";
/// A removal failed.
pub const DELETE_FAILED: &str = "DOCKER::SANDBOX_DELETE_FAILED";
/// A pause failed.
pub const PAUSE_FAILED: &str = "DOCKER::SANDBOX_PAUSE_FAILED";
/// A resume failed.
pub const RESUME_FAILED: &str = "DOCKER::SANDBOX_RESUME_FAILED";
/// The sandbox must be running for this operation.
pub const NOT_RUNNING: &str = "DOCKER::SANDBOX_NOT_RUNNING";
/// The sandbox must be paused for this operation.
pub const NOT_PAUSED: &str = "DOCKER::SANDBOX_NOT_PAUSED";
/// The requested port is not reachable from outside the sandbox.
pub const ENDPOINT_NOT_AVAILABLE: &str = "DOCKER::ENDPOINT_NOT_AVAILABLE";
/// The entrypoint cannot be executed in the image (upstream's code for the same failure).
pub const ENTRYPOINT_NOT_EXECUTABLE: &str = "DOCKER::INVALID_ENTRYPOINT";
/// The engine does not answer (connection refused, timeout).
pub const ENGINE_UNAVAILABLE: &str = "DOCKER::ENGINE_UNAVAILABLE";
/// The image is not on the engine and could not be pulled.
pub const IMAGE_PULL_FAILED: &str = "DOCKER::SANDBOX_IMAGE_PULL_FAILED";
