//! The role table as written in TOML, before validation. Unknown keys are errors.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::table::ScopeMode;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTable {
    #[serde(default)]
    pub roles: BTreeMap<String, RawRole>,
    #[serde(default)]
    pub authz: RawAuthz,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
}

/// `[roles.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRole {
    #[serde(default)]
    pub inherits: Vec<String>,
    #[serde(default)]
    pub actions: Vec<String>,
}

/// `[authz]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuthz {
    #[serde(default = "default_role")]
    pub default_role: String,
    #[serde(default)]
    pub scope: ScopeMode,
    #[serde(default)]
    pub service_admin_subjects: Vec<String>,
    #[serde(default)]
    pub operator_subjects: Vec<String>,
    #[serde(default)]
    pub read_only_subjects: Vec<String>,
    #[serde(default)]
    pub group_roles: BTreeMap<String, String>,
    /// Whether an IdP group named exactly like a role grants it (off: only
    /// `group_roles` maps groups).
    #[serde(default)]
    pub group_names_are_roles: bool,
}

impl Default for RawAuthz {
    fn default() -> Self {
        RawAuthz {
            default_role: default_role(),
            scope: ScopeMode::default(),
            service_admin_subjects: Vec::new(),
            operator_subjects: Vec::new(),
            read_only_subjects: Vec::new(),
            group_roles: BTreeMap::new(),
            group_names_are_roles: false,
        }
    }
}

fn default_role() -> String {
    crate::READ_ONLY.to_owned()
}

/// `[[routes]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub method: String,
    pub path: String,
    pub action: String,
}
