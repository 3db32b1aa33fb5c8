//! [`Traced`]: one span and one deadline around every runtime call, for every driver.

use async_trait::async_trait;
use gatehouse_lifecycle::runtime::Discovered;
use gatehouse_lifecycle::{Observed, Runtime, RuntimeError, SandboxSpec};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tracing::Instrument;

/// A driver wrapped so that each call runs in a `runtime.call` span (fields `runtime`,
/// `op`, `sandbox.id`) and fails with [`RuntimeError::Timeout`] past its deadline, so a
/// stuck engine never holds a request forever.
pub struct Traced<R> {
    inner: R,
    deadline: Duration,
}

impl<R: Runtime> Traced<R> {
    /// Wraps `inner`; no call takes longer than `deadline`.
    pub fn new(inner: R, deadline: Duration) -> Self {
        Self { inner, deadline }
    }

    async fn call<T>(
        &self,
        op: &'static str,
        id: &str,
        fut: impl Future<Output = Result<T, RuntimeError>>,
    ) -> Result<T, RuntimeError> {
        let runtime = self.inner.name();
        let span = tracing::debug_span!("runtime.call", runtime, op, sandbox.id = id);
        let started = std::time::Instant::now();
        let out = match tokio::time::timeout(self.deadline, fut)
            .instrument(span.clone())
            .await
        {
            Ok(r) => r,
            Err(_) => Err(RuntimeError::Timeout {
                code: timeout_code(runtime),
                op,
                seconds: self.deadline.as_secs(),
            }),
        };
        span.in_scope(|| match &out {
            Ok(_) => tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "done"),
            Err(e) => tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, error = %e, "failed"),
        });
        if out.is_err() {
            if let Some(m) = crate::metrics::metrics() {
                m.engine_error(runtime, op);
            }
        }
        out
    }
}

/// `<RUNTIME>::ENGINE_UNAVAILABLE`, the code a timed-out call answers with.
fn timeout_code(runtime: &str) -> &'static str {
    match runtime {
        "DOCKER" => "DOCKER::ENGINE_UNAVAILABLE",
        "KUBERNETES" => "KUBERNETES::UNAVAILABLE",
        _ => "SANDBOX::ENGINE_UNAVAILABLE",
    }
}

#[async_trait]
impl<R: Runtime> Runtime for Traced<R> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        self.call("ping", "", self.inner.ping()).await
    }

    async fn create(&self, spec: &SandboxSpec) -> Result<Observed, RuntimeError> {
        self.call("create", &spec.id, self.inner.create(spec)).await
    }

    async fn inspect(&self, id: &str) -> Result<Option<Observed>, RuntimeError> {
        self.call("inspect", id, self.inner.inspect(id)).await
    }

    async fn list(&self) -> Result<Vec<Discovered>, RuntimeError> {
        self.call("list", "", self.inner.list()).await
    }

    async fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        self.call("delete", id, self.inner.delete(id)).await
    }

    async fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.call("pause", id, self.inner.pause(id)).await
    }

    async fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.call("resume", id, self.inner.resume(id)).await
    }

    async fn endpoint(&self, id: &str, port: u16) -> Result<SocketAddr, RuntimeError> {
        self.call("endpoint", id, self.inner.endpoint(id, port))
            .await
    }

    fn execd_enabled(&self) -> bool {
        self.inner.execd_enabled()
    }

    async fn deliver_identity(&self, id: &str, token: &str) -> Result<(), RuntimeError> {
        self.call(
            "deliver_identity",
            id,
            self.inner.deliver_identity(id, token),
        )
        .await
    }

    async fn logs(&self, id: &str, tail: usize) -> Result<String, RuntimeError> {
        self.call("logs", id, self.inner.logs(id, tail)).await
    }

    async fn events(&self, id: &str) -> Result<String, RuntimeError> {
        self.call("events", id, self.inner.events(id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::FakeRuntime;

    #[tokio::test]
    async fn a_stuck_call_times_out_with_the_drivers_code() {
        let fake = FakeRuntime::default();
        fake.stall.store(true, std::sync::atomic::Ordering::SeqCst);
        let rt = Traced::new(fake, Duration::from_millis(50));
        match rt.inspect("x").await {
            Err(RuntimeError::Timeout { code, op, .. }) => {
                assert_eq!((code, op), ("DOCKER::ENGINE_UNAVAILABLE", "inspect"));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
    }
}
