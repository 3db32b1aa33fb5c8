//! [`Follower`]: reads the store's change log and drops what this replica's caches hold
//! for each change.
//!
//! It keeps its position (the last `seq` applied) and, woken by `NOTIFY
//! gatehouse_changes` (PostgreSQL) or every `poll_ms`, reads every change after it. The
//! log is in commit order, so nothing below the position can appear later. When the
//! store cannot be read the caches are kept (fail static, as the bindings are: while the
//! store is down no one can end a session or revoke a key through it either) and the
//! position too; when it can be read again the follower reads on from the position, or,
//! if it was cut off for more than half the log's retention (changes may have been
//! pruned) or never had a position, drops every cache so each entry is re-read.
//!
//! Every replica also prunes the log and purges expired sessions about once a minute.

use gatehouse_store::{ChangeKind, ChangeLog, SessionStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Changes read in one query.
const BATCH: u32 = 500;
/// How often the log is pruned and expired sessions purged.
const HOUSEKEEPING: Duration = Duration::from_secs(60);

/// What a change invalidates on this replica.
#[async_trait::async_trait]
pub trait Caches: Send + Sync + 'static {
    /// A session ended: drop the cached session stored under `key`.
    async fn session_ended(&self, key: &str);
    /// Refuse tokens carrying IdP session `sid`.
    fn sid_revoked(&self, sid: &str);
    /// A personal key changed: drop its cached lookup (by hash).
    fn key_changed(&self, hash: &str);
    /// The bindings changed: reload them.
    fn bindings_changed(&self);
    /// A sandbox was deleted or its metadata changed: drop its cached scope.
    fn sandbox_changed(&self, id: &str);
    /// Changes may have been missed: drop every cache.
    fn drop_all(&self);
}

/// Follows the change log.
pub struct Follower {
    changes: Arc<dyn ChangeLog>,
    sessions: Arc<dyn SessionStore>,
    poll: Duration,
    retention: Duration,
    /// The last change applied; `None` before the first read.
    position: Option<i64>,
    last_read: Instant,
    healthy: bool,
}

impl Follower {
    /// A follower of `changes` (purging expired rows of `sessions`), reading at least
    /// every `poll`, with changes kept `retention` in the log.
    pub fn new(
        changes: Arc<dyn ChangeLog>,
        sessions: Arc<dyn SessionStore>,
        poll: Duration,
        retention: Duration,
    ) -> Self {
        Self {
            changes,
            sessions,
            poll,
            retention,
            position: None,
            last_read: Instant::now(),
            healthy: true,
        }
    }

    /// The last change applied.
    pub fn position(&self) -> Option<i64> {
        self.position
    }

    /// Runs forever on the current Tokio runtime.
    pub fn spawn(mut self, caches: Arc<dyn Caches>) {
        tokio::spawn(async move {
            let mut housekeeping = Instant::now();
            loop {
                self.step(caches.as_ref()).await;
                if housekeeping.elapsed() >= HOUSEKEEPING {
                    housekeeping = Instant::now();
                    self.housekeeping().await;
                }
                self.changes.wait_for_changes(self.poll).await;
            }
        });
    }

    /// Reads and applies every change after the position (one pass; errors are logged
    /// once and leave the position as it is). Returns how many changes were applied.
    pub async fn step(&mut self, caches: &dyn Caches) -> usize {
        match self.read(caches).await {
            Ok(n) => {
                if !self.healthy {
                    tracing::info!(position = ?self.position, "change log readable again");
                }
                self.healthy = true;
                self.last_read = Instant::now();
                n
            }
            Err(e) => {
                if self.healthy {
                    tracing::warn!(error = %e, "cannot read the change log; caches kept until it is back");
                }
                self.healthy = false;
                0
            }
        }
    }

    async fn read(&mut self, caches: &dyn Caches) -> Result<usize, gatehouse_store::StoreError> {
        let cut_off = self.last_read.elapsed() > self.retention / 2;
        let mut at = match self.position {
            Some(p) if !cut_off => p,
            _ => {
                let head = self.changes.head().await?;
                if self.position.is_some() {
                    tracing::warn!("cut off from the change log too long; dropping every cache");
                }
                caches.drop_all();
                self.position = Some(head);
                return Ok(0);
            }
        };
        let mut applied = 0;
        loop {
            let batch = self.changes.changes_after(at, BATCH).await?;
            for c in &batch {
                apply(caches, c).await;
                at = c.seq;
                applied += 1;
            }
            self.position = Some(at);
            if batch.len() < BATCH as usize {
                return Ok(applied);
            }
        }
    }

