//! The Gatehouse gateway: a reverse proxy (hyper's HTTP/1.1 inside a Pingora server)
//! that authenticates, authorizes, scopes and
//! audits every request to a sandbox lifecycle server.
//!
//! ```text
//! client ──► request_filter ─────────────► upstream_request_filter ─► backend
//!            │ request id, normalize path   │ strip identity headers
//!            │ own routes (auth, console)   │ upstream key for users
//!            │ authenticate (chain), CSRF   │ canonical path, scoped query
//!            │ authorize (role table)       request_body_filter: rewritten body
//!            │ scope: lookup / inject body
//!            ▼                              response_filter / response_body_filter:
//!          deny (4xx, never forwarded)      list scope filter, endpoint rewrite, created id
//!                         logging: audit event per mutation and per denial (errors too)
//! ```
//!
//! - [`config`]: the TOML configuration;
//! - [`server`]: wiring the configuration into a Pingora server;
//! - [`http`]: the data path: hyper HTTP/1.1 on Pingora's listeners, the upstream pool;
//! - [`state`]: the shared state every request sees ([`state::Gateway`]);
//! - [`pipeline`]: the `ProxyHttp` phases, one module per step;
//! - [`ctx`]: the typed per-request context;
//! - [`routes`]: the gateway's own endpoints (`/healthz`, `/auth/*`, `/console/*`);
//! - [`csrf`] and [`cookies`]: browser-session defences; [`cors`]: other origins;
//! - [`platform`]: platform controllers (tenant and placement a controller may assert);
//! - [`events`]: the lifecycle event hub behind `GET /gatehouse/v1/events` (SSE);
//! - [`signing`]: the signing key ring (JWKS); [`sandbox_identity`]: sandbox tokens;
//! - [`limits`]: idempotent create, quotas and rate limits;
//! - [`backend_client`]: the gateway's own calls to the backend (scope lookups, health);
//! - [`replication`]: sessions in the store and the change log every replica follows;
//! - [`error`] and [`reply`]: the error shape and the one function that writes answers.

pub mod admin;
pub mod audit_cli;
pub mod backend_client;
pub mod bindings;
pub mod check;
pub mod config;
pub mod cookies;
pub mod cors;
pub mod csrf;
pub mod ctx;
pub mod error;
pub mod events;
pub mod hosts;
pub mod http;
pub mod idp_probe;
pub mod limits;
pub mod metrics;
pub mod personal_keys;
pub mod pipeline;
pub mod platform;
pub mod rbac_cli;
pub mod reload;
pub mod replication;
pub mod reply;
pub mod routes;
pub mod sandbox_identity;
pub mod sandbox_origin;
pub mod server;
pub mod shutdown;
pub mod signing;
pub mod signing_key;
pub mod state;
pub mod upgrade;
