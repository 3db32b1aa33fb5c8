//! [`GovernanceStore`]: what the gateway needs from a database.

use crate::api_keys::ApiKeyRecord;
use crate::audit_query::{AuditPage, AuditQuery};
use crate::bindings::{Binding, BindingKind};
use crate::error::StoreError;
use gatehouse_audit::AuditEvent;

/// The governance store. Implemented by [`crate::SqliteStore`] and
/// [`crate::PostgresStore`], which pass one conformance suite.
#[async_trait::async_trait]
pub trait GovernanceStore: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn kind(&self) -> &'static str;

    /// Applies pending migrations (idempotent). The durable writer calls it until it
    /// succeeds before its first insert.
    async fn prepare(&self) -> Result<(), StoreError>;

    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Inserts events in one transaction; an event whose id is already stored is skipped
    /// (so a replay never duplicates). Returns how many rows were new.
    async fn insert_audit(&self, events: &[AuditEvent]) -> Result<u64, StoreError>;

    /// One page of events matching `q`, newest first.
    async fn query_audit(&self, q: &AuditQuery) -> Result<AuditPage, StoreError>;

    /// Creates or replaces the binding `(kind, name)`.
    async fn put_binding(&self, b: &Binding) -> Result<(), StoreError>;

    /// Deletes a binding; whether it existed.
    async fn delete_binding(&self, kind: BindingKind, name: &str) -> Result<bool, StoreError>;

    /// Every binding, ordered by kind and name.
    async fn list_bindings(&self) -> Result<Vec<Binding>, StoreError>;

    /// Waits until the bindings may have changed, at most `max`. PostgreSQL wakes on
    /// `NOTIFY gatehouse_changes` (sent with every change, bindings included); SQLite
    /// simply sleeps `max`.
    async fn wait_for_change(&self, max: std::time::Duration);

    /// A number that changes whenever the bindings change.
    async fn bindings_version(&self) -> Result<i64, StoreError>;

    /// Stores a new key record.
    async fn create_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;

    /// The key with this hash, revoked or not.
    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// Keys of `subject` (every key when `None`), newest first.
    async fn list_keys(&self, subject: Option<&str>) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// The key with this id.
    async fn key_by_id(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// Marks a key revoked at `now_ms`; whether a usable key was revoked.
    async fn revoke_key(&self, id: &str, now_ms: i64) -> Result<bool, StoreError>;

    /// Records that the key was used at `now_ms`.
    async fn touch_key(&self, id: &str, now_ms: i64) -> Result<(), StoreError>;
}
