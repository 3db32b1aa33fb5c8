//! Request and response bodies of the lifecycle API (`sandbox-lifecycle.yml`).
//!
//! Field names are the API's camelCase. Optional fields are omitted when empty, as the
//! upstream server does (`response_model_exclude_none`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// String-to-string map used for metadata, env, resource limits and extensions.
pub type StringMap = BTreeMap<String, String>;

/// High-level lifecycle state of a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SandboxState {
    /// Being provisioned.
    Pending,
    /// Running and ready.
    Running,
    /// Pause requested.
    Pausing,
    /// Paused with state kept.
    Paused,
    /// Resume requested.
    Resuming,
    /// Being terminated.
    Stopping,
    /// Terminated.
    Terminated,
    /// Hit a critical error.
    Failed,
    /// The runtime reported something this server cannot map.
    Unknown,
}

impl SandboxState {
    /// Every state, in declaration order.
    pub const ALL: [SandboxState; 9] = [
        Self::Pending,
        Self::Running,
        Self::Pausing,
        Self::Paused,
        Self::Resuming,
        Self::Stopping,
        Self::Terminated,
        Self::Failed,
        Self::Unknown,
    ];

    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Pausing => "Pausing",
            Self::Paused => "Paused",
            Self::Resuming => "Resuming",
            Self::Stopping => "Stopping",
            Self::Terminated => "Terminated",
            Self::Failed => "Failed",
            Self::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for SandboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SandboxState {
    type Err = String;

    /// Case-insensitive, as the list filter is.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown sandbox state '{s}'"))
    }
}

/// Status details of a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxStatus {
    /// Lifecycle state.
    pub state: SandboxState,
    /// Short machine-readable reason, e.g. `CONTAINER_RUNNING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the state last changed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::time::rfc3339_opt"
    )]
    pub last_transition_at: Option<DateTime<Utc>>,
}

/// Registry credentials for a private image. Never stored, logged or returned.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageAuth {
    /// Registry user.
    #[serde(default)]
    pub username: Option<String>,
    /// Registry password or token.
    #[serde(default)]
    pub password: Option<String>,
}

impl fmt::Debug for ImageAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Container image of a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Image reference, e.g. `python:3.11`.
    pub uri: String,
    /// Registry credentials; accepted on create, never echoed.
    #[serde(default, skip_serializing)]
    pub auth: Option<ImageAuth>,
}

/// Target OS and CPU architecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformSpec {
    /// `linux` or `windows`.
    pub os: String,
    /// `amd64` or `arm64`.
    pub arch: String,
}

/// `POST /sandboxes` body. Unknown fields are ignored, as upstream does.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSandboxRequest {
    /// Image to run (required unless `snapshotId`).
    #[serde(default)]
    pub image: Option<ImageSpec>,
    /// Snapshot to restore from (not supported by this backend).
    #[serde(default)]
    pub snapshot_id: Option<String>,
    /// Platform constraint.
    #[serde(default)]
    pub platform: Option<PlatformSpec>,
    /// Seconds until expiry; `null` or absent means no expiry.
    #[serde(default)]
    pub timeout: Option<i64>,
    /// Hard resource caps, e.g. `{"cpu":"500m","memory":"512Mi"}`.
    #[serde(default)]
    pub resource_limits: Option<StringMap>,
    /// Environment variables (a `null` value is dropped).
    #[serde(default)]
    pub env: Option<BTreeMap<String, Option<String>>>,
    /// User metadata (labels).
    #[serde(default)]
    pub metadata: Option<StringMap>,
    /// Entry process.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// Egress policy (not supported by this backend).
    #[serde(default)]
    pub network_policy: Option<serde_json::Value>,
    /// Credential proxy settings (not supported by this backend).
    #[serde(default)]
    pub credential_proxy: Option<serde_json::Value>,
    /// Secured endpoint access (Kubernetes gateway mode only).
    #[serde(default)]
    pub secure_access: Option<bool>,
    /// Storage mounts (not supported by this backend).
    #[serde(default)]
    pub volumes: Option<Vec<serde_json::Value>>,
    /// Opaque provider-specific parameters, echoed back.
    #[serde(default)]
    pub extensions: Option<StringMap>,
}

/// A sandbox as `GET /sandboxes/{id}` and the list return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sandbox {
    /// Sandbox id.
    pub id: String,
    /// Image it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpec>,
    /// Platform constraint given at create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformSpec>,
    /// Current status.
    pub status: SandboxStatus,
    /// User metadata.
    #[serde(default)]
    pub metadata: StringMap,
    /// Entry process.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// Provider-specific parameters given at create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<StringMap>,
    /// Expiry; absent when the sandbox needs manual cleanup.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::time::rfc3339_opt"
    )]
    pub expires_at: Option<DateTime<Utc>>,
    /// Creation time.
    #[serde(with = "crate::time::rfc3339")]
    pub created_at: DateTime<Utc>,
}

