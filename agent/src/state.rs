//! Shared application state.

use std::sync::Arc;

use crate::commands::Registry;
use crate::env::ChildEnv;
use crate::sessions::Sessions;

/// Everything the routes share.
pub struct AppState {
    /// Commands started through `/command`.
    pub commands: Registry,
    /// Sessions started through `/session`.
    pub sessions: Sessions,
    /// Environment for children (without the token).
    pub env: ChildEnv,
    /// Shell binary for commands and sessions.
    pub shell: String,
    /// Largest upload body in bytes.
    pub max_upload_bytes: u64,
    /// Largest JSON body in bytes.
    pub max_json_bytes: usize,
    /// Port of this execd listener (proxy requests to it are dispatched internally).
    pub execd_port: u16,
    /// Port of the egress stub, if served.
    pub egress_port: Option<u16>,
}

/// Handle passed to every route.
pub type Shared = Arc<AppState>;
