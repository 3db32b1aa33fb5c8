//! RBAC bindings: a subject or a group bound to a role (and a team).

use serde::{Deserialize, Serialize};

/// What a binding names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindingKind {
    /// One user (the principal's subject).
    Subject,
    /// Everyone in a group (from the IdP's `groups` claim).
    Group,
}

impl BindingKind {
    /// `subject` or `group`.
    pub fn as_str(self) -> &'static str {
        match self {
            BindingKind::Subject => "subject",
            BindingKind::Group => "group",
        }
    }

    /// Parses [`BindingKind::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "subject" => Some(BindingKind::Subject),
            "group" => Some(BindingKind::Group),
            _ => None,
        }
    }
}

/// One binding; `(kind, name)` is unique.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// Subject or group.
    pub kind: BindingKind,
    /// The subject or group name.
    pub name: String,
    /// The role granted.
    pub role: String,
    /// The team the caller acts in, if the binding sets one.
    pub team: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// When, Unix milliseconds.
    pub created_ms: i64,
}
