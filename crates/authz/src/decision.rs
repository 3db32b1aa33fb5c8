//! The outcome of [`crate::RoleTable::authorize`]: a [`Permit`] or a [`Denial`].

use crate::action::{Action, Target};
use crate::route::RouteMatch;
use crate::table::ScopeMode;

/// Proof that a request was authorized: only [`crate::RoleTable::authorize`] makes one.
///
/// Code that must only run for authorized requests can take a `&Permit` to make that
/// requirement a type.
#[derive(Debug, Clone)]
pub struct Permit {
    role: String,
    route: RouteMatch,
    scope: Option<ScopeMode>,
}

impl Permit {
    /// Only `authorize` calls this.
    pub(crate) fn new(role: String, route: RouteMatch, scope: Option<ScopeMode>) -> Permit {
        Permit { role, route, scope }
    }

    /// How the request must be scoped: `None` for `service_admin`, which sees everything;
    /// otherwise the table's `scope` mode.
    pub fn scope_mode(&self) -> Option<ScopeMode> {
        self.scope
    }

    /// The sandbox id the route names, if any.
    pub fn sandbox_id(&self) -> Option<&str> {
        self.route.sandbox_id.as_deref()
    }

    /// The port the route names (endpoints and the server proxy), if any.
    pub fn port(&self) -> Option<&str> {
        self.route.port.as_deref()
    }

    /// The action the request performs.
    pub fn action(&self) -> Action {
        self.route.action
    }

    /// The role that was granted the action.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The matched route and its captures (`sandbox_id`, `port`, `tail`).
    pub fn route(&self) -> &RouteMatch {
        &self.route
    }

    /// What the action points at, which decides how the request is scoped.
    pub fn target(&self) -> Target {
        self.route.action.target()
    }
}

/// Why a request was denied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// No route of the table matches the method and path.
    #[error("no route matches this request")]
    UnknownRoute,
    /// The route exists but the role is unknown or lacks its action.
    #[error("role '{role}' does not allow '{action}'")]
    Forbidden {
        /// The caller's role, as given to `authorize`.
        role: String,
        /// The action of the matched route.
        action: Action,
    },
}
