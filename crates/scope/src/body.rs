//! Scoping request and response bodies: create injection, patch guard, list filter, and
//! reading a sandbox's scope. Bodies are parsed as JSON; anything else is refused.

use crate::{Scope, ScopeError, ScopeKeys};
use gatehouse_lifecycle::StringMap;
use serde_json::{Map, Value};

fn object(body: &[u8], what: &str) -> Result<Map<String, Value>, ScopeError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ScopeError::Malformed(format!(
            "{what} must be a JSON object"
        ))),
        Err(e) => Err(ScopeError::Malformed(format!(
            "{what} is not valid JSON: {e}"
        ))),
    }
}

/// Sets the reserved owner/team metadata of a create body from the caller's scope,
/// overwriting anything the client sent for those keys. Everything else is kept as sent.
pub fn inject_create(body: &[u8], scope: &Scope, keys: &ScopeKeys) -> Result<Vec<u8>, ScopeError> {
    let mut req = object(body, "the request body")?;
    inject_metadata(&mut req, scope, keys)?;
    serde_json::to_vec(&req).map_err(|e| ScopeError::Malformed(e.to_string()))
}

/// Sets the reserved metadata of a parsed create body (see [`inject_create`]): owner,
/// team, and the controller token when the scope has one (removed otherwise, so nobody
/// can claim a controller's).
pub fn inject_metadata(
    req: &mut Map<String, Value>,
    scope: &Scope,
    keys: &ScopeKeys,
) -> Result<(), ScopeError> {
    let md = req
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if md.is_null() {
        *md = Value::Object(Map::new());
    }
    let Value::Object(md) = md else {
        return Err(ScopeError::Malformed(
            "'metadata' must be an object of strings".into(),
        ));
    };
    md.insert(keys.owner.clone(), Value::String(scope.owner.clone()));
    match &scope.team {
        Some(t) => {
            md.insert(keys.team.clone(), Value::String(t.clone()));
        }
        None => {
            md.remove(&keys.team);
        }
    }
    match &scope.controller {
        Some(c) => md.insert(keys.controller.clone(), Value::String(c.clone())),
        None => md.remove(&keys.controller),
    };
    Ok(())
}

/// Refuses a metadata merge patch that sets or removes a reserved key.
pub fn check_patch(body: &[u8], keys: &ScopeKeys) -> Result<(), ScopeError> {
    let patch = object(body, "the metadata patch")?;
    match patch.keys().find(|k| keys.is_reserved(k)) {
        Some(k) => Err(ScopeError::Reserved(k.clone())),
        None => Ok(()),
    }
}

fn metadata_of(item: &Value) -> StringMap {
    item.get("metadata")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The metadata of one sandbox body (`GET /sandboxes/{id}`).
pub fn sandbox_metadata(body: &[u8]) -> Result<StringMap, ScopeError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| ScopeError::Malformed(e.to_string()))?;
    Ok(metadata_of(&v))
}

pub use crate::scan::{all_in_scope, sandbox_in_scope};

/// Drops list items outside the caller's scope (defence in depth: the backend already
/// filtered on the scope pair). Returns the body to send and how many items were dropped;
/// when some were, `totalItems` is reduced accordingly.
pub fn filter_list(
    body: &[u8],
    scope: &Scope,
    keys: &ScopeKeys,
) -> Result<(Vec<u8>, usize), ScopeError> {
    let mut v = object(body, "the list response")?;
    let Some(Value::Array(items)) = v.get_mut("items") else {
        return Err(ScopeError::Malformed(
            "the list response has no 'items' array".into(),
        ));
    };
    let before = items.len();
    items.retain(|item| scope.allows(&metadata_of(item), keys));
    let dropped = before - items.len();
    if dropped > 0 {
        if let Some(total) = v
            .get_mut("pagination")
            .and_then(|p| p.get_mut("totalItems"))
        {
            if let Some(n) = total.as_u64() {
                *total = Value::from(n.saturating_sub(dropped as u64));
            }
        }
    }
    let out = serde_json::to_vec(&v).map_err(|e| ScopeError::Malformed(e.to_string()))?;
    Ok((out, dropped))
}

/// The `id` of a create response body.
pub fn created_id(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("id").and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScopeMode;
    use serde_json::json;

    fn alice() -> Scope {
        Scope::for_principal("alice", Some("team-a"), ScopeMode::Team)
    }

    #[test]
    fn create_overwrites_client_scope_and_keeps_the_rest() {
        let keys = ScopeKeys::default();
        let body = json!({"image": {"uri": "x"}, "metadata": {"access.owner": "mallory", "access.team": "team-b", "access.controller": "x", "p": "1"}});
        let out: Value = serde_json::from_slice(
            &inject_create(body.to_string().as_bytes(), &alice(), &keys).unwrap(),
        )
        .unwrap();
        assert_eq!(out["metadata"]["access.owner"], alice().owner);
        assert_eq!(out["metadata"]["access.team"], alice().team.unwrap());
        assert_eq!(out["metadata"]["p"], "1");
        assert!(out["metadata"].get("access.controller").is_none());
        assert_eq!(out["image"]["uri"], "x");
        let loner = Scope::for_principal("dave", None, ScopeMode::Team);
        let out: Value = serde_json::from_slice(
            &inject_create(body.to_string().as_bytes(), &loner, &keys).unwrap(),
        )
        .unwrap();
        assert!(
            out["metadata"].get("access.team").is_none(),
            "a teamless principal cannot claim a team"
        );
    }

    #[test]
    fn create_without_metadata_and_malformed_bodies() {
        let keys = ScopeKeys::default();
        let out: Value = serde_json::from_slice(
            &inject_create(b"{\"metadata\":null}", &alice(), &keys).unwrap(),
        )
        .unwrap();
        assert_eq!(out["metadata"]["access.owner"], alice().owner);
        assert!(inject_create(b"{nope", &alice(), &keys).is_err());
        assert!(inject_create(b"[1]", &alice(), &keys).is_err());
        assert!(inject_create(b"{\"metadata\": \"x\"}", &alice(), &keys).is_err());
    }

    #[test]
    fn patches_cannot_touch_reserved_keys() {
        let keys = ScopeKeys::default();
        assert!(check_patch(b"{\"a\":\"b\",\"c\":null}", &keys).is_ok());
        assert_eq!(
            check_patch(b"{\"access.team\":null}", &keys),
            Err(ScopeError::Reserved("access.team".into()))
        );
        assert!(check_patch(b"{\"access.owner\":\"me\"}", &keys).is_err());
        assert!(check_patch(b"nope", &keys).is_err());
    }

    #[test]
    fn list_filter_drops_foreign_items_and_fixes_total() {
        let keys = ScopeKeys::default();
        let a = alice();
        let body = json!({
            "items": [
                {"id": "1", "metadata": {"access.team": a.team.clone().unwrap()}},
                {"id": "2", "metadata": {"access.team": "other"}},
                {"id": "3"}
            ],
            "pagination": {"page": 1, "pageSize": 20, "totalItems": 3, "totalPages": 1, "hasNextPage": false}
        });
        let (out, dropped) = filter_list(body.to_string().as_bytes(), &a, &keys).unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(dropped, 2);
        assert_eq!(out["items"].as_array().unwrap().len(), 1);
        assert_eq!(out["pagination"]["totalItems"], 1);
    }
}
