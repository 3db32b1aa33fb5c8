//! An in-memory runtime for fast unit tests of the API layer. The end-to-end tests use a
//! real Docker engine; this fake only lets handler tests run without one.

use async_trait::async_trait;
use gatehouse_lifecycle::runtime::Discovered;
use gatehouse_lifecycle::{time, Observed, Runtime, RuntimeError, SandboxSpec, SandboxState};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Sandboxes kept in a map; `down` simulates an unreachable engine.
#[derive(Default)]
pub struct FakeRuntime {
    pub sandboxes: Mutex<HashMap<String, (SandboxSpec, SandboxState)>>,
    pub down: AtomicBool,
    /// Calls to `inspect` never return (a stuck engine).
    pub stall: AtomicBool,
    /// Sandboxes run the agent; only 8080, 44772 and 18080 are published.
    pub execd: AtomicBool,
}

impl FakeRuntime {
    fn check(&self) -> Result<(), RuntimeError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(RuntimeError::Unavailable {
                runtime: "DOCKER",
                code: "DOCKER::ENGINE_UNAVAILABLE",
                detail: "fake outage".into(),
            });
        }
        Ok(())
    }

    fn obs(id: &str, st: SandboxState) -> Observed {
        Observed {
            id: id.into(),
            state: st,
            reason: format!("FAKE_{st}"),
            message: String::new(),
            since: None,
        }
    }
}

#[async_trait]
impl Runtime for FakeRuntime {
    fn name(&self) -> &'static str {
        "DOCKER"
    }
    async fn ping(&self) -> Result<(), RuntimeError> {
        self.check()
    }
    async fn create(&self, spec: &SandboxSpec) -> Result<Observed, RuntimeError> {
        self.check()?;
        if spec.image == "missing" {
            return Err(RuntimeError::Image {
                code: "DOCKER::SANDBOX_IMAGE_PULL_FAILED",
                image: spec.image.clone(),
                detail: "not found".into(),
            });
        }
        self.sandboxes
            .lock()
            .unwrap()
            .insert(spec.id.clone(), (spec.clone(), SandboxState::Running));
        Ok(Self::obs(&spec.id, SandboxState::Running))
    }
    async fn inspect(&self, id: &str) -> Result<Option<Observed>, RuntimeError> {
        if self.stall.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.check()?;
        Ok(self
            .sandboxes
            .lock()
            .unwrap()
            .get(id)
            .map(|(_, st)| Self::obs(id, *st)))
    }
    async fn list(&self) -> Result<Vec<Discovered>, RuntimeError> {
        self.check()?;
        Ok(self
            .sandboxes
            .lock()
            .unwrap()
            .iter()
            .map(|(id, (spec, st))| Discovered {
                observed: Self::obs(id, *st),
                image: spec.image.clone(),
                entrypoint: spec.entrypoint.clone(),
                metadata: spec.metadata.clone(),
                expires_at: spec.expires_at,
                created_at: time::now(),
            })
            .collect())
    }
    async fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        self.check()?;
        self.sandboxes.lock().unwrap().remove(id);
        Ok(())
    }
    async fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.check()?;
        let mut m = self.sandboxes.lock().unwrap();
        let (_, st) = m
            .get_mut(id)
            .ok_or_else(|| RuntimeError::NotFound(id.into()))?;
        if *st != SandboxState::Running {
            return Err(RuntimeError::Conflict {
                code: "DOCKER::SANDBOX_NOT_RUNNING",
                message: "not running".into(),
            });
        }
        *st = SandboxState::Paused;
        Ok(())
    }
    async fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.check()?;
        let mut m = self.sandboxes.lock().unwrap();
        let (_, st) = m
            .get_mut(id)
            .ok_or_else(|| RuntimeError::NotFound(id.into()))?;
        if *st != SandboxState::Paused {
            return Err(RuntimeError::Conflict {
                code: "DOCKER::SANDBOX_NOT_PAUSED",
                message: "not paused".into(),
            });
        }
        *st = SandboxState::Running;
        Ok(())
    }
    async fn endpoint(&self, id: &str, port: u16) -> Result<SocketAddr, RuntimeError> {
        self.check()?;
        if !self.sandboxes.lock().unwrap().contains_key(id) {
            return Err(RuntimeError::NotFound(id.into()));
        }
        if self.execd.load(Ordering::SeqCst) && ![8080, 44772, 18080].contains(&port) {
            return Err(RuntimeError::Invalid {
                status: 404,
                code: "DOCKER::ENDPOINT_NOT_AVAILABLE",
                message: format!("Port {port} is not published."),
            });
        }
        Ok(SocketAddr::from(([127, 0, 0, 1], 40000 + port % 1000)))
    }

    fn execd_enabled(&self) -> bool {
        self.execd.load(Ordering::SeqCst)
    }
}
