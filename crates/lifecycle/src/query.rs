//! The list query of `GET /sandboxes`, parsed exactly as upstream parses it.
//!
//! - `state` may repeat; states are ORed and compared case-insensitively.
//! - `metadata` is ONE parameter whose value is itself a URL-encoded query string
//!   (`metadata=project%3DApollo%26env%3Dprod`): it is decoded once as part of the query
//!   and once more as a form, every pair must have `=`, and the keys are ANDed with exact
//!   value matches.
//! - `page` ≥ 1 (default 1) and `pageSize` 1..=200 (default 20).

use crate::error::{codes, ApiError};
use crate::model::{ListSandboxesResponse, Pagination, Sandbox, StringMap};

/// Largest accepted `pageSize`.
pub const MAX_PAGE_SIZE: u32 = 200;
/// `pageSize` when absent.
pub const DEFAULT_PAGE_SIZE: u32 = 20;

/// A parsed list query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Lowercased states to keep (empty: all).
    pub states: Vec<String>,
    /// Metadata pairs that must all match exactly.
    pub metadata: StringMap,
    /// Page number, from 1.
    pub page: u32,
    /// Items per page.
    pub page_size: u32,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            states: Vec::new(),
            metadata: StringMap::new(),
            page: 1,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

fn int_param(name: &str, value: &str, min: u32, max: u32) -> Result<u32, ApiError> {
    let parsed: Option<u32> = value.trim().parse().ok();
    match parsed {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(ApiError::invalid(format!(
            "Query parameter '{name}' must be an integer between {min} and {max}, got '{value}'."
        ))),
    }
}

/// Parses a boolean query parameter the way the API accepts it (`true/1/yes/on`,
/// `false/0/no/off/empty`, case-insensitive).
pub fn parse_bool(name: &str, raw: &str) -> Result<bool, ApiError> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(ApiError::invalid(format!(
            "Query parameter '{name}' must be a boolean, got '{raw}'."
        ))),
    }
}

/// Whether the raw query string sets boolean parameter `name` to true.
pub fn flag(raw: Option<&str>, name: &str) -> bool {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .any(|(k, v)| k == name && parse_bool(name, &v) == Ok(true))
}

/// Decodes the inner query string of the `metadata` parameter.
pub fn parse_metadata_filter(value: &str) -> Result<StringMap, ApiError> {
    let mut out = StringMap::new();
    if value.is_empty() {
        return Ok(out);
    }
    for segment in value.split(['&', ';']) {
        if !segment.contains('=') {
            return Err(ApiError::bad_request(
                codes::INVALID_METADATA_FORMAT,
                format!("Invalid metadata format: bad query field: '{segment}'"),
            ));
        }
    }
    for (k, v) in form_urlencoded::parse(value.as_bytes()) {
        out.insert(k.into_owned(), v.into_owned());
    }
    Ok(out)
}

