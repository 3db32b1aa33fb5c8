//! [`Metrics`]: the gateway's Prometheus metrics, served on the admin listener
//! ([`crate::admin`]) as `GET /metrics`.
//!
//! The hot path only touches counters resolved at start-up: the request counter is a
//! table indexed by (action, status class, outcome), so recording a request is a few
//! atomic adds with no label hashing or allocation. Gauges that are cheap to read at
//! scrape time (live sessions, the audit queue) are sampled by [`Metrics::render`].

use gatehouse_authz::Action;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Status classes, in index order.
const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];
/// Outcomes, in index order (see [`Outcome`]).
const OUTCOMES: [&str; 4] = ["forwarded", "answered", "denied", "failed"];
/// Action label for requests without one (the gateway's own routes, unknown routes,
/// refusals before authorization).
const NO_ACTION: &str = "none";

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded to the backend and answered by it.
    Forwarded = 0,
    /// Answered by the gateway itself (its own routes, CORS preflights).
    Answered = 1,
    /// Refused by the gateway (authentication, authorization, scope, CSRF, bad path).
    Denied = 2,
    /// The backend could not be reached or the response broke off.
    Failed = 3,
}

/// A gauge read when `/metrics` is scraped.
pub type GaugeSource = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Gauges whose values live elsewhere and are read at scrape time.
///
/// The governance store's durable audit sets its getters here: `audit_queue_depth`
/// (events accepted, not yet written) and `audit_spool_depth` (events spooled to disk
/// while the store is down). Unset sources report 0.
#[derive(Default)]
pub struct ScrapeGauges {
    /// Live OIDC sessions.
    pub live_sessions: OnceLock<GaugeSource>,
    /// Audit events queued in memory, not yet written.
    pub audit_queue_depth: OnceLock<GaugeSource>,
    /// Audit events spooled while their store is unavailable.
    pub audit_spool_depth: OnceLock<GaugeSource>,
    /// 1 while the RBAC bindings in memory are current, 0 while the store cannot be read.
    pub bindings_fresh: OnceLock<GaugeSource>,
    /// Seconds since the store last confirmed the bindings in memory (-1: never).
    pub bindings_age_seconds: OnceLock<GaugeSource>,
}

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    /// `[action][status class][outcome]`, action `Action::ALL.len()` meaning none.
    requests: Vec<IntCounter>,
    gateway_latency: Histogram,
    auth_failures: IntCounterVec,
    upstream_errors: IntCounterVec,
    scope_cache_hits: IntCounter,
    scope_cache_misses: IntCounter,
    live_sessions: IntGauge,
    audit_queue_depth: IntGauge,
    audit_spool_depth: IntGauge,
    bindings_fresh: IntGauge,
    bindings_age_seconds: IntGauge,
    idp_ready: IntGauge,
    /// Scrape-time gauge sources.
    pub gauges: ScrapeGauges,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// A metric could not be registered (a duplicate name: a programming error).
#[derive(Debug, thiserror::Error)]
#[error("registering metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

fn action_index(action: Option<Action>) -> usize {
    match action {
        Some(a) => Action::ALL
            .iter()
            .position(|x| *x == a)
            .unwrap_or(Action::ALL.len()),
        None => Action::ALL.len(),
    }
}

fn status_index(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        500..=599 => 4,
        _ => 5,
    }
}

