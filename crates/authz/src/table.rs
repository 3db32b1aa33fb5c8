//! The validated role table and the questions the gateway asks it: which route is this,
//! may this role do it, which role does this caller have.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::decision::{Denial, Permit};
use crate::error::PolicyError;
use crate::raw::RawTable;
use crate::route::{split_path, Pattern, RouteMatch};

/// How non-admin callers are scoped to sandboxes (`[authz] scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeMode {
    /// A caller sees the sandboxes of their team (the default).
    #[default]
    Team,
    /// A caller sees only the sandboxes they own.
    Owner,
}

/// A set of actions, one bit per action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ActionSet(u64);

impl ActionSet {
    /// Every action.
    pub(crate) fn all() -> Self {
        ActionSet(Action::ALL.iter().fold(0, |acc, a| acc | a.bit()))
    }
    pub(crate) fn insert(&mut self, a: Action) {
        self.0 |= a.bit();
    }
    pub(crate) fn union(&mut self, other: ActionSet) {
        self.0 |= other.0;
    }
    pub(crate) fn contains(self, a: Action) -> bool {
        self.0 & a.bit() != 0
    }
    pub(crate) fn len(self) -> u32 {
        self.0.count_ones()
    }
    pub(crate) fn to_vec(self) -> Vec<Action> {
        Action::ALL
            .into_iter()
            .filter(|a| self.contains(*a))
            .collect()
    }
}

/// A role with its inheritance resolved and `"*"` expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RoleDef {
    pub actions: ActionSet,
    /// The role (or a role it inherits) lists `"*"`.
    pub wildcard: bool,
}

/// The methods a route entry answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MethodSpec {
    /// `"*"`: every method.
    Any,
    /// One method, upper case. A `GET` entry also answers `HEAD`.
    Exact(String),
}

impl MethodSpec {
    pub(crate) fn accepts(&self, method: &str) -> bool {
        match self {
            MethodSpec::Any => true,
            MethodSpec::Exact(m) => m == method || (method == "HEAD" && m == "GET"),
        }
    }
    pub(crate) fn as_str(&self) -> &str {
        match self {
            MethodSpec::Any => "*",
            MethodSpec::Exact(m) => m,
        }
    }
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone)]
pub(crate) struct RouteEntry {
    pub method: MethodSpec,
    pub pattern: Pattern,
    pub action: Action,
}

impl RouteEntry {
    /// Matches a request against this entry alone.
    pub(crate) fn matches(&self, method: &str, segs: &[&str]) -> Option<RouteMatch> {
        if !self.method.accepts(method) {
            return None;
        }
        let params = self.pattern.captures(segs)?;
        let find = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        Some(RouteMatch {
            action: self.action,
            pattern: self.pattern.text().to_owned(),
            sandbox_id: find("sandboxId"),
            port: find("port"),
            tail: self.pattern.tail_name().and_then(find),
            params,
        })
    }
}

/// A validated role table: roles, `[authz]` bindings and routes.
///
/// Build it with [`RoleTable::parse`] or [`RoleTable::load`]; both reject a table with
/// any bad entry, so a `RoleTable` is always consistent.
#[derive(Debug, Clone)]
pub struct RoleTable {
    pub(crate) roles: HashMap<String, RoleDef>,
    pub(crate) default_role: String,
    pub(crate) scope: ScopeMode,
    pub(crate) service_admin_subjects: Vec<String>,
    pub(crate) operator_subjects: Vec<String>,
    pub(crate) read_only_subjects: Vec<String>,
    pub(crate) group_roles: HashMap<String, String>,
    pub(crate) group_names_are_roles: bool,
    pub(crate) routes: Vec<RouteEntry>,
}

impl RoleTable {
    /// Parses and validates a role table from TOML text.
    pub fn parse(text: &str) -> Result<RoleTable, PolicyError> {
        let raw: RawTable = toml::from_str(text)?;
        crate::compile::compile(raw).map_err(PolicyError::Invalid)
    }

