//! The OpenSandbox lifecycle API as Gatehouse understands it.
//!
//! This crate has no I/O. It holds:
//! - [`driver_config`]: the Kubernetes driver's `extensions` keys and their formats;
//! - [`model`]: the request and response bodies of `sandbox-lifecycle.yml`;
//! - [`validate`]: the server-side rules (metadata labels, timeouts, quantities);
//! - [`query`]: the list query (`state`, `metadata`, `page`, `pageSize`);
//! - [`error`]: the `{"code","message"}` error and the upstream-style codes;
//! - [`wire`]: header names, request-id rules, reserved label keys, server-proxy URLs;
//! - [`events`]: lifecycle event kinds and the backend feed's event (SSE extension);
//! - [`runtime`]: the [`runtime::Runtime`] trait a sandbox driver (Docker, Kubernetes)
//!   implements, so the API layer never depends on one engine.
//!
//! The backend serves this API; the gateway uses the same model to rewrite and filter it.

pub mod driver_config;
pub mod error;
pub mod events;
pub mod model;
pub mod query;
pub mod runtime;
pub mod time;
pub mod validate;
pub mod wire;

pub use error::{codes, ApiError};
pub use model::*;
pub use runtime::{Observed, Runtime, RuntimeError, SandboxSpec};
