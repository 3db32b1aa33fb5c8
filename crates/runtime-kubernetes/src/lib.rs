//! The Kubernetes driver of the Gatehouse lifecycle backend.
//!
//! [`KubernetesRuntime`] implements [`gatehouse_lifecycle::Runtime`] on a Kubernetes API
//! server through [`kube`]: one plain Pod `sandbox-<id>` per sandbox (no operator),
//! labelled like the Docker driver's containers so a restarted backend adopts what it
//! finds, with state from watches (kube-runtime reflectors) rather than polling.
//!
//! - [`codes`]: the `KUBERNETES::` error codes;
//! - [`config`]: the `[kubernetes]` configuration section ([`KubernetesConfig`]);
//! - [`identity`]: the sandbox's projected ServiceAccount token (`[kubernetes.sandbox_identity]`);
//! - [`labels`]: labels and annotations written on pods;
//! - [`namespace`]: per-tenant namespaces from `namespace_template`, within an allowlist;
//! - [`placement`]: RuntimeClass, node selector and tolerations from `extensions`, within
//!   what the configuration allows;
//! - [`pod`]: the hardened Pod of a sandbox;
//! - [`state`]: pod phase, conditions and container states to lifecycle states;
//! - [`errors`]: API server answers to errors that say what to fix;
//! - [`KubernetesRuntime`]: the driver.
//!
//! Pause and resume answer 501 `SANDBOX::API_NOT_SUPPORTED`: Kubernetes cannot freeze a
//! pod (upstream's Kubernetes runtime answers the same).

pub mod codes;
pub mod config;
mod driver;
pub mod errors;
pub mod identity;
pub mod labels;
mod limiter;
pub mod namespace;
mod ops;
pub mod placement;
pub mod pod;
pub mod state;
mod watch;

pub use config::KubernetesConfig;
pub use driver::{KubernetesRuntime, RUNTIME};
