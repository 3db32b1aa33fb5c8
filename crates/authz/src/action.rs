//! Actions: the unit of permission. Every route of the table maps to exactly one action,
//! and every role is a set of actions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One thing a caller can do. Serialized as its name, e.g. `"sandbox:read"`.
///
/// The order of declaration (also [`Action::ALL`]'s order) is the order used by
/// [`crate::RoleTable::permissions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// `sandbox:list`: list sandboxes.
    SandboxList,
    /// `sandbox:create`: create a sandbox.
    SandboxCreate,
    /// `sandbox:read`: read one sandbox.
    SandboxRead,
    /// `sandbox:delete`: delete a sandbox.
    SandboxDelete,
    /// `sandbox:pause`: pause a sandbox.
    SandboxPause,
    /// `sandbox:resume`: resume a paused sandbox.
    SandboxResume,
    /// `sandbox:renew`: renew a sandbox's expiration.
    SandboxRenew,
    /// `sandbox:endpoint`: get the endpoint of a sandbox port.
    SandboxEndpoint,
    /// `sandbox:metadata`: patch a sandbox's metadata.
    SandboxMetadata,
    /// `sandbox:proxy`: send traffic to a sandbox port through the server proxy.
    SandboxProxy,
    /// `sandbox:snapshot`: snapshot a sandbox.
    SandboxSnapshot,
    /// `sandbox:diagnostics`: read a sandbox's logs, inspect output, events and summary.
    SandboxDiagnostics,
    /// `sandbox:networkpolicy:read`: read a sandbox's network policy.
    SandboxNetworkPolicyRead,
    /// `sandbox:networkpolicy:write`: replace, patch or delete a sandbox's network policy.
    SandboxNetworkPolicyWrite,
    /// `snapshot:list`: list snapshots.
    SnapshotList,
    /// `snapshot:read`: read one snapshot.
    SnapshotRead,
    /// `snapshot:delete`: delete a snapshot.
    SnapshotDelete,
    /// `pool:read`: list or read pools.
    PoolRead,
    /// `pool:write`: create, update or delete pools.
    PoolWrite,
    /// `template:read`: list or read templates.
    TemplateRead,
    /// `template:write`: create or delete templates.
    TemplateWrite,
    /// `metrics:write`: report metrics events.
    MetricsWrite,
    /// `system:health`: the health probe.
    SystemHealth,
    /// `system:version`: the version probe.
    SystemVersion,
    /// `audit:read`: query the audit trail (`GET /gatehouse/v1/audit`); non-admins see
    /// their team's events only.
    AuditRead,
    /// `apikey:manage`: create, list and revoke one's own personal API keys
    /// (`/gatehouse/v1/keys`).
    ApiKeyManage,
    /// `binding:read`: list RBAC bindings (`GET /gatehouse/v1/bindings`).
    BindingRead,
    /// `binding:write`: create, change or delete RBAC bindings.
    BindingWrite,
    /// `events:read`: follow the lifecycle event stream (`GET /gatehouse/v1/events`);
    /// scoped callers receive their scope's events only.
    EventsRead,
    /// `quota:read`: one's own quotas and use (`GET /gatehouse/v1/quotas`).
    QuotaRead,
    /// `quota:write`: set or remove a team's quota override
    /// (`/gatehouse/v1/quotas/teams/{team}`).
    QuotaWrite,
}