impl Metrics {
    /// Registers every metric and resolves every label set the hot path uses.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let requests_vec = IntCounterVec::new(
            Opts::new(
                "gatehouse_requests_total",
                "Requests by action, status class and outcome.",
            ),
            &["action", "status", "outcome"],
        )?;
        registry.register(Box::new(requests_vec.clone()))?;
        let mut requests =
            Vec::with_capacity((Action::ALL.len() + 1) * STATUS_CLASSES.len() * OUTCOMES.len());
        let names = Action::ALL
            .iter()
            .map(|a| a.as_str())
            .chain(std::iter::once(NO_ACTION));
        for action in names {
            for class in STATUS_CLASSES {
                for outcome in OUTCOMES {
                    requests.push(requests_vec.with_label_values(&[action, class, outcome]));
                }
            }
        }
        let gateway_latency = Histogram::with_opts(
            HistogramOpts::new(
                "gatehouse_gateway_added_seconds",
                "Time the gateway adds to a request: until the response head, minus the \
                 backend's own time to answer.",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0,
            ]),
        )?;
        registry.register(Box::new(gateway_latency.clone()))?;
        let auth_failures = IntCounterVec::new(
            Opts::new(
                "gatehouse_auth_failures_total",
                "Rejected credentials by authentication method and reason (error code).",
            ),
            &["method", "reason"],
        )?;
        registry.register(Box::new(auth_failures.clone()))?;
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "gatehouse_upstream_errors_total",
                "Forwarded requests the backend did not answer, by kind.",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(upstream_errors.clone()))?;
        let scope_cache = IntCounterVec::new(
            Opts::new(
                "gatehouse_scope_cache_lookups_total",
                "Sandbox scope lookups by cache result.",
            ),
            &["result"],
        )?;
        registry.register(Box::new(scope_cache.clone()))?;
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let live_sessions = gauge("gatehouse_live_sessions", "Live OIDC sessions.")?;
        let audit_queue_depth = gauge(
            "gatehouse_audit_queue_depth",
            "Audit events accepted and not yet written.",
        )?;
        let audit_spool_depth = gauge(
            "gatehouse_audit_spool_depth",
            "Audit events spooled while their store is unavailable.",
        )?;
        let bindings_fresh = gauge(
            "gatehouse_bindings_fresh",
            "1 while the RBAC bindings in memory are current; 0 while the governance store \
             cannot be read (the last bindings read still apply: fail static).",
        )?;
        let bindings_age_seconds = gauge(
            "gatehouse_bindings_age_seconds",
            "Seconds since the governance store last confirmed the RBAC bindings in memory \
             (-1 before the first read).",
        )?;
        let idp_ready = gauge(
            "gatehouse_idp_ready",
            "1 once OpenID provider discovery succeeded (0 when not configured or not yet).",
        )?;
        Ok(Self {
            requests,
            gateway_latency,
            auth_failures,
            upstream_errors: upstream_errors.clone(),
            scope_cache_hits: scope_cache.with_label_values(&["hit"]),
            scope_cache_misses: scope_cache.with_label_values(&["miss"]),
            live_sessions,
            audit_queue_depth,
            audit_spool_depth,
            bindings_fresh,
            bindings_age_seconds,
            idp_ready,
            registry,
            gauges: ScrapeGauges::default(),
        })
    }

    /// Counts one finished request.
    pub fn request(&self, action: Option<Action>, status: u16, outcome: Outcome) {
        let i = (action_index(action) * STATUS_CLASSES.len() + status_index(status))
            * OUTCOMES.len()
            + outcome as usize;
        if let Some(c) = self.requests.get(i) {
            c.inc();
        }
    }

    /// Records the time the gateway added to one request.
    pub fn gateway_added(&self, d: Duration) {
        self.gateway_latency.observe(d.as_secs_f64());
    }

    /// Counts a rejected credential. Both labels come from fixed sets (`&'static str`).
    pub fn auth_failure(&self, method: &'static str, reason: &'static str) {
        self.auth_failures
            .with_label_values(&[method, reason])
            .inc();
    }

    /// Counts a backend failure of kind `kind` (a fixed set: `connect`, `timeout`, ...).
    pub fn upstream_error(&self, kind: &'static str) {
        self.upstream_errors.with_label_values(&[kind]).inc();
    }

    /// Counts a scope-cache lookup.
    pub fn scope_cache(&self, hit: bool) {
        if hit {
            self.scope_cache_hits.inc();
        } else {
            self.scope_cache_misses.inc();
        }
    }

    /// Marks OpenID provider discovery as done.
    pub fn set_idp_ready(&self, ready: bool) {
        self.idp_ready.set(i64::from(ready));
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let read = |s: &OnceLock<GaugeSource>| s.get().map_or(0, |f| f());
        self.live_sessions.set(read(&self.gauges.live_sessions));
        self.audit_queue_depth
            .set(read(&self.gauges.audit_queue_depth));
        self.audit_spool_depth
            .set(read(&self.gauges.audit_spool_depth));
        self.bindings_fresh.set(read(&self.gauges.bindings_fresh));
        self.bindings_age_seconds
            .set(read(&self.gauges.bindings_age_seconds));
        let mut out = Vec::with_capacity(16 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_moves_exactly_its_own_series() {
        let m = Metrics::new().unwrap();
        m.request(Some(Action::SandboxList), 200, Outcome::Forwarded);
        m.request(None, 404, Outcome::Denied);
        m.request(None, 404, Outcome::Denied);
        m.auth_failure("api_key", "INVALID_API_KEY");
        m.scope_cache(true);
        let text = String::from_utf8(m.render()).unwrap();
        assert!(text.contains(
            r#"gatehouse_requests_total{action="sandbox:list",outcome="forwarded",status="2xx"} 1"#
        ));
        assert!(text.contains(
            r#"gatehouse_requests_total{action="none",outcome="denied",status="4xx"} 2"#
        ));
        assert!(text.contains(
            r#"gatehouse_auth_failures_total{method="api_key",reason="INVALID_API_KEY"} 1"#
        ));
        assert!(text.contains(r#"gatehouse_scope_cache_lookups_total{result="hit"} 1"#));
        assert!(text.contains("gatehouse_audit_queue_depth 0"));
    }

    /// The hot-path cost: counting a request and observing its latency. Prints ns per
    /// request (`cargo test --release -p gatehouse --lib metrics -- --nocapture`).
    #[test]
    fn counting_a_request_is_cheap() {
        let m = Metrics::new().unwrap();
        let n = 200_000u32;
        let started = std::time::Instant::now();
        for i in 0..n {
            m.request(
                Some(Action::ALL[(i % 24) as usize]),
                200,
                Outcome::Forwarded,
            );
            m.gateway_added(Duration::from_micros(u64::from(i % 50)));
        }
        let per = started.elapsed() / n;
        println!("metrics per request: {per:?}");
        assert!(per < Duration::from_micros(5), "{per:?}");
    }

    #[test]
    fn scrape_gauges_are_read_when_rendered() {
        let m = Metrics::new().unwrap();
        let _ = m.gauges.audit_spool_depth.set(Arc::new(|| 7));
        let _ = m.gauges.bindings_fresh.set(Arc::new(|| 1));
        let _ = m.gauges.bindings_age_seconds.set(Arc::new(|| 3));
        let text = String::from_utf8(m.render()).unwrap();
        assert!(text.contains("gatehouse_audit_spool_depth 7"));
        assert!(text.contains("gatehouse_bindings_fresh 1"));
        assert!(text.contains("gatehouse_bindings_age_seconds 3"));
    }
}
