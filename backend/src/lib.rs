//! `gatehouse-backend`: an OpenSandbox lifecycle server in Rust.
//!
//! - [`api`]: the HTTP surface (axum on hyper), mounted at `/` and `/v1`;
//! - [`service`]: what each call means, over the store and a runtime;
//! - [`store`]: the embedded SQLite store (expiries, metadata, last status);
//! - [`runtime`]: the seam choosing the engine driver from `runtime.type`;
//! - [`expiry`] and [`reconcile`]: background tasks;
//! - [`events`]: the lifecycle event feed (`GET /gatehouse/ext/v1/events`);
//! - [`config`]: TOML configuration compatible with the upstream server's keys.
//!
//! The engine is abstracted by [`gatehouse_lifecycle::Runtime`]; the Docker driver lives in
//! `gatehouse-runtime-docker`.

pub mod admin;
pub mod api;
pub mod config;
pub mod error;
pub mod events;
pub mod expiry;
pub mod metrics;
pub mod reconcile;
pub mod runtime;
pub mod service;
pub mod store;

#[cfg(test)]
pub(crate) mod test_support;
