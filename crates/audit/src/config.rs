//! [`SinkConfig`] (the `[audit]` section) and [`build`].
//!
//! The sink is chosen by a `sink` tag; the file sink also takes a `path`:
//!
//! ```toml
//! [audit]
//! sink = "stdout"
//! ```
//!
//! ```toml
//! [audit]
//! sink = "file"
//! path = "/var/log/gatehouse/audit.jsonl"
//! ```
//!
//! Without a `sink` key the sink is stdout. Unknown keys and `path` without
//! `sink = "file"` are rejected. The type may also be `#[serde(flatten)]`ed into a larger
//! section, including one with `deny_unknown_fields`.

use crate::error::AuditError;
use crate::sink::{AuditSink, FileSink, StdoutSink};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

/// Where audit events go. Defaults to [`SinkConfig::Stdout`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "RawSinkConfig")]
pub enum SinkConfig {
    /// `sink = "file"`: JSON lines appended to `path`.
    File {
        /// The audit file (created if missing; its directory must exist).
        path: PathBuf,
    },
    /// `sink = "stdout"` (or no `sink` key): JSON lines on standard output.
    #[default]
    Stdout,
}

/// The wire shape: a plain struct, so that flattening into a section with
/// `deny_unknown_fields` works (serde's tagged enums do not support that).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSinkConfig {
    #[serde(default)]
    sink: SinkKind,
    path: Option<PathBuf>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SinkKind {
    File,
    #[default]
    Stdout,
}

impl TryFrom<RawSinkConfig> for SinkConfig {
    type Error = &'static str;

    fn try_from(raw: RawSinkConfig) -> Result<Self, Self::Error> {
        match (raw.sink, raw.path) {
            (SinkKind::File, Some(path)) => Ok(SinkConfig::File { path }),
            (SinkKind::File, None) => Err("sink = \"file\" needs `path`"),
            (SinkKind::Stdout, None) => Ok(SinkConfig::Stdout),
            (SinkKind::Stdout, Some(_)) => Err("`path` needs sink = \"file\""),
        }
    }
}

/// Opens the configured sink. Must be called inside a Tokio runtime, which runs the writer
/// task and must outlive the sink.
pub fn build(cfg: &SinkConfig) -> Result<Arc<dyn AuditSink>, AuditError> {
    Ok(match cfg {
        SinkConfig::File { path } => Arc::new(FileSink::open(path)?),
        SinkConfig::Stdout => Arc::new(StdoutSink::new()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        audit: SinkConfig,
    }

    /// The gateway's `[audit]` section shape.
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Section {
        #[serde(flatten)]
        sink: SinkConfig,
    }

    fn parse(s: &str) -> Result<SinkConfig, String> {
        toml::from_str::<Doc>(s)
            .map(|d| d.audit)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn toml_shapes() {
        assert_eq!(
            parse("[audit]\nsink = \"stdout\"\n"),
            Ok(SinkConfig::Stdout)
        );
        assert_eq!(
            parse("[audit]\nsink = \"file\"\npath = \"/tmp/a.jsonl\"\n"),
            Ok(SinkConfig::File {
                path: "/tmp/a.jsonl".into()
            })
        );
        assert_eq!(SinkConfig::default(), SinkConfig::Stdout);
    }

    #[test]
    fn toml_errors() {
        assert!(parse("[audit]\nsink = \"file\"\n")
            .unwrap_err()
            .contains("path"));
        assert!(parse("[audit]\nsink = \"syslog\"\n")
            .unwrap_err()
            .contains("syslog"));
        assert!(
            parse("[audit]\nsink = \"file\"\npath = \"/a\"\npaht = \"/b\"\n")
                .unwrap_err()
                .contains("paht")
        );
        assert!(parse("[audit]\npath = \"/a\"\n")
            .unwrap_err()
            .contains("needs sink"));
        assert!(parse("[audit]\nsink = \"stdout\"\npath = \"/a\"\n").is_err());
        assert_eq!(parse("[audit]\n"), Ok(SinkConfig::Stdout));
    }

    #[test]
    fn flattened_into_a_section() {
        let s: Section = toml::from_str("sink = \"file\"\npath = \"/a\"\n").unwrap();
        assert_eq!(s.sink, SinkConfig::File { path: "/a".into() });
        let s: Section = toml::from_str("sink = \"stdout\"\n").unwrap();
        assert_eq!(s.sink, SinkConfig::Stdout);
        let s: Section = toml::from_str("").unwrap();
        assert_eq!(s.sink, SinkConfig::Stdout);
        let e =
            toml::from_str::<Section>("sink = \"file\"\npath = \"/a\"\npaht = 1\n").unwrap_err();
        assert!(e.to_string().contains("paht"), "{e}");
        let e = toml::from_str::<Section>("sink = \"file\"\n").unwrap_err();
        assert!(e.to_string().contains("needs `path`"), "{e}");
    }

    #[tokio::test]
    async fn builds_both_sinks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let sink = build(&SinkConfig::File { path: path.clone() }).unwrap();
        sink.record(crate::event::sample(1));
        assert_eq!(sink.dropped(), 0);
        assert!(path.exists());
        build(&SinkConfig::Stdout).unwrap();
        let bad = SinkConfig::File {
            path: dir.path().join("no/such/dir.jsonl"),
        };
        assert!(build(&bad).is_err());
    }
}
