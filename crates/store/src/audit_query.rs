//! [`AuditQuery`] (filters and keyset pagination) and [`AuditPage`].
//!
//! Pages are newest first, ordered by `(time, id)` descending; the [`Cursor`] is the
//! last row's `(time, id)`, opaque to clients (URL-safe base64).

use gatehouse_audit::{AuditEvent, Outcome};

/// The largest page a query may ask for.
pub const MAX_PAGE: u32 = 1000;
/// The page size when none is asked for.
pub const DEFAULT_PAGE: u32 = 100;

/// Filters and the page to read. Every filter is an exact match, bound as a parameter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    /// `principal.subject`.
    pub actor: Option<String>,
    /// `principal.team`.
    pub team: Option<String>,
    /// The sandbox id.
    pub sandbox_id: Option<String>,
    /// The action, e.g. `sandbox.create`.
    pub action: Option<String>,
    /// The outcome.
    pub outcome: Option<Outcome>,
    /// Events at or after this time (Unix milliseconds).
    pub since_ms: Option<i64>,
    /// Events before this time (Unix milliseconds).
    pub until_ms: Option<i64>,
    /// Page size, 1..=[`MAX_PAGE`].
    pub limit: u32,
    /// Continue after this row (from [`AuditPage::next`]).
    pub after: Option<Cursor>,
}

impl AuditQuery {
    /// A query for everything, newest first, [`DEFAULT_PAGE`] rows.
    pub fn all() -> Self {
        Self {
            limit: DEFAULT_PAGE,
            ..Self::default()
        }
    }
}

/// Where a page ends: the last row's time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Unix milliseconds.
    pub at_ms: i64,
    /// Event id.
    pub id: String,
}

impl Cursor {
    /// The opaque form handed to clients.
    pub fn encode(&self) -> String {
        data_encoding::BASE64URL_NOPAD.encode(format!("{}.{}", self.at_ms, self.id).as_bytes())
    }

    /// Parses [`Cursor::encode`]'s output; `None` for anything else.
    pub fn decode(s: &str) -> Option<Cursor> {
        let raw = data_encoding::BASE64URL_NOPAD.decode(s.as_bytes()).ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (at, id) = raw.split_once('.')?;
        if id.is_empty() || id.len() > 64 {
            return None;
        }
        Some(Cursor {
            at_ms: at.parse().ok()?,
            id: id.to_string(),
        })
    }
}

/// One page of events.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    /// Newest first.
    pub events: Vec<AuditEvent>,
    /// Where the next page starts, when there may be one.
    pub next: Option<Cursor>,
}

/// An event's time as Unix milliseconds (0 when it does not parse).
pub fn event_ms(e: &AuditEvent) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&e.time)
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds.
pub fn ms_to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Parses `allowed`, `denied` or `error`.
pub fn parse_outcome(s: &str) -> Option<Outcome> {
    match s {
        "allowed" => Some(Outcome::Allowed),
        "denied" => Some(Outcome::Denied),
        "error" => Some(Outcome::Error),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            at_ms: 1_700_000_000_123,
            id: "0b0e2c1e-1111-4222-8333-944445555666".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in ["", "!!", "bm9wZQ", "MTIz", "YWJjLmRlZg"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(ms_to_rfc3339(1_000), "1970-01-01T00:00:01.000Z");
        assert_eq!(parse_outcome("denied"), Some(Outcome::Denied));
        assert_eq!(parse_outcome("x"), None);
    }
}
