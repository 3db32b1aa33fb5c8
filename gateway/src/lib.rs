//! The Gatehouse gateway: a Pingora reverse proxy that authenticates, authorizes, scopes
//! and audits every request to a sandbox lifecycle server.
//!
//! It lands with the "Gateway core" issue; this crate reserves its place in the workspace.
