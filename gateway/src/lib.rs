//! The Gatehouse gateway: a Pingora reverse proxy that authenticates, authorizes, scopes
//! and audits every request to a sandbox lifecycle server.
//!
//! ```text
//! client ──► request_filter ─────────────► upstream_request_filter ─► backend
//!            │ request id, normalize path   │ strip identity headers
//!            │ authenticate (chain)         │ upstream key for users
//!            │ authorize (role table)       │ canonical path, scoped query
//!            │ scope: lookup / inject body  request_body_filter: rewritten body
//!            ▼
//!          deny (4xx, never forwarded)      response_filter / response_body_filter:
//!                                           list scope filter, endpoint rewrite, created id
//!                         logging: audit event per mutation and per denial (errors too)
//! ```
//!
//! - [`config`]: the TOML configuration;
//! - [`proxy`]: the `ProxyHttp` implementation;
//! - [`ctx`]: the per-request context;
//! - [`lookup`]: the gateway's own backend calls (scope lookups, health);
//! - [`error`]: the error shape and the one function that writes it;
//! - [`server`]: wiring into a Pingora server.

pub mod auth_routes;
pub mod config;
pub mod console;
pub mod ctx;
pub mod error;
pub mod lookup;
pub mod proxy;
pub mod server;
