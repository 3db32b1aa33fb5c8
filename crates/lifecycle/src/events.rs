//! Lifecycle events: what the backend's extension feed (`GET /gatehouse/ext/v1/events`,
//! Server-Sent Events) publishes and the gateway re-publishes, scoped, to its clients
//! (`GET /gatehouse/v1/events`).

use crate::model::{SandboxState, StringMap};
use serde::{Deserialize, Serialize};

/// The path of the backend's event feed (an extension; the upstream server has none).
pub const FEED_PATH: &str = "/gatehouse/ext/v1/events";

/// What happened to a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A sandbox was created (or adopted from the engine).
    Created,
    /// It is running (after a create or a restart).
    Running,
    /// It failed; the reason says why.
    Failed,
    /// It was paused.
    Paused,
    /// It was resumed.
    Resumed,
    /// Its expiry was renewed.
    Renewed,
    /// Its process ended on its own (exit code 0).
    Stopped,
    /// It expired and was deleted.
    Expired,
    /// It was deleted (or vanished from the engine).
    Deleted,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 9] = [
        EventKind::Created,
        EventKind::Running,
        EventKind::Failed,
        EventKind::Paused,
        EventKind::Resumed,
        EventKind::Renewed,
        EventKind::Stopped,
        EventKind::Expired,
        EventKind::Deleted,
    ];

    /// The name on the wire, e.g. `created`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Running => "running",
            EventKind::Failed => "failed",
            EventKind::Paused => "paused",
            EventKind::Resumed => "resumed",
            EventKind::Renewed => "renewed",
            EventKind::Stopped => "stopped",
            EventKind::Expired => "expired",
            EventKind::Deleted => "deleted",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The bit of this kind in a filter mask.
    pub const fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// The event a status change from `prev` to `now` means, if any. Transitional states
    /// (`Pending`, `Pausing`, `Resuming`, `Stopping`) and `Unknown` publish nothing.
    pub fn for_transition(prev: Option<SandboxState>, now: SandboxState) -> Option<Self> {
        if prev == Some(now) {
            return None;
        }
        match now {
            SandboxState::Running => Some(
                if matches!(
                    prev,
                    Some(SandboxState::Paused | SandboxState::Resuming | SandboxState::Pausing)
                ) {
                    EventKind::Resumed
                } else {
                    EventKind::Running
                },
            ),
            SandboxState::Paused => Some(EventKind::Paused),
            SandboxState::Failed => Some(EventKind::Failed),
            SandboxState::Terminated => Some(EventKind::Stopped),
            _ => None,
        }
    }
}

/// One event of the backend's feed (the `data:` line, JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedEvent {
    /// `{boot}-{seq}`, also the SSE `id:`.
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The sandbox.
    pub sandbox_id: String,
    /// Its state after the event (absent once deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<SandboxState>,
    /// Machine-readable reason, e.g. `CONTAINER_RUNNING`, `user_delete`, `ttl_expiry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it happened, RFC 3339.
    pub time: String,
    /// The sandbox's expiry after the event, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The sandbox's metadata (the gateway scopes events by its owner/team keys).
    #[serde(default)]
    pub metadata: StringMap,
    /// `X-Request-ID` of the API call that caused the event, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_map_to_events() {
        use SandboxState as S;
        let t = EventKind::for_transition;
        assert_eq!(t(None, S::Running), Some(EventKind::Running));
        assert_eq!(t(Some(S::Pending), S::Running), Some(EventKind::Running));
        assert_eq!(t(Some(S::Paused), S::Running), Some(EventKind::Resumed));
        assert_eq!(t(Some(S::Running), S::Running), None);
        assert_eq!(t(Some(S::Running), S::Pending), None);
        assert_eq!(t(Some(S::Running), S::Failed), Some(EventKind::Failed));
        assert_eq!(t(Some(S::Running), S::Terminated), Some(EventKind::Stopped));
    }

    #[test]
    fn names_round_trip_and_bits_are_distinct() {
        let mut seen = 0u16;
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            assert_eq!(seen & k.bit(), 0);
            seen |= k.bit();
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert_eq!(EventKind::parse("exploded"), None);
    }
}
