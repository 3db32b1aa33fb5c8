//! Error codes the driver reports, in the upstream server's `KUBERNETES::` style.

/// The driver cannot be set up from its configuration (bad kubeconfig, bad section).
pub const INIT_ERROR: &str = "KUBERNETES::INITIALIZATION_ERROR";
/// The API server does not answer (connection refused, TLS failure, timeout).
pub const UNAVAILABLE: &str = "KUBERNETES::UNAVAILABLE";
/// The API server refused the backend's identity an operation (RBAC).
pub const FORBIDDEN: &str = "KUBERNETES::FORBIDDEN";
/// The namespace a sandbox would be created in does not exist.
pub const NAMESPACE_NOT_FOUND: &str = "KUBERNETES::NAMESPACE_NOT_FOUND";
/// The namespace is not one this backend may create sandboxes in.
pub const NAMESPACE_NOT_ALLOWED: &str = "KUBERNETES::NAMESPACE_NOT_ALLOWED";
/// The ServiceAccount the sandbox pod names does not exist.
pub const SERVICE_ACCOUNT_NOT_FOUND: &str = "KUBERNETES::SERVICE_ACCOUNT_NOT_FOUND";
/// The request's `kubernetes.*` extensions ask for a placement the backend does not allow.
pub const PLACEMENT_NOT_ALLOWED: &str = "KUBERNETES::PLACEMENT_NOT_ALLOWED";
/// A ResourceQuota of the namespace refused the pod.
pub const QUOTA_EXCEEDED: &str = "KUBERNETES::QUOTA_EXCEEDED";
/// The API server rejected the pod as invalid.
pub const INVALID_POD: &str = "KUBERNETES::INVALID_POD";
/// A pod with the sandbox's name already exists.
pub const ALREADY_EXISTS: &str = "KUBERNETES::SANDBOX_ALREADY_EXISTS";
/// Creating the pod failed for another reason.
pub const START_FAILED: &str = "KUBERNETES::SANDBOX_START_FAILED";
/// Reading pods failed for another reason.
pub const QUERY_FAILED: &str = "KUBERNETES::POD_QUERY_FAILED";
/// Deleting the pod failed for another reason.
pub const DELETE_FAILED: &str = "KUBERNETES::SANDBOX_DELETE_FAILED";
/// The sandbox has no address yet (not running, no pod IP).
pub const NOT_RUNNING: &str = "KUBERNETES::SANDBOX_NOT_RUNNING";
/// The port is not one the sandbox's pod declares.
pub const ENDPOINT_NOT_AVAILABLE: &str = "KUBERNETES::ENDPOINT_NOT_AVAILABLE";
/// Pause and resume: Kubernetes cannot freeze a pod. The same code and status (501) as
/// upstream's Kubernetes runtime answers.
pub const API_NOT_SUPPORTED: &str = gatehouse_lifecycle::codes::API_NOT_SUPPORTED;
