//! `[replication]`: sessions in the store and the change-log follower.
//!
//! ```toml
//! [replication]
//! sessions = "store"        # "store" (the default: every replica sees every session) or "memory"
//! poll_ms = 500             # the follower reads the change log at least this often
//! retention_seconds = 600   # changes older than this are pruned from the log
//! ```

use serde::Deserialize;

/// Where login sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionPlacement {
    /// In the governance store, with this process's cache in front (any replica serves
    /// any session; sessions survive a restart).
    #[default]
    Store,
    /// In this process only (one gateway; a restart signs everyone out).
    Memory,
}

/// `[replication]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationSection {
    /// Where sessions live.
    pub sessions: SessionPlacement,
    /// Longest wait between two reads of the change log, milliseconds (PostgreSQL also
    /// wakes the follower at once on `NOTIFY`).
    pub poll_ms: u64,
    /// How long changes stay in the log, seconds. A replica cut off from the store for
    /// more than half of this drops all its caches when it is back.
    pub retention_seconds: u64,
}

impl Default for ReplicationSection {
    fn default() -> Self {
        Self {
            sessions: SessionPlacement::Store,
            poll_ms: 500,
            retention_seconds: 600,
        }
    }
}

impl ReplicationSection {
    /// Checks the section; the error names the bad key (`replication.…`).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(10..=1000).contains(&self.poll_ms) {
            return Err((
                "replication.poll_ms",
                "must be between 10 and 1000 (changes must reach every replica within a second)"
                    .into(),
            ));
        }
        if !(60..=7 * 86_400).contains(&self.retention_seconds) {
            return Err((
                "replication.retention_seconds",
                "must be between 60 and 604800".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        replication: ReplicationSection,
    }

    fn parse(s: &str) -> Result<ReplicationSection, String> {
        let d: Doc = toml::from_str(s).map_err(|e| e.to_string())?;
        d.replication
            .validate()
            .map_err(|(k, m)| format!("{k}: {m}"))?;
        Ok(d.replication)
    }

    #[test]
    fn defaults_and_errors_that_name_the_key() {
        let c = parse("[replication]\n").unwrap();
        assert_eq!(c, ReplicationSection::default());
        assert_eq!(c.sessions, SessionPlacement::Store);
        let c = parse("[replication]\nsessions = \"memory\"\n").unwrap();
        assert_eq!(c.sessions, SessionPlacement::Memory);
        assert!(parse("[replication]\nsessions = \"redis\"\n")
            .unwrap_err()
            .contains("redis"));
        assert!(parse("[replication]\npoll_ms = 5000\n")
            .unwrap_err()
            .contains("replication.poll_ms"));
        assert!(parse("[replication]\nretention_seconds = 1\n")
            .unwrap_err()
            .contains("replication.retention_seconds"));
        assert!(parse("[replication]\npoll = 1\n")
            .unwrap_err()
            .contains("poll"));
    }
}
