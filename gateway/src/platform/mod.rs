//! Platform controllers: trusted control planes that create sandboxes on behalf of
//! tenants (seed `004`, "platform-managed Kubernetes sandboxes").
//!
//! A controller authenticates with a named API key of kind `platform_controller`, or with
//! a Kubernetes ServiceAccount token its entry lists ([`kubernetes`], checked by
//! TokenReview). On a create it may assert, each only within its `[[platform.controllers]]` allowlists:
//!
//! - the tenant: `extensions["gatehouse.tenant.team"]` (and optionally
//!   `["gatehouse.tenant.owner"]`); the sandbox's reserved owner/team metadata is then
//!   the tenant's, so the tenant's users see it and nobody else does;
//! - the Kubernetes driver's `kubernetes.*` extensions (namespace, RuntimeClass, node
//!   selector, tolerations, ServiceAccount, Secret env refs;
//!   [`gatehouse_lifecycle::driver_config`]).
//!
//! Anything outside an allowlist is 403 naming the field. Other callers sending these
//! fields get 403 too. Every sandbox a controller creates carries the reserved
//! `access.controller` token, which is the controller's own scope: it sees and manages the
//! sandboxes it made, for every tenant, and nothing else.
//!
//! - [`config`]: the `[platform]` section;
//! - [`pattern`]: allowlist patterns;
//! - [`kubernetes`]: the `[platform.kubernetes]` section and the ServiceAccount
//!   authenticator it builds;
//! - [`create`]: checking and rewriting a create body.

pub mod config;
pub mod create;
pub mod kubernetes;
pub mod pattern;

use crate::error::GatewayError;
use config::{ControllerConfig, PlatformSection};
use gatehouse_authn::{Principal, PrincipalKind};
use std::collections::HashMap;
use std::sync::Arc;

/// Why a create body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// A controller asserted something outside its allowlist.
    #[error("Field '{field}' is not allowed for platform controller '{controller}': {reason}")]
    NotAllowed {
        /// The field, e.g. `extensions.kubernetes.namespace`.
        field: String,
        /// The controller.
        controller: String,
        /// What was asked and what is allowed.
        reason: String,
    },
    /// A caller that is not a controller sent a controller-only field.
    #[error("Field '{0}' may only be set by a platform controller.")]
    ControllerOnly(String),
    /// The body is not the JSON a create expects.
    #[error("{0}")]
    Malformed(String),
}

impl From<PlatformError> for GatewayError {
    fn from(e: PlatformError) -> Self {
        let code = match &e {
            PlatformError::NotAllowed { .. } => "GATEWAY::PLATFORM_NOT_ALLOWED",
            PlatformError::ControllerOnly(_) => "GATEWAY::CONTROLLER_ONLY",
            PlatformError::Malformed(_) => "GATEWAY::INVALID_BODY",
        };
        let status = if matches!(e, PlatformError::Malformed(_)) {
            400
        } else {
            403
        };
        GatewayError::new(status, code, e.to_string())
    }
}

/// The configured controllers, by name.
#[derive(Debug, Default)]
pub struct Platform {
    controllers: HashMap<String, Arc<ControllerConfig>>,
}

impl Platform {
    /// Builds the lookup from a validated `[platform]` section.
    pub fn new(section: &PlatformSection) -> Self {
        Self {
            controllers: section
                .controllers
                .iter()
                .map(|c| (c.name.clone(), Arc::new(c.clone())))
                .collect(),
        }
    }

    /// The identity a controller's scope is derived from: `key:<name>`, whichever
    /// credential (named key or ServiceAccount token) it authenticated with, so a
    /// controller keeps its sandboxes when it moves from one to the other.
    pub fn scope_subject(c: &ControllerConfig) -> String {
        format!("key:{}", c.name)
    }

    /// The controller `p` authenticates as, if it is one.
    pub fn controller_of(&self, p: &Principal) -> Option<&ControllerConfig> {
        if p.kind != PrincipalKind::Controller {
            return None;
        }
        self.controllers
            .get(p.key_name.as_deref()?)
            .map(Arc::as_ref)
    }
}
