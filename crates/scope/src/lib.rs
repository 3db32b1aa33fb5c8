//! Owner/team scoping through reserved metadata (OSEP-0006).
//!
//! A user's sandboxes carry two metadata keys the gateway controls (by default
//! `access.owner` and `access.team`). Their values are label-safe tokens derived from the
//! principal by [`token::canonical`]: deterministic, and collision-resistant (two different
//! principals never share a token).
//!
//! - [`Scope`] is what a caller may see: their team's sandboxes, or only their own when the
//!   principal has no team or the table says `scope = "owner"`;
//! - [`body`] rewrites a create body, guards a metadata patch, filters a list response and
//!   reads a sandbox's scope;
//! - [`query`] adds the scope to a list request's `metadata` filter, so the backend
//!   paginates over the caller's sandboxes only.

pub mod body;
pub mod query;
mod scan;
pub mod token;

use gatehouse_authz::Permit;
use gatehouse_lifecycle::StringMap;

/// The metadata keys that hold scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeKeys {
    /// Key holding the owner token (default `access.owner`).
    pub owner: String,
    /// Key holding the team token (default `access.team`).
    pub team: String,
    /// Key holding the token of the platform controller that made the sandbox (default
    /// `access.controller`): the controller's own scope.
    pub controller: String,
}

impl Default for ScopeKeys {
    fn default() -> Self {
        Self {
            owner: "access.owner".into(),
            team: "access.team".into(),
            controller: "access.controller".into(),
        }
    }
}

impl ScopeKeys {
    /// Whether `key` is one of the reserved scope keys.
    pub fn is_reserved(&self, key: &str) -> bool {
        key == self.owner || key == self.team || key == self.controller
    }
}

/// Which sandboxes a principal may see: the role table's `scope` (`team`, or `owner`;
/// a principal without a team is always scoped to itself).
pub use gatehouse_authz::ScopeMode;

/// The scope of one principal, as tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Owner token.
    pub owner: String,
    /// Team token, when the principal has a team.
    pub team: Option<String>,
    /// Matching mode.
    pub mode: ScopeMode,
    /// Token of the platform controller acting: its sandboxes are those carrying it, and
    /// a create writes it.
    pub controller: Option<String>,
}

/// Why a body could not be scoped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// The body is not the JSON the route expects.
    #[error("{0}")]
    Malformed(String),
    /// A metadata patch touches a reserved key.
    #[error("metadata key '{0}' is reserved for access scoping and cannot be changed")]
    Reserved(String),
}

impl Scope {
    /// The scope of a principal with this subject and optional team.
    pub fn for_principal(subject: &str, team: Option<&str>, mode: ScopeMode) -> Self {
        Self {
            owner: token::canonical(subject),
            team: team.filter(|t| !t.is_empty()).map(token::canonical),
            mode,
            controller: None,
        }
    }

    /// This scope as platform controller `subject`'s: it matches the sandboxes carrying
    /// the controller's token (whatever their tenant), and a create writes that token.
    pub fn with_controller(mut self, subject: &str) -> Self {
        self.controller = Some(token::canonical(subject));
        self
    }

    /// The scope a permit requires for this principal; `None` when the permit is not
    /// scoped (`service_admin`).
    pub fn for_permit(permit: &Permit, subject: &str, team: Option<&str>) -> Option<Self> {
        permit
            .scope_mode()
            .map(|mode| Self::for_principal(subject, team, mode))
    }

    /// The one metadata pair the caller's sandboxes must carry.
    pub fn filter_pair<'a>(&'a self, keys: &'a ScopeKeys) -> (&'a str, &'a str) {
        if let Some(c) = &self.controller {
            return (&keys.controller, c);
        }
        match (&self.team, self.mode) {
            (Some(team), ScopeMode::Team) => (&keys.team, team),
            _ => (&keys.owner, &self.owner),
        }
    }

    /// Whether a sandbox with this metadata is in scope.
    pub fn allows(&self, metadata: &StringMap, keys: &ScopeKeys) -> bool {
        let (k, v) = self.filter_pair(keys);
        metadata.get(k).is_some_and(|got| got == v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_mode_matches_team_owner_mode_matches_owner() {
        let keys = ScopeKeys::default();
        let alice = Scope::for_principal("alice", Some("team-a"), ScopeMode::Team);
        let bob = Scope::for_principal("bob", Some("team-a"), ScopeMode::Team);
        let bob_owner = Scope::for_principal("bob", Some("team-a"), ScopeMode::Owner);
        let md: StringMap = [
            (keys.owner.clone(), alice.owner.clone()),
            (keys.team.clone(), alice.team.clone().unwrap()),
        ]
        .into_iter()
        .collect();
        assert!(alice.allows(&md, &keys));
        assert!(bob.allows(&md, &keys), "same team");
        assert!(!bob_owner.allows(&md, &keys), "owner mode");
        let carol = Scope::for_principal("carol", Some("team-b"), ScopeMode::Team);
        assert!(!carol.allows(&md, &keys));
        assert!(
            !alice.allows(&StringMap::new(), &keys),
            "unlabelled sandboxes are out of scope"
        );
    }

    #[test]
    fn no_team_falls_back_to_owner() {
        let keys = ScopeKeys::default();
        let s = Scope::for_principal("dave", None, ScopeMode::Team);
        assert_eq!(s.filter_pair(&keys).0, "access.owner");
    }

    #[test]
    fn a_controller_matches_what_it_made_in_any_tenant() {
        let keys = ScopeKeys::default();
        let c = Scope::for_principal("key:onb", None, ScopeMode::Team).with_controller("key:onb");
        assert_eq!(c.filter_pair(&keys).0, "access.controller");
        let md: StringMap = [
            (keys.team.clone(), token::canonical("team-a")),
            (keys.controller.clone(), token::canonical("key:onb")),
        ]
        .into_iter()
        .collect();
        assert!(c.allows(&md, &keys));
        let other = Scope::for_principal("key:x", None, ScopeMode::Team).with_controller("key:x");
        assert!(!other.allows(&md, &keys));
        assert!(keys.is_reserved("access.controller"));
    }
}
