//! OpenTelemetry: spans exported over OTLP/HTTP (JSON), and W3C trace context carried in
//! `traceparent` headers. Off unless an endpoint is configured; while off, [`inject`] and
//! [`set_parent`] return at once.

use crate::TelemetryError;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::registry::LookupSpan;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Flushes and shuts the exporter down when dropped.
pub struct OtlpGuard {
    provider: SdkTracerProvider,
}

impl Drop for OtlpGuard {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("telemetry: flushing spans failed: {e}");
        }
    }
}

/// The layer that turns `tracing` spans into OpenTelemetry spans.
pub(crate) fn layer<S>(
    service_name: &'static str,
    endpoint: &str,
) -> Result<
    (
        tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
        OtlpGuard,
    ),
    TelemetryError,
>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(url)
        .with_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| TelemetryError::Otlp(e.to_string()))?;
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_millis(500))
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(Resource::builder().with_service_name(service_name).build())
        .build();
    let tracer = provider.tracer(service_name);
    ENABLED.store(true, Ordering::Release);
    Ok((
        tracing_opentelemetry::layer().with_tracer(tracer),
        OtlpGuard { provider },
    ))
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut http::HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Whether spans are exported (an OTLP endpoint is configured). Callers open their
/// fine-grained spans at `info` only then, and at `debug` otherwise, where the default
/// filter disables them at no cost.
pub fn exporting() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Makes the trace context in `headers` (`traceparent`, `tracestate`) the parent of
/// `span`, so this process's spans join the caller's trace.
pub fn set_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    if !ENABLED.load(Ordering::Acquire) || !headers.contains_key("traceparent") {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&Headers(headers));
    let _ = span.set_parent(cx);
}

/// Writes `span`'s trace context into `headers` as `traceparent` (replacing the caller's),
/// so the next hop's spans become its children.
pub fn inject(span: &tracing::Span, headers: &mut http::HeaderMap) {
    if !ENABLED.load(Ordering::Acquire) {
        return;
    }
    let cx = span.context();
    TraceContextPropagator::new().inject_context(&cx, &mut HeadersMut(headers));
}