/// `POST /sandboxes` response: the sandbox without its image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSandboxResponse {
    /// Sandbox id.
    pub id: String,
    /// Status right after creation.
    pub status: SandboxStatus,
    /// User metadata.
    #[serde(default)]
    pub metadata: StringMap,
    /// Platform constraint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformSpec>,
    /// Provider-specific parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<StringMap>,
    /// Expiry, if any.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::time::rfc3339_opt"
    )]
    pub expires_at: Option<DateTime<Utc>>,
    /// Creation time.
    #[serde(with = "crate::time::rfc3339")]
    pub created_at: DateTime<Utc>,
    /// Entry process.
    pub entrypoint: Vec<String>,
}

impl From<Sandbox> for CreateSandboxResponse {
    fn from(s: Sandbox) -> Self {
        Self {
            id: s.id,
            status: s.status,
            metadata: s.metadata,
            platform: s.platform,
            extensions: s.extensions,
            expires_at: s.expires_at,
            created_at: s.created_at,
            entrypoint: s.entrypoint,
        }
    }
}

/// Pagination block of a list response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// Current page, from 1.
    pub page: u32,
    /// Items per page.
    pub page_size: u32,
    /// Items matching the filter, across pages.
    pub total_items: u64,
    /// Number of pages.
    pub total_pages: u64,
    /// Whether a later page exists.
    pub has_next_page: bool,
}

impl Pagination {
    /// The block for `total_items` matches shown `page_size` at a time.
    pub fn new(page: u32, page_size: u32, total_items: u64) -> Self {
        let size = u64::from(page_size.max(1));
        let total_pages = total_items.div_ceil(size);
        Self {
            page,
            page_size,
            total_items,
            total_pages,
            has_next_page: u64::from(page) < total_pages,
        }
    }

    /// Index range of the page within the full, ordered result.
    pub fn window(&self) -> std::ops::Range<usize> {
        let size = self.page_size as usize;
        let start = (self.page.saturating_sub(1) as usize).saturating_mul(size);
        let end = start.saturating_add(size).min(self.total_items as usize);
        start.min(end)..end
    }
}

/// `GET /sandboxes` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSandboxesResponse {
    /// Sandboxes on this page, newest first.
    pub items: Vec<Sandbox>,
    /// Where this page sits.
    pub pagination: Pagination,
}

/// `POST /sandboxes/{id}/renew-expiration` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenewRequest {
    /// New absolute expiry, RFC 3339.
    pub expires_at: String,
}

/// `POST /sandboxes/{id}/renew-expiration` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenewResponse {
    /// The expiry now in force.
    #[serde(with = "crate::time::rfc3339")]
    pub expires_at: DateTime<Utc>,
}

/// `GET /sandboxes/{id}/endpoints/{port}` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `host:port[/path]` without a scheme, as upstream returns it.
    pub endpoint: String,
    /// Headers a caller must send to reach the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<StringMap>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_math() {
        let p = Pagination::new(2, 20, 45);
        assert_eq!(p.total_pages, 3);
        assert!(p.has_next_page);
        assert_eq!(p.window(), 20..40);
        let last = Pagination::new(3, 20, 45);
        assert!(!last.has_next_page);
        assert_eq!(last.window(), 40..45);
        let beyond = Pagination::new(9, 20, 45);
        assert_eq!(beyond.window(), 45..45);
        let empty = Pagination::new(1, 20, 0);
        assert_eq!(empty.total_pages, 0);
        assert!(!empty.has_next_page);
    }

    #[test]
    fn state_parses_case_insensitively() {
        assert_eq!("running".parse::<SandboxState>(), Ok(SandboxState::Running));
        assert_eq!("PAUSED".parse::<SandboxState>(), Ok(SandboxState::Paused));
        assert!("sleeping".parse::<SandboxState>().is_err());
    }

    #[test]
    fn image_auth_is_never_serialized() {
        let img = ImageSpec {
            uri: "x".into(),
            auth: Some(ImageAuth {
                username: Some("u".into()),
                password: Some("hunter2".into()),
            }),
        };
        let s = serde_json::to_string(&img).unwrap();
        assert!(!s.contains("hunter2"));
        assert!(!format!("{img:?}").contains("hunter2"));
    }
}
