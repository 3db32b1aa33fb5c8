//! The audit event: one JSON object per audited request.
//!
//! **What cannot be recorded.** [`AuditEvent`] and [`AuditPrincipal`] have no field that
//! could hold a header, a cookie, a token, an API key or a body: only identities (subject,
//! team, role, key *name*), the action, the sandbox id, the method, the path and the
//! outcome. `path` is serialized without its query string or fragment, even if a caller
//! passes one. Keeping secrets out of the audit trail is therefore a property of the type,
//! checked by the compiler, not a convention of the callers.

use serde::{Deserialize, Serialize, Serializer};

/// How an audited request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Authorized and forwarded; the backend succeeded.
    Allowed,
    /// Refused by the gateway (401/403/400 from authentication, policy or scope).
    Denied,
    /// Authorized, but the backend or the gateway failed.
    Error,
}

impl Outcome {
    /// `allowed`, `denied` or `error`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }
}

/// Who made the request, as the audit trail records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPrincipal {
    /// `backend-key`, `key:<name>`, a user name, or `anonymous`.
    pub subject: String,
    /// The caller's team.
    pub team: Option<String>,
    /// The resolved role.
    pub role: Option<String>,
    /// `backend_key`, `api_key`, `trusted_header`, `session`, `bearer`, `sandbox_token`,
    /// `service_account` or `none`.
    pub auth_method: String,
    /// The API key's name (never the key); for a platform controller authenticated by
    /// ServiceAccount token, the controller's name.
    pub key_name: Option<String>,
}

/// The tenant a platform controller acted for: on a create, the team and owner it
/// asserted, as named; on later calls on that sandbox, the sandbox's scope tokens
/// (`team-a.4kq...`, the readable name first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnBehalfOf {
    /// The tenant's team.
    pub team: Option<String>,
    /// The tenant's owner.
    pub owner: Option<String>,
}

/// One audited request (every mutation and every denial).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// The event's unique id (a UUID): the durable store inserts each id once, so a
    /// replayed event is never duplicated. Empty in events written before ids existed.
    #[serde(default)]
    pub id: String,
    /// When the request ended, RFC 3339 UTC (see [`rfc3339_now`]).
    pub time: String,
    /// The request's `X-Request-ID`.
    pub request_id: String,
    /// Who made it.
    pub principal: AuditPrincipal,
    /// The authorized action, e.g. `sandbox.create`.
    pub action: Option<String>,
    /// The sandbox concerned.
    pub sandbox_id: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Request path; serialized without any query string or fragment.
    #[serde(serialize_with = "serialize_path")]
    pub path: String,
    /// Response status (0 when none was sent).
    pub status: u16,
    /// How it ended.
    pub outcome: Outcome,
    /// Denial or error code, e.g. `GATEWAY::FORBIDDEN`.
    pub reason: Option<String>,
    /// Time spent, milliseconds.
    pub duration_ms: f64,
    /// Client address.
    pub peer: Option<String>,
    /// For a platform controller's request, the tenant it acted for (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<OnBehalfOf>,
}

/// `path` up to (not including) the first `?` or `#`.
pub fn path_without_query(path: &str) -> &str {
    path.find(['?', '#']).map_or(path, |i| &path[..i])
}

fn serialize_path<S: Serializer>(path: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(path_without_query(path))
}

/// The current time as RFC 3339 UTC with milliseconds, e.g. `2026-03-05T10:00:00.123Z`.
pub fn rfc3339_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl AuditEvent {
    /// The event as one JSON line (no trailing newline).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

#[cfg(test)]
pub(crate) fn sample(n: usize) -> AuditEvent {
    AuditEvent {
        id: format!("00000000-0000-4000-8000-{n:012}"),
        time: rfc3339_now(),
        request_id: format!("req-{n}"),
        principal: AuditPrincipal {
            subject: "alice".into(),
            team: Some("team-a".into()),
            role: Some("operator".into()),
            auth_method: "trusted_header".into(),
            key_name: None,
        },
        action: Some("sandbox.create".into()),
        sandbox_id: Some(format!("sbx-{n}")),
        method: "POST".into(),
        path: "/v1/sandboxes".into(),
        status: 202,
        outcome: Outcome::Allowed,
        reason: None,
        duration_ms: 1.5,
        peer: Some("127.0.0.1".into()),
        on_behalf_of: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_the_documented_shape() {
        let mut e = sample(7);
        e.outcome = Outcome::Denied;
        e.reason = Some("GATEWAY::FORBIDDEN".into());
        let v: serde_json::Value = serde_json::from_str(&e.to_json().unwrap()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = vec![
            "id",
            "time",
            "request_id",
            "principal",
            "action",
            "sandbox_id",
            "method",
            "path",
            "status",
            "outcome",
            "reason",
            "duration_ms",
            "peer",
        ];
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(v["outcome"], "denied");
        assert_eq!(v["reason"], "GATEWAY::FORBIDDEN");
        assert_eq!(v["principal"]["auth_method"], "trusted_header");
        assert_eq!(v["principal"]["key_name"], serde_json::Value::Null);
        assert_eq!(v["status"], 202);
        let back: AuditEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn a_controllers_event_names_the_tenant() {
        let mut e = sample(2);
        e.principal.subject = "key:onboarding".into();
        e.on_behalf_of = Some(OnBehalfOf {
            team: Some("team-a".into()),
            owner: None,
        });
        let v: serde_json::Value = serde_json::from_str(&e.to_json().unwrap()).unwrap();
        assert_eq!(v["on_behalf_of"]["team"], "team-a");
        assert_eq!(v["principal"]["subject"], "key:onboarding");
        let back: AuditEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn query_strings_are_never_written() {
        let mut e = sample(1);
        e.path = "/v1/sandboxes?metadata=token%3Dabc&page=2".into();
        let line = e.to_json().unwrap();
        assert!(line.contains(r#""path":"/v1/sandboxes""#), "{line}");
        assert!(!line.contains("token"));
        assert_eq!(path_without_query("/a#frag"), "/a");
        assert_eq!(path_without_query("/a/b"), "/a/b");
    }

    #[test]
    fn outcomes() {
        for (o, s) in [
            (Outcome::Allowed, "allowed"),
            (Outcome::Denied, "denied"),
            (Outcome::Error, "error"),
        ] {
            assert_eq!(o.as_str(), s);
            assert_eq!(serde_json::to_string(&o).unwrap(), format!("\"{s}\""));
        }
    }

    #[test]
    fn time_is_rfc3339_utc() {
        let t = rfc3339_now();
        assert!(t.ends_with('Z'), "{t}");
        assert!(chrono::DateTime::parse_from_rfc3339(&t).is_ok());
    }
}