/// What an action's route points at, which decides how the gateway scopes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// No resource: health and version. Needs no identity.
    Public,
    /// The sandbox collection (list): the gateway filters it to the caller's scope.
    Collection,
    /// Sandbox creation: the gateway stamps the caller's scope into the new sandbox.
    Create,
    /// One sandbox: the route carries `{sandboxId}`, checked against the caller's scope.
    Sandbox,
    /// Snapshots by id, pools, templates, metrics: no sandbox to scope against.
    Unscoped,
    /// A gateway-owned endpoint (under `/gatehouse/v1`): the gateway answers it itself
    /// once the table allows the action; it is never forwarded to the backend.
    Gateway,
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 31] = [
        Action::SandboxList,
        Action::SandboxCreate,
        Action::SandboxRead,
        Action::SandboxDelete,
        Action::SandboxPause,
        Action::SandboxResume,
        Action::SandboxRenew,
        Action::SandboxEndpoint,
        Action::SandboxMetadata,
        Action::SandboxProxy,
        Action::SandboxSnapshot,
        Action::SandboxDiagnostics,
        Action::SandboxNetworkPolicyRead,
        Action::SandboxNetworkPolicyWrite,
        Action::SnapshotList,
        Action::SnapshotRead,
        Action::SnapshotDelete,
        Action::PoolRead,
        Action::PoolWrite,
        Action::TemplateRead,
        Action::TemplateWrite,
        Action::MetricsWrite,
        Action::SystemHealth,
        Action::SystemVersion,
        Action::AuditRead,
        Action::ApiKeyManage,
        Action::BindingRead,
        Action::BindingWrite,
        Action::EventsRead,
        Action::QuotaRead,
        Action::QuotaWrite,
    ];

    /// The action's name as written in the role table, e.g. `"sandbox:read"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::SandboxList => "sandbox:list",
            Action::SandboxCreate => "sandbox:create",
            Action::SandboxRead => "sandbox:read",
            Action::SandboxDelete => "sandbox:delete",
            Action::SandboxPause => "sandbox:pause",
            Action::SandboxResume => "sandbox:resume",
            Action::SandboxRenew => "sandbox:renew",
            Action::SandboxEndpoint => "sandbox:endpoint",
            Action::SandboxMetadata => "sandbox:metadata",
            Action::SandboxProxy => "sandbox:proxy",
            Action::SandboxSnapshot => "sandbox:snapshot",
            Action::SandboxDiagnostics => "sandbox:diagnostics",
            Action::SandboxNetworkPolicyRead => "sandbox:networkpolicy:read",
            Action::SandboxNetworkPolicyWrite => "sandbox:networkpolicy:write",
            Action::SnapshotList => "snapshot:list",
            Action::SnapshotRead => "snapshot:read",
            Action::SnapshotDelete => "snapshot:delete",
            Action::PoolRead => "pool:read",
            Action::PoolWrite => "pool:write",
            Action::TemplateRead => "template:read",
            Action::TemplateWrite => "template:write",
            Action::MetricsWrite => "metrics:write",
            Action::SystemHealth => "system:health",
            Action::SystemVersion => "system:version",
            Action::AuditRead => "audit:read",
            Action::ApiKeyManage => "apikey:manage",
            Action::BindingRead => "binding:read",
            Action::BindingWrite => "binding:write",
            Action::EventsRead => "events:read",
            Action::QuotaRead => "quota:read",
            Action::QuotaWrite => "quota:write",
        }
    }

    /// True when the action changes state (the audit log records these).
    ///
    /// `sandbox:proxy` is not a mutation: the gateway cannot know what the proxied
    /// application does with a request.
    pub const fn is_mutation(self) -> bool {
        matches!(
            self,
            Action::SandboxCreate
                | Action::SandboxDelete
                | Action::SandboxPause
                | Action::SandboxResume
                | Action::SandboxRenew
                | Action::SandboxMetadata
                | Action::SandboxSnapshot
                | Action::SandboxNetworkPolicyWrite
                | Action::SnapshotDelete
                | Action::PoolWrite
                | Action::TemplateWrite
                | Action::MetricsWrite
        )
    }

    /// What the action's routes point at.
    pub const fn target(self) -> Target {
        match self {
            Action::SystemHealth | Action::SystemVersion => Target::Public,
            Action::SandboxList => Target::Collection,
            Action::SandboxCreate => Target::Create,
            Action::SandboxRead
            | Action::SandboxDelete
            | Action::SandboxPause
            | Action::SandboxResume
            | Action::SandboxRenew
            | Action::SandboxEndpoint
            | Action::SandboxMetadata
            | Action::SandboxProxy
            | Action::SandboxSnapshot
            | Action::SandboxDiagnostics
            | Action::SandboxNetworkPolicyRead
            | Action::SandboxNetworkPolicyWrite => Target::Sandbox,
            Action::SnapshotList
            | Action::SnapshotRead
            | Action::SnapshotDelete
            | Action::PoolRead
            | Action::PoolWrite
            | Action::TemplateRead
            | Action::TemplateWrite
            | Action::MetricsWrite => Target::Unscoped,
            Action::AuditRead
            | Action::ApiKeyManage
            | Action::BindingRead
            | Action::BindingWrite
            | Action::EventsRead
            | Action::QuotaRead
            | Action::QuotaWrite => Target::Gateway,
        }
    }

    /// The bit of this action in an [`crate::table::ActionSet`].
    pub(crate) const fn bit(self) -> u64 {
        1 << (self as u64)
    }
}

/// The error of [`Action::from_str`]: the name is not an action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action '{0}'")]
pub struct UnknownAction(pub String);

impl FromStr for Action {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAction(s.to_owned()))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>(), Ok(a));
            assert_eq!(a.to_string(), a.as_str());
        }
        assert_eq!(
            "sandbox:explode".parse::<Action>(),
            Err(UnknownAction("sandbox:explode".into()))
        );
    }

    #[test]
    fn all_is_complete_and_bits_are_distinct() {
        let mut seen = 0u64;
        for (i, a) in Action::ALL.into_iter().enumerate() {
            assert_eq!(a as usize, i, "ALL must follow declaration order");
            assert_eq!(seen & a.bit(), 0);
            seen |= a.bit();
        }
    }

    #[test]
    fn serde_uses_names() {
        let json = serde_json::to_string(&Action::SandboxNetworkPolicyRead).unwrap();
        assert_eq!(json, "\"sandbox:networkpolicy:read\"");
        let back: Action = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Action::SandboxNetworkPolicyRead);
        assert!(serde_json::from_str::<Action>("\"nope\"").is_err());
    }

    #[test]
    fn mutations_and_targets() {
        assert!(Action::SandboxCreate.is_mutation());
        assert!(Action::MetricsWrite.is_mutation());
        assert!(!Action::SandboxProxy.is_mutation());
        assert!(!Action::SandboxRead.is_mutation());
        assert!(!Action::SandboxNetworkPolicyRead.is_mutation());
        assert_eq!(Action::SystemHealth.target(), Target::Public);
        assert_eq!(Action::SandboxList.target(), Target::Collection);
        assert_eq!(Action::SandboxCreate.target(), Target::Create);
        assert_eq!(Action::SandboxProxy.target(), Target::Sandbox);
        assert_eq!(Action::SnapshotRead.target(), Target::Unscoped);
        assert_eq!(Action::AuditRead.target(), Target::Gateway);
        assert!(
            !Action::BindingWrite.is_mutation(),
            "the handlers audit their own changes"
        );
    }
}
