//! Logging and tracing for the Gatehouse binaries.
//!
//! One call, [`init`], installs the process-wide `tracing` subscriber: text or JSON lines on
//! stderr, filtered by `RUST_LOG` (else the binary's default directives). Fields use dotted
//! OpenTelemetry-style names (`request.id`, `http.method`, `http.status`,
//! `principal.subject`, `sandbox.id`) in both binaries, so one log query fits both.

use std::io::IsTerminal;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colours only on a terminal).
    #[default]
    Text,
    /// One JSON object per line, fields flattened (for log shippers).
    Json,
}

/// Why the subscriber could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A subscriber is already installed (`init` was called twice).
    #[error("a tracing subscriber is already installed: {0}")]
    AlreadyInstalled(String),
}

/// Installs the global subscriber. `default_directives` applies when `RUST_LOG` is unset or
/// invalid, e.g. `"info,sqlx=warn"`.
pub fn init(format: LogFormat, default_directives: &str) -> Result<(), TelemetryError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_directives));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    installed.map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn log_format_names_are_the_documented_ones() {
        assert_eq!(LogFormat::from_str("text", true), Ok(LogFormat::Text));
        assert_eq!(LogFormat::from_str("json", true), Ok(LogFormat::Json));
        assert!(LogFormat::from_str("yaml", true).is_err());
    }
}
