//! The Docker driver of the Gatehouse lifecycle backend.
//!
//! [`DockerRuntime`] implements [`gatehouse_lifecycle::Runtime`] on a Docker engine through
//! [`bollard`]: one container `sandbox-<id>` per sandbox, labelled so the backend can adopt
//! sandboxes it finds on the engine ([`labels`]), with the engine's state mapped as the
//! upstream OpenSandbox server maps it ([`state`]).
//!
//! - [`codes`]: the `DOCKER::` error codes;
//! - [`config`]: the `[docker]` configuration section ([`DockerConfig`]);
//! - [`labels`]: labels written on containers and how user metadata is recovered;
//! - [`state`]: container state to lifecycle state;
//! - [`execd`]: delivery of the in-sandbox agent (binary mount, token directory);
//! - [`DockerRuntime`]: the driver (connection and API version negotiation, create,
//!   inspect, list, delete, pause, resume, endpoint).
//!
//! Every engine failure to answer (connection refused, timeout) is reported as
//! [`gatehouse_lifecycle::RuntimeError::Unavailable`] with runtime `DOCKER`.

mod client;
pub mod codes;
pub mod config;
mod create;
mod driver;
pub mod execd;
pub mod labels;
mod ops;
pub mod state;

pub use client::{RUNTIME, SAFE_VERSION};
pub use config::DockerConfig;
pub use driver::DockerRuntime;
pub use execd::ExecdDelivery;