    async fn housekeeping(&self) {
        let now = chrono::Utc::now().timestamp_millis();
        let before = now.saturating_sub(i64::try_from(self.retention.as_millis()).unwrap_or(0));
        if let Err(e) = self.changes.prune_changes(before).await {
            tracing::debug!(error = %e, "cannot prune the change log");
        }
        match self.sessions.purge_sessions(now).await {
            Ok(n) if n > 0 => tracing::debug!(sessions = n, "expired sessions purged"),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot purge expired sessions"),
        }
    }
}

async fn apply(caches: &dyn Caches, c: &gatehouse_store::Change) {
    match ChangeKind::parse(&c.kind) {
        Some(ChangeKind::Session) => caches.session_ended(&c.item).await,
        Some(ChangeKind::Sid) => caches.sid_revoked(&c.item),
        Some(ChangeKind::ApiKey) => caches.key_changed(&c.item),
        Some(ChangeKind::Bindings) => caches.bindings_changed(),
        Some(ChangeKind::Sandbox) => caches.sandbox_changed(&c.item),
        None => {
            tracing::warn!(kind = %c.kind, "unknown change kind; dropping every cache");
            caches.drop_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_store::{GovernanceStore, SqliteStore, StoredSession};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Recorder {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
        fn push(&self, s: String) {
            self.0.lock().unwrap().push(s);
        }
    }

    #[async_trait::async_trait]
    impl Caches for Recorder {
        async fn session_ended(&self, key: &str) {
            self.push(format!("session {key}"));
        }
        fn sid_revoked(&self, sid: &str) {
            self.push(format!("sid {sid}"));
        }
        fn key_changed(&self, hash: &str) {
            self.push(format!("key {hash}"));
        }
        fn bindings_changed(&self) {
            self.push("bindings".into());
        }
        fn sandbox_changed(&self, id: &str) {
            self.push(format!("sandbox {id}"));
        }
        fn drop_all(&self) {
            self.push("all".into());
        }
    }

    fn session(hash: &str, sid: Option<&str>) -> StoredSession {
        let now = chrono::Utc::now().timestamp_millis();
        StoredSession {
            id_hash: hash.into(),
            subject: "alice".into(),
            team: Some("team-a".into()),
            groups: vec!["g".into()],
            sid: sid.map(Into::into),
            id_token: None,
            created_ms: now,
            expires_ms: now + 60_000,
            seen_ms: now,
        }
    }

    /// Against a real SQLite store: the first read takes the position (and drops what
    /// the caches may hold), then every change is applied once, in order, whoever wrote it
    /// (triggers or the gateway).
    #[tokio::test]
    async fn follows_the_log_in_order_from_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("g.db")).await.unwrap();
        store.publish(ChangeKind::Sandbox, "before").await.unwrap();
        let mut f = Follower::new(
            Arc::new(store.clone()),
            Arc::new(store.clone()),
            Duration::from_millis(10),
            Duration::from_secs(600),
        );
        let r = Recorder::default();
        assert_eq!(f.step(&r).await, 0);
        assert_eq!(r.take(), vec!["all"], "no position yet: caches dropped");
        assert_eq!(f.step(&r).await, 0);
        assert!(r.take().is_empty());

        store
            .put_session(&session("h1", Some("sid-1")))
            .await
            .unwrap();
        store.put_session(&session("h2", None)).await.unwrap();
        store.delete_session("h1").await.unwrap();
        store
            .delete_sessions_matching(None, Some("alice"))
            .await
            .unwrap();
        store.publish(ChangeKind::Sandbox, "sbx-1").await.unwrap();
        store
            .put_binding(&gatehouse_store::Binding {
                kind: gatehouse_store::BindingKind::Subject,
                name: "bob".into(),
                role: "operator".into(),
                team: None,
                created_by: "t".into(),
                created_ms: 0,
            })
            .await
            .unwrap();
        assert_eq!(f.step(&r).await, 5);
        assert_eq!(
            r.take(),
            vec![
                "session h1",
                "sid sid-1",
                "session h2",
                "sandbox sbx-1",
                "bindings"
            ]
        );
        assert_eq!(f.step(&r).await, 0, "each change once");
        // An expired session leaves without a change: every replica expires it alone.
        let mut old = session("h3", Some("sid-3"));
        old.expires_ms = 1;
        store.put_session(&old).await.unwrap();
        assert_eq!(
            store
                .purge_sessions(chrono::Utc::now().timestamp_millis())
                .await
                .unwrap(),
            1
        );
        assert_eq!(f.step(&r).await, 0);
    }
}
