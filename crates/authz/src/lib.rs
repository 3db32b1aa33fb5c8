//! `gatehouse-authz`: who may do what through the gateway.
//!
//! The decision flow for one request:
//!
//! 1. [`normalize()`] the raw path: one canonical spelling, or a [`PathError`] (400);
//! 2. [`RoleTable::resolve_role`] gives the caller's role when the authenticator did not
//!    fix one;
//! 3. [`RoleTable::authorize`] routes `method` + [`NormalizedPath::api_path`] to exactly
//!    one table entry and its [`Action`], then checks the role has it: a [`Permit`], or a
//!    [`Denial`] (`UnknownRoute`, `Forbidden`);
//! 4. the permit's [`Target`] tells the gateway how to scope the request
//!    ([`RoleTable::scope`]).
//!
//! [`PolicyStore`] holds the table in force and reloads it when its file changes.

mod action;
mod compile;
mod decision;
mod error;
mod explain;
mod normalize;
mod raw;
mod reload;
mod route;
mod table;

pub use action::{Action, Target, UnknownAction};
pub use decision::{Denial, Permit};
pub use error::PolicyError;
pub use normalize::{normalize, Mount, NormalizedPath, PathError};
pub use reload::PolicyStore;
pub use route::RouteMatch;
pub use table::{RoleTable, ScopeMode};

/// The read-only role of OSEP-0006 (`read_only_subjects`, the usual default role).
pub const READ_ONLY: &str = "read_only";
/// The operator role of OSEP-0006 (`operator_subjects`).
pub const OPERATOR: &str = "operator";
/// The full-access role of OSEP-0006 (`service_admin_subjects`); it bypasses scoping.
pub const SERVICE_ADMIN: &str = "service_admin";
