//! The live sandboxes of a team or user, from the backend's own list (the quotas count
//! these, so the count is right on every replica and after deletes and expiry).

use crate::backend_client::{BackendClient, LookupError};
use gatehouse_scope::{query::scoped_list_query, Scope, ScopeKeys};

/// Pages read at most (200 sandboxes each).
const MAX_PAGES: u32 = 50;

/// States that no longer hold resources.
fn is_live(state: &str) -> bool {
    !matches!(state, "Terminated" | "Failed")
}

impl BackendClient {
    /// The live sandboxes in `scope` (its team, or its owner without a team): each id
    /// with its owner token.
    pub async fn live_sandboxes(
        &self,
        scope: &Scope,
        keys: &ScopeKeys,
        request_id: &str,
    ) -> Result<Vec<(String, Option<String>)>, LookupError> {
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let raw = format!("pageSize=200&page={page}");
            let query = scoped_list_query(Some(&raw), scope, keys);
            let (status, body) = self
                .get(&format!("/v1/sandboxes?{query}"), request_id)
                .await?;
            if status != 200 {
                return Err(LookupError(format!(
                    "backend answered {status} for a quota count"
                )));
            }
            let v: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| LookupError(e.to_string()))?;
            let items = v["items"].as_array().map(Vec::as_slice).unwrap_or_default();
            for item in items {
                let state = item["status"]["state"].as_str().unwrap_or_default();
                if let (Some(id), true) = (item["id"].as_str(), is_live(state)) {
                    let owner = item["metadata"][keys.owner.as_str()].as_str();
                    out.push((id.to_owned(), owner.map(str::to_owned)));
                }
            }
            if v["pagination"]["hasNextPage"].as_bool() != Some(true) {
                break;
            }
        }
        Ok(out)
    }
}
