//! The governance store: durable audit events, RBAC bindings, personal API keys, the
//! gateway's signing keys ([`SigningKeyStore`]), and the automation limits' idempotency
//! keys and quotas ([`IdempotencyStore`], [`QuotaStore`]).
//!
//! [`GovernanceStore`] is implemented twice over the same SQL ([`sql`]): [`SqliteStore`]
//! (embedded, the default) and [`PostgresStore`] (production). Each applies its own
//! embedded, additive, versioned migrations (`migrations/sqlite`, `migrations/postgres`).
//! One conformance suite (`tests/e2e/store_conformance.rs`) runs against both.
//!
//! Replicas share login sessions ([`SessionStore`]) and follow one change feed
//! ([`ChangeLog`]: PostgreSQL `LISTEN/NOTIFY`, SQLite polling) to keep their caches true,
//! and sign-ins in progress ([`LoginStateStore`]), so a callback may reach any replica.
//!
//! [`DurableAuditSink`] feeds audit events to the store without ever blocking a request:
//! a bounded queue, a writer task, and an append-only spool file while the store is
//! unreachable, replayed in order when it returns. Inserts are idempotent by event id.

mod api_keys;
mod audit_query;
mod bindings;
mod changes;
mod config;
mod durable;
mod error;
mod handles;
mod idempotency;
mod limits;
mod login_states;
mod postgres;
mod quotas;
mod sessions;
mod signing_keys;
mod sql;
mod sqlite;
mod store;

pub use api_keys::{
    generate as generate_key, hash_key, is_personal_key, ApiKeyRecord, KeySpec, NewApiKey,
    KEY_PREFIX,
};
pub use audit_query::{
    event_ms, ms_to_rfc3339, parse_outcome, AuditPage, AuditQuery, Cursor, DEFAULT_PAGE, MAX_PAGE,
};
pub use bindings::{Binding, BindingKind};
pub use changes::{Change, ChangeKind, ChangeLog, CHANGES_CHANNEL};
pub use config::{StoreConfig, StoreKind};
pub use durable::{DurableAuditSink, DurableOptions};
pub use error::StoreError;
pub use handles::StoreHandles;
pub use idempotency::{Claim, ClaimSpec, IdempotencyStore, StoredResponse};
pub use limits::LimitsStores;
pub use login_states::{LoginStateStore, StoredLoginState};
pub use postgres::PostgresStore;
pub use quotas::{LedgerEntry, QuotaLimits, QuotaLock, QuotaStore, TeamQuota};
pub use sessions::{SessionStore, StoredSession};
pub use signing_keys::{SigningKeyStore, StoredSigningKey};
pub use sqlite::SqliteStore;
pub use store::GovernanceStore;
