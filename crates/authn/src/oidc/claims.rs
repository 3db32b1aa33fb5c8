//! Mapping token claims to an identity, with configurable claim names.

use crate::error::AuthError;
use serde_json::{Map, Value};

/// Who a token or login names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Subject.
    pub subject: String,
    /// Team, when the claim is present.
    pub team: Option<String>,
    /// Groups (for the role table's `group_roles`).
    pub groups: Vec<String>,
}

fn invalid(reason: &'static str) -> AuthError {
    AuthError::Rejected {
        code: "GATEWAY::INVALID_TOKEN",
        message: format!("The token's claims are unusable: {reason}."),
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control) => {
            Some(s.clone())
        }
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Extracts subject, team and groups from a claim set.
pub fn identity(
    claims: &Map<String, Value>,
    subject: &str,
    team: &str,
    groups: &str,
) -> Result<Identity, AuthError> {
    let subject = claims
        .get(subject)
        .and_then(text)
        .ok_or_else(|| invalid("no usable subject claim"))?;
    let team = claims.get(team).and_then(text);
    let groups = match claims.get(groups) {
        Some(Value::Array(a)) => a.iter().filter_map(text).collect(),
        Some(v) => text(v).map(|g| vec![g]).unwrap_or_default(),
        None => Vec::new(),
    };
    Ok(Identity {
        subject,
        team,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_configured_claims() {
        let c = json!({"sub": "u1", "preferred_username": "alice", "team": "team-a", "groups": ["g1", "g2", 3]});
        let id = identity(
            c.as_object().unwrap(),
            "preferred_username",
            "team",
            "groups",
        )
        .unwrap();
        assert_eq!(id.subject, "alice");
        assert_eq!(id.team.as_deref(), Some("team-a"));
        assert_eq!(id.groups, vec!["g1", "g2", "3"]);
        let c = json!({"team": "x"});
        assert!(identity(c.as_object().unwrap(), "sub", "team", "groups").is_err());
    }
}
