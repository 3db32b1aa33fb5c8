//! Many gateways, one truth: what lets several replicas share the governance store.
//!
//! - [`config`]: the `[replication]` section;
//! - [`session_backend`]: login sessions in the store (the authn crate's
//!   `SessionBackend`, implemented with the store's `SessionStore`);
//! - [`login_state`]: sign-ins in progress in the store, so the IdP may send a browser
//!   back to any replica;
//! - [`follower`]: each replica follows the store's change log and drops what its caches
//!   hold for every change (sessions ended, IdP session ids, personal keys, bindings,
//!   sandbox scopes), within [`config::ReplicationSection::poll_ms`] at worst and at once
//!   on PostgreSQL (`LISTEN gatehouse_changes`);
//! - [`caches`]: those caches in the running gateway, the sandbox scope changes it
//!   publishes, and the re-check of a scoped read against the metadata returned.

pub mod caches;
pub mod config;
pub mod follower;
pub mod login_state;
pub mod session_backend;

pub use config::{ReplicationSection, SessionPlacement};
pub use follower::{Caches, Follower};
pub use login_state::StoreLoginStates;
pub use session_backend::StoreSessionBackend;
