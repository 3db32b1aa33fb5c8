//! `[events]`: the lifecycle event stream (`GET /gatehouse/v1/events`).

use serde::Deserialize;

/// Where events come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// The backend's feed when it has one (our backend), else the poll.
    #[default]
    Auto,
    /// Our backend's feed (`/gatehouse/ext/v1/events`) only.
    Backend,
    /// A poll of `GET /v1/sandboxes`, diffed (any server).
    Poll,
    /// No events: the route answers 404.
    Off,
}

/// `[events]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsSection {
    /// `auto` (default), `backend`, `poll` or `off`.
    pub source: EventSource,
    /// How long events are kept for `Last-Event-ID` resume, seconds (at least 600).
    pub retention_seconds: u64,
    /// Most events kept for resume (the oldest go first).
    pub max_events: usize,
    /// Seconds between heartbeat comments on an idle stream.
    pub heartbeat_seconds: u64,
    /// Events a client may have unsent before it is dropped as too slow (it reconnects
    /// with `Last-Event-ID` and loses nothing still kept).
    pub client_buffer: usize,
    /// Live events the hub's channel holds for the slowest client.
    pub channel_capacity: usize,
    /// Poll source: milliseconds between listings.
    pub poll_interval_ms: u64,
    /// Poll source: most pages of 100 sandboxes listed per poll.
    pub poll_max_pages: u32,
}

impl Default for EventsSection {
    fn default() -> Self {
        Self {
            source: EventSource::Auto,
            retention_seconds: 900,
            max_events: 20_000,
            heartbeat_seconds: 15,
            client_buffer: 256,
            channel_capacity: 1024,
            poll_interval_ms: 2000,
            poll_max_pages: 20,
        }
    }
}

impl EventsSection {
    /// Checks the values; the error names the dotted key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.retention_seconds < 600 {
            return Err((
                "events.retention_seconds",
                "must be at least 600 (clients may resume for ten minutes)".into(),
            ));
        }
        if !(100..=1_000_000).contains(&self.max_events) {
            return Err((
                "events.max_events",
                "must be between 100 and 1000000".into(),
            ));
        }
        if !(1..=300).contains(&self.heartbeat_seconds) {
            return Err((
                "events.heartbeat_seconds",
                "must be between 1 and 300".into(),
            ));
        }
        if !(8..=65_536).contains(&self.client_buffer) {
            return Err(("events.client_buffer", "must be between 8 and 65536".into()));
        }
        if !(16..=65_536).contains(&self.channel_capacity) {
            return Err((
                "events.channel_capacity",
                "must be between 16 and 65536".into(),
            ));
        }
        if self.poll_interval_ms < 200 {
            return Err(("events.poll_interval_ms", "must be at least 200".into()));
        }
        if !(1..=1000).contains(&self.poll_max_pages) {
            return Err(("events.poll_max_pages", "must be between 1 and 1000".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(EventsSection::default().validate().is_ok());
        let bad = |f: fn(&mut EventsSection)| {
            let mut c = EventsSection::default();
            f(&mut c);
            c.validate().unwrap_err().0
        };
        assert_eq!(
            bad(|c| c.retention_seconds = 60),
            "events.retention_seconds"
        );
        assert_eq!(bad(|c| c.poll_interval_ms = 10), "events.poll_interval_ms");
        assert_eq!(bad(|c| c.client_buffer = 0), "events.client_buffer");
        let e = toml::from_str::<EventsSection>("source = \"sometimes\"").unwrap_err();
        assert!(e.to_string().contains("sometimes"), "{e}");
    }
}
