//! The backend's Prometheus metrics: sandboxes by state (counted from the store when
//! scraped), create latency and engine errors. Served as `GET /metrics` on the admin
//! listener ([`crate::admin`]).
//!
//! The metrics live in one process-wide registry ([`metrics()`]) because the engine
//! wrapper that counts errors ([`crate::runtime::traced::Traced`]) is built before the
//! service and is generic over drivers.

use crate::store::Store;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::OnceLock;
use std::time::Duration;

/// The backend's metrics.
pub struct BackendMetrics {
    registry: Registry,
    sandboxes: IntGaugeVec,
    create_latency: Histogram,
    engine_errors: IntCounterVec,
}

static METRICS: OnceLock<Option<BackendMetrics>> = OnceLock::new();

/// The process's metrics (`None` only if registration failed, which is a programming
/// error logged once).
pub fn metrics() -> Option<&'static BackendMetrics> {
    METRICS
        .get_or_init(|| match BackendMetrics::new() {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(error = %e, "metrics could not be registered");
                None
            }
        })
        .as_ref()
}

impl BackendMetrics {
    fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let sandboxes = IntGaugeVec::new(
            Opts::new("gatehouse_backend_sandboxes", "Sandboxes by state."),
            &["state"],
        )?;
        registry.register(Box::new(sandboxes.clone()))?;
        let create_latency = Histogram::with_opts(
            HistogramOpts::new(
                "gatehouse_backend_create_seconds",
                "Time to answer a sandbox create (engine calls included).",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
        )?;
        registry.register(Box::new(create_latency.clone()))?;
        let engine_errors = IntCounterVec::new(
            Opts::new(
                "gatehouse_backend_engine_errors_total",
                "Failed engine (Docker or Kubernetes) calls by runtime and operation.",
            ),
            &["runtime", "op"],
        )?;
        registry.register(Box::new(engine_errors.clone()))?;
        Ok(Self {
            registry,
            sandboxes,
            create_latency,
            engine_errors,
        })
    }

    /// Records one create's duration.
    pub fn create_took(&self, d: Duration) {
        self.create_latency.observe(d.as_secs_f64());
    }

    /// Counts a failed engine call.
    pub fn engine_error(&self, runtime: &'static str, op: &'static str) {
        self.engine_errors.with_label_values(&[runtime, op]).inc();
    }

    /// The Prometheus text exposition, with sandbox counts read from `store` now.
    pub async fn render(&self, store: &Store) -> Vec<u8> {
        match store.all().await {
            Ok(records) => {
                self.sandboxes.reset();
                for r in &records {
                    self.sandboxes
                        .with_label_values(&[r.status.state.as_str()])
                        .inc();
                }
            }
            Err(e) => tracing::warn!(error = %e, "counting sandboxes for metrics failed"),
        }
        let mut out = Vec::with_capacity(8 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}