impl ListQuery {
    /// Parses the raw (still URL-encoded) query string of a list request.
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut q = Self::default();
        let Some(raw) = raw else { return Ok(q) };
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            match key.as_ref() {
                "state" => {
                    // `state=Running,Paused` is accepted too, as some clients send it.
                    q.states.extend(
                        value
                            .split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_ascii_lowercase),
                    );
                }
                "metadata" => q.metadata.extend(parse_metadata_filter(&value)?),
                "page" => q.page = int_param("page", &value, 1, u32::MAX)?,
                "pageSize" | "page_size" => {
                    q.page_size = int_param("pageSize", &value, 1, MAX_PAGE_SIZE)?
                }
                _ => {}
            }
        }
        Ok(q)
    }

    /// Whether a sandbox passes the state and metadata filters.
    pub fn matches(&self, s: &Sandbox) -> bool {
        let state_ok = self.states.is_empty()
            || self
                .states
                .iter()
                .any(|st| s.status.state.as_str().eq_ignore_ascii_case(st));
        state_ok
            && self
                .metadata
                .iter()
                .all(|(k, v)| s.metadata.get(k) == Some(v))
    }

    /// Filters, orders newest first and cuts the requested page.
    pub fn apply(&self, mut all: Vec<Sandbox>) -> ListSandboxesResponse {
        all.retain(|s| self.matches(s));
        all.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        let pagination = Pagination::new(self.page, self.page_size, all.len() as u64);
        let window = pagination.window();
        let items = all.drain(window).collect();
        ListSandboxesResponse { items, pagination }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SandboxState, SandboxStatus};
    use proptest::prelude::*;

    fn sb(id: &str, state: SandboxState, secs: i64, md: &[(&str, &str)]) -> Sandbox {
        Sandbox {
            id: id.into(),
            image: None,
            platform: None,
            status: SandboxStatus {
                state,
                reason: None,
                message: None,
                last_transition_at: None,
            },
            metadata: md
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            entrypoint: vec!["sh".into()],
            extensions: None,
            expires_at: None,
            created_at: chrono::DateTime::from_timestamp(secs, 0).unwrap(),
        }
    }

    #[test]
    fn metadata_is_one_parameter_decoded_twice() {
        let q = ListQuery::parse(Some("metadata=project%3DApollo%26note%3DDemo%2520Test")).unwrap();
        assert_eq!(
            q.metadata.get("project").map(String::as_str),
            Some("Apollo")
        );
        assert_eq!(
            q.metadata.get("note").map(String::as_str),
            Some("Demo Test")
        );
    }

    #[test]
    fn malformed_metadata_is_rejected() {
        let e = ListQuery::parse(Some("metadata=a%3D1%26broken")).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_ref()),
            (400, codes::INVALID_METADATA_FORMAT)
        );
    }

    #[test]
    fn states_or_case_insensitive() {
        let q = ListQuery::parse(Some("state=running&state=PAUSED")).unwrap();
        assert!(q.matches(&sb("a", SandboxState::Running, 1, &[])));
        assert!(q.matches(&sb("b", SandboxState::Paused, 1, &[])));
        assert!(!q.matches(&sb("c", SandboxState::Pending, 1, &[])));
    }

    #[test]
    fn paging_bounds() {
        assert!(ListQuery::parse(Some("page=0")).is_err());
        assert!(ListQuery::parse(Some("pageSize=201")).is_err());
        assert!(ListQuery::parse(Some("pageSize=abc")).is_err());
        assert_eq!(
            ListQuery::parse(Some("pageSize=200")).unwrap().page_size,
            200
        );
    }

    #[test]
    fn apply_orders_newest_first_and_pages() {
        let q = ListQuery {
            page: 2,
            page_size: 2,
            ..Default::default()
        };
        let all = (0..5)
            .map(|i| sb(&format!("s{i}"), SandboxState::Running, i, &[]))
            .collect();
        let r = q.apply(all);
        let ids: Vec<_> = r.items.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["s2", "s1"]);
        assert_eq!(r.pagination.total_items, 5);
        assert!(r.pagination.has_next_page);
    }

    proptest! {
        #[test]
        fn parse_never_panics(raw in "\\PC{0,120}") {
            let _ = ListQuery::parse(Some(&raw));
        }

        #[test]
        fn pages_partition_the_result(n in 0usize..60, size in 1u32..12) {
            let all: Vec<_> = (0..n).map(|i| sb(&format!("s{i:03}"), SandboxState::Running, i as i64, &[])).collect();
            let mut seen = Vec::new();
            let mut page = 1;
            loop {
                let q = ListQuery { page, page_size: size, ..Default::default() };
                let r = q.apply(all.clone());
                prop_assert_eq!(r.pagination.total_items as usize, n);
                seen.extend(r.items.into_iter().map(|s| s.id));
                if !r.pagination.has_next_page { break; }
                page += 1;
            }
            prop_assert_eq!(seen.len(), n);
        }
    }
}
