//! Logging and tracing for the Gatehouse binaries.
//!
//! One call, [`init`], installs the process-wide `tracing` subscriber: text or JSON lines on
//! stderr, filtered by `RUST_LOG` (else the binary's default directives). The per-request
//! access-log lines ([`ACCESS_LOG_TARGET`]) are written in batches ([`Batched`]); call
//! [`flush`] before the process exits. Fields use dotted
//! OpenTelemetry-style names (`request.id`, `http.method`, `http.status`,
//! `principal.subject`, `sandbox.id`) in both binaries, so one log query fits both.

mod batch;
mod otel;

pub use batch::{flush, Batched, ACCESS_LOG_TARGET, FLUSH_BYTES, FLUSH_INTERVAL};
pub use otel::{exporting, inject, set_parent, OtlpGuard};

use std::io::IsTerminal;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

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
    /// The OTLP exporter could not be built.
    #[error("telemetry.otlp_endpoint: {0}")]
    Otlp(String),
}

/// Installs the global subscriber. `default_directives` applies when `RUST_LOG` is unset or
/// invalid, e.g. `"info,sqlx=warn"`.
pub fn init(format: LogFormat, default_directives: &str) -> Result<(), TelemetryError> {
    init_traced(format, default_directives, "", None).map(|_| ())
}

/// Like [`init`], and with `otlp_endpoint` (an OTLP/HTTP base URL such as
/// `http://127.0.0.1:4318`) spans are exported as OTLP/HTTP JSON to
/// `{otlp_endpoint}/v1/traces` under `service_name`, and W3C `traceparent` headers are
/// read ([`set_parent`]) and written ([`inject`]). Keep the guard until exit: dropping it
/// flushes the spans not yet sent.
pub fn init_traced(
    format: LogFormat,
    default_directives: &str,
    service_name: &'static str,
    otlp_endpoint: Option<&str>,
) -> Result<Option<OtlpGuard>, TelemetryError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_directives));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(batch::process())
        .with_ansi(std::io::stderr().is_terminal());
    let fmt = match format {
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    let (otel, guard) = match otlp_endpoint {
        Some(endpoint) => {
            let (layer, guard) = otel::layer(service_name, endpoint)?;
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(fmt)
        .try_init()
        .map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))?;
    Ok(guard)
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
