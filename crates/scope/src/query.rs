//! Scoping a list request: the caller's scope pair is added to the `metadata` filter, so
//! the backend filters and paginates over the caller's sandboxes only (correct
//! `totalItems`, no other team counted). The client's own filters keep working.

use crate::{Scope, ScopeKeys};

/// Rewrites a raw list query string. Any client value for a scope key is replaced by the
/// caller's own: a user cannot widen their view by filtering on another team.
pub fn scoped_list_query(raw: Option<&str>, scope: &Scope, keys: &ScopeKeys) -> String {
    let (scope_key, scope_value) = scope.filter_pair(keys);
    let mut outer = form_urlencoded::Serializer::new(String::new());
    let mut inner = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if k == "metadata" {
            for (ik, iv) in form_urlencoded::parse(v.as_bytes()) {
                if !keys.is_reserved(&ik) {
                    inner.append_pair(&ik, &iv);
                }
            }
        } else {
            outer.append_pair(&k, &v);
        }
    }
    inner.append_pair(scope_key, scope_value);
    outer.append_pair("metadata", &inner.finish());
    outer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScopeMode;
    use gatehouse_lifecycle::query::ListQuery;

    #[test]
    fn keeps_client_filters_and_forces_scope() {
        let keys = ScopeKeys::default();
        let s = Scope::for_principal("alice", Some("team-a"), ScopeMode::Team);
        let raw = "state=Running&metadata=project%3Dapollo%26access.team%3Dteam-b&pageSize=5";
        let q = scoped_list_query(Some(raw), &s, &keys);
        let parsed = ListQuery::parse(Some(&q)).unwrap();
        assert_eq!(parsed.states, vec!["running"]);
        assert_eq!(parsed.page_size, 5);
        assert_eq!(parsed.metadata.get("project").unwrap(), "apollo");
        assert_eq!(parsed.metadata.get("access.team"), s.team.as_ref());
        assert_eq!(parsed.metadata.len(), 2);
    }

    #[test]
    fn empty_query_gets_scope_only() {
        let keys = ScopeKeys::default();
        let s = Scope::for_principal("bob", None, ScopeMode::Team);
        let parsed = ListQuery::parse(Some(&scoped_list_query(None, &s, &keys))).unwrap();
        assert_eq!(parsed.metadata.get("access.owner"), Some(&s.owner));
    }
}
