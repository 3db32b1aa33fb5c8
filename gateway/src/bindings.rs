//! [`BindingsCache`]: the RBAC bindings of the governance store, held in memory for role
//! resolution on the hot path (one atomic load, no I/O).
//!
//! A watcher task checks the store's bindings version and reloads when it changes: as
//! soon as the change-log follower sees a binding change ([`BindingsCache::changed`]; on
//! PostgreSQL it is woken by `NOTIFY gatehouse_changes`), and every [`POLL`] in any case,
//! so an edit takes effect within a second. If the store is unreachable
//! the last bindings read stay in force — fail static, never open — and
//! [`BindingsCache::is_fresh`] turns false until a reload succeeds;
//! [`BindingsCache::age`] is the time since the store last answered (both are in
//! `/readyz` and the metrics). When no binding matches, the static `[authz]` table of the
//! role file decides, as before.

use arc_swap::ArcSwap;
use gatehouse_authz::RoleTable;
use gatehouse_store::{Binding, BindingKind, GovernanceStore};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the watcher checks for changes.
pub const POLL: Duration = Duration::from_millis(500);
/// How long the watcher waits for one store read before calling it a failure (so a store
/// that hangs instead of refusing still turns the bindings stale).
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// What a binding grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The role.
    pub role: String,
    /// The team, when the binding sets one.
    pub team: Option<String>,
}

#[derive(Debug, Default)]
struct Snapshot {
    subjects: HashMap<String, Grant>,
    groups: HashMap<String, Grant>,
}

/// The bindings in memory.
#[derive(Debug, Default)]
pub struct BindingsCache {
    current: ArcSwap<Snapshot>,
    fresh: AtomicBool,
    /// When the store last answered the watcher (ms since the epoch; 0: never).
    confirmed_ms: AtomicI64,
    wake: tokio::sync::Notify,
}

impl BindingsCache {
    /// An empty cache (no binding matches until the first load).
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the bindings.
    pub fn load(&self, bindings: &[Binding]) {
        let mut s = Snapshot::default();
        for b in bindings {
            let g = Grant {
                role: b.role.clone(),
                team: b.team.clone(),
            };
            match b.kind {
                BindingKind::Subject => s.subjects.insert(b.name.clone(), g),
                BindingKind::Group => s.groups.insert(b.name.clone(), g),
            };
        }
        self.current.store(Arc::new(s));
        self.confirm();
    }

    /// Records that the store answered: the bindings in memory are current.
    fn confirm(&self) {
        self.confirmed_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
        self.fresh.store(true, Ordering::Relaxed);
    }

    /// The bindings changed in the store: the watcher re-reads them now.
    pub fn changed(&self) {
        self.wake.notify_one();
    }

    /// Whether the last reload succeeded (false while the store is unreachable).
    pub fn is_fresh(&self) -> bool {
        self.fresh.load(Ordering::Relaxed)
    }

    /// Time since the store last confirmed the bindings in memory; `None` before the
    /// first successful read.
    pub fn age(&self) -> Option<Duration> {
        let at = self.confirmed_ms.load(Ordering::Relaxed);
        (at > 0).then(|| {
            let ms = chrono::Utc::now().timestamp_millis().saturating_sub(at);
            Duration::from_millis(u64::try_from(ms).unwrap_or(0))
        })
    }

    /// The grant for a caller: their subject's binding, else the most privileged of their
    /// groups' bindings (by the number of actions the role allows in `table`).
    pub fn resolve(&self, table: &RoleTable, subject: &str, groups: &[String]) -> Option<Grant> {
        let s = self.current.load();
        if let Some(g) = s.subjects.get(subject) {
            return Some(g.clone());
        }
        groups
            .iter()
            .filter_map(|g| s.groups.get(g))
            .max_by_key(|g| table.permissions(&g.role).len())
            .cloned()
    }

    /// Reads the bindings once, so the gateway serves with them from its first request
    /// (each read bounded by [`READ_TIMEOUT`]; a store that does not answer leaves the
    /// static `[authz]` table alone in force, stale, until it does), then keeps them
    /// current with a watcher task on the current Tokio runtime.
    pub async fn start(self: Arc<Self>, store: Arc<dyn GovernanceStore>) {
        let mut seen = None;
        self.refresh(store.as_ref(), &mut seen).await;
        if !self.is_fresh() {
            tracing::warn!(
                "cannot read RBAC bindings at start; the static [authz] table applies until the store answers"
            );
        }
        tokio::spawn(async move {
            loop {
                let _ = tokio::time::timeout(POLL, self.wake.notified()).await;
                self.refresh(store.as_ref(), &mut seen).await;
            }
        });
    }

    /// One check of the store: reloads the bindings when their version is not `seen`
    /// (and records the new one), confirms them when it is, turns them stale when the
    /// store does not answer.
    async fn refresh(&self, store: &dyn GovernanceStore, seen: &mut Option<i64>) {
        match timed(store.bindings_version()).await {
            Ok(v) if *seen == Some(v) => self.confirm(),
            Ok(v) => match timed(store.list_bindings()).await {
                Ok(b) => {
                    self.load(&b);
                    if seen.is_some() {
                        tracing::info!(bindings = b.len(), "RBAC bindings reloaded");
                    }
                    *seen = Some(v);
                }
                Err(e) => self.stale(&e),
            },
            Err(e) => self.stale(&e),
        }
    }

    fn stale(&self, e: &str) {
        if self.fresh.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = %e, "cannot read RBAC bindings; keeping the last ones read");
        }
    }
}

/// One store read, bounded by [`READ_TIMEOUT`]; the error as text for the log.
async fn timed<T>(
    read: impl std::future::Future<Output = Result<T, gatehouse_store::StoreError>>,
) -> Result<T, String> {
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {READ_TIMEOUT:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_first_then_the_most_privileged_group() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/roles.toml");
        let table = RoleTable::load(std::path::Path::new(path)).unwrap();
        let b = |kind, name: &str, role: &str, team: Option<&str>| Binding {
            kind,
            name: name.into(),
            role: role.into(),
            team: team.map(Into::into),
            created_by: "t".into(),
            created_ms: 0,
        };
        let c = BindingsCache::new();
        assert!(!c.is_fresh());
        assert_eq!(c.age(), None);
        c.load(&[
            b(BindingKind::Subject, "alice", "read_only", Some("t1")),
            b(BindingKind::Group, "ops", "operator", None),
            b(BindingKind::Group, "admins", "service_admin", Some("t2")),
        ]);
        assert!(c.is_fresh());
        assert!(c.age().is_some_and(|a| a < Duration::from_secs(60)));
        let groups = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            c.resolve(&table, "alice", &groups(&["admins"]))
                .map(|g| g.role),
            Some("read_only".into())
        );
        assert_eq!(
            c.resolve(&table, "bob", &groups(&["ops", "admins"])),
            Some(Grant {
                role: "service_admin".into(),
                team: Some("t2".into())
            })
        );
        assert_eq!(c.resolve(&table, "bob", &groups(&["nobody"])), None);
    }
}