    /// Reads, parses and validates a role table file.
    pub fn load(path: &Path) -> Result<RoleTable, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        RoleTable::parse(&text)
    }

    /// Routes a request. `api_path` is [`crate::NormalizedPath::api_path`]; a `HEAD`
    /// request matches `GET` entries. Validation guarantees at most one entry matches.
    pub fn route(&self, method: &str, api_path: &str) -> Option<RouteMatch> {
        let segs = split_path(api_path);
        self.routes.iter().find_map(|r| r.matches(method, &segs))
    }

    /// Every entry that matches (validation makes this at most one; tests check it).
    #[cfg(test)]
    pub(crate) fn all_matches(&self, method: &str, api_path: &str) -> Vec<RouteMatch> {
        let segs = split_path(api_path);
        self.routes
            .iter()
            .filter_map(|r| r.matches(method, &segs))
            .collect()
    }

    /// Decides a request: the route's action must be among the role's permissions.
    ///
    /// No matching route gives [`Denial::UnknownRoute`]; an unknown role, or one without
    /// the action, gives [`Denial::Forbidden`].
    pub fn authorize(&self, role: &str, method: &str, api_path: &str) -> Result<Permit, Denial> {
        let route = self.route(method, api_path).ok_or(Denial::UnknownRoute)?;
        if self.allows(role, route.action) {
            let scope = (role != crate::SERVICE_ADMIN).then_some(self.scope());
            Ok(Permit::new(role.to_owned(), route, scope))
        } else {
            Err(Denial::Forbidden {
                role: role.to_owned(),
                action: route.action,
            })
        }
    }

    /// True when `role` exists and has `action`.
    pub fn allows(&self, role: &str, action: Action) -> bool {
        self.roles
            .get(role)
            .is_some_and(|r| r.actions.contains(action))
    }

    /// The role of a caller who has no role of their own: the most privileged of the
    /// explicit subject lists and the `group_roles` of each group (and each group named
    /// like a role, only with `group_names_are_roles = true`); `default_role` when none
    /// applies.
    ///
    /// Privilege is the number of actions a role has (a `"*"` role wins ties); equal
    /// privilege goes to the alphabetically first name.
    pub fn resolve_role(&self, subject: &str, groups: &[String]) -> String {
        self.resolve_role_with(subject, groups, self.group_names_are_roles)
    }

    /// [`RoleTable::resolve_role`], with groups named like a role granting it when
    /// `names_are_roles` (a trusted proxy's roles header lists role names by design).
    pub fn resolve_role_with(
        &self,
        subject: &str,
        groups: &[String],
        names_are_roles: bool,
    ) -> String {
        let lists = [
            (&self.service_admin_subjects, crate::SERVICE_ADMIN),
            (&self.operator_subjects, crate::OPERATOR),
            (&self.read_only_subjects, crate::READ_ONLY),
        ];
        let explicit = lists
            .into_iter()
            .filter(|(l, _)| l.iter().any(|s| s == subject))
            .map(|(_, r)| r);
        let mapped = groups
            .iter()
            .filter_map(|g| self.group_roles.get(g))
            .map(String::as_str);
        let named = groups
            .iter()
            .map(String::as_str)
            .filter(|g| names_are_roles && self.roles.contains_key(*g));
        explicit
            .chain(mapped)
            .chain(named)
            .filter_map(|name| self.roles.get(name).map(|def| (name, def)))
            .max_by(|(an, a), (bn, b)| {
                (a.actions.len(), a.wildcard)
                    .cmp(&(b.actions.len(), b.wildcard))
                    .then_with(|| bn.cmp(an))
            })
            .map_or_else(|| self.default_role.clone(), |(name, _)| name.to_owned())
    }

    /// The actions of `role` (inheritance resolved, `"*"` expanded), in
    /// [`Action::ALL`] order. Empty for an unknown role.
    pub fn permissions(&self, role: &str) -> Vec<Action> {
        self.roles
            .get(role)
            .map(|r| r.actions.to_vec())
            .unwrap_or_default()
    }

    /// True when the table defines `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }

    /// Every role name, sorted.
    pub fn role_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.roles.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// `[authz] group_names_are_roles`: whether a group named like a role grants it.
    pub fn group_names_are_roles(&self) -> bool {
        self.group_names_are_roles
    }

    /// `[authz] default_role`.
    pub fn default_role(&self) -> &str {
        &self.default_role
    }

    /// `[authz] scope`: how non-admin callers are scoped.
    pub fn scope(&self) -> ScopeMode {
        self.scope
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod coverage_tests;
