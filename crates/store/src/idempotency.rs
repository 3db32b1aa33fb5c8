//! [`IdempotencyStore`]: the `Idempotency-Key` records of `POST /v1/sandboxes` (IETF
//! draft "The Idempotency-Key HTTP Header Field").
//!
//! One row per (principal, key): the SHA-256 of the first request's body, its state
//! (`in_flight` while the first request runs, `done` with the answer once it has one),
//! a lease that lets a retry take over from a request whose gateway died, and an expiry
//! (24 h after the first answer) after which the key may be used afresh.

use crate::error::StoreError;

/// A stored answer to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status of the first answer.
    pub status: u16,
    /// Its body (the backend's JSON).
    pub body: String,
}

/// What [`IdempotencyStore::claim_idempotency`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the key now (new, expired, or taken over after the lease ran
    /// out): it must run the request and then complete or release the key.
    Acquired,
    /// Another request with the same key and body is running (its lease holds).
    InFlight,
    /// The first request has answered: replay this.
    Done(StoredResponse),
    /// The key was used with a different body (another fingerprint).
    Mismatch,
}

/// One claim attempt's parameters.
#[derive(Debug, Clone, Copy)]
pub struct ClaimSpec<'a> {
    /// Who is calling (the scope of the key).
    pub principal: &'a str,
    /// The `Idempotency-Key` value.
    pub key: &'a str,
    /// SHA-256 (hex) of the request body.
    pub fingerprint: &'a str,
    /// Now, Unix milliseconds.
    pub now_ms: i64,
    /// How long the claim holds before a retry may take over, milliseconds.
    pub lease_ms: i64,
}

/// Idempotency records in the governance store. Implemented by [`crate::SqliteStore`]
/// and [`crate::PostgresStore`] over the same SQL.
#[async_trait::async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `spec.key` for `spec.principal`, or reports who holds it.
    async fn claim_idempotency(&self, spec: &ClaimSpec<'_>) -> Result<Claim, StoreError>;

    /// Records the first request's answer; it is replayed until `expires_ms`.
    async fn complete_idempotency(
        &self,
        principal: &str,
        key: &str,
        answer: &StoredResponse,
        expires_ms: i64,
    ) -> Result<(), StoreError>;

    /// Forgets a claim whose request got no definite answer (the backend failed or was
    /// unreachable), so a retry runs it again.
    async fn release_idempotency(&self, principal: &str, key: &str) -> Result<(), StoreError>;

    /// Deletes records that expired before `now_ms`; how many.
    async fn purge_idempotency(&self, now_ms: i64) -> Result<u64, StoreError>;
}

macro_rules! idempotency_sql {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl IdempotencyStore for $store {
            async fn claim_idempotency(&self, spec: &ClaimSpec<'_>) -> Result<Claim, StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "DELETE FROM idempotency_keys WHERE principal = $1 AND idem_key = $2 \
                     AND state = 'done' AND expires_ms <= $3",
                )
                .bind(spec.principal)
                .bind(spec.key)
                .bind(spec.now_ms)
                .execute(&mut *tx)
                .await?;
                let lease_until = spec.now_ms + spec.lease_ms;
                let inserted = sqlx::query(
                    "INSERT INTO idempotency_keys (principal, idem_key, fingerprint, state, \
                     status, body, lease_until_ms, expires_ms, created_ms) \
                     VALUES ($1, $2, $3, 'in_flight', NULL, NULL, $4, $4, $5) \
                     ON CONFLICT (principal, idem_key) DO NOTHING",
                )
                .bind(spec.principal)
                .bind(spec.key)
                .bind(spec.fingerprint)
                .bind(lease_until)
                .bind(spec.now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 1 {
                    tx.commit().await?;
                    return Ok(Claim::Acquired);
                }
                let row: Option<(String, String, Option<i64>, Option<String>, i64)> =
                    sqlx::query_as(
                        "SELECT fingerprint, state, status, body, lease_until_ms \
                         FROM idempotency_keys WHERE principal = $1 AND idem_key = $2",
                    )
                    .bind(spec.principal)
                    .bind(spec.key)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some((fingerprint, state, status, body, lease)) = row else {
                    // Deleted between the insert and the select: the retry claims it.
                    tx.commit().await?;
                    return Ok(Claim::InFlight);
                };
                let claim = if fingerprint != spec.fingerprint {
                    Claim::Mismatch
                } else if state == "done" {
                    let status = status
                        .and_then(|s| u16::try_from(s).ok())
                        .ok_or_else(|| StoreError::Corrupt("idempotency status".into()))?;
                    Claim::Done(StoredResponse {
                        status,
                        body: body.unwrap_or_default(),
                    })
                } else if lease <= spec.now_ms {
                    // The first request's gateway died (or hung): take over.
                    let taken = sqlx::query(
                        "UPDATE idempotency_keys SET lease_until_ms = $3 \
                         WHERE principal = $1 AND idem_key = $2 AND state = 'in_flight' \
                         AND lease_until_ms = $4",
                    )
                    .bind(spec.principal)
                    .bind(spec.key)
                    .bind(lease_until)
                    .bind(lease)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if taken == 1 {
                        Claim::Acquired
                    } else {
                        Claim::InFlight
                    }
                } else {
                    Claim::InFlight
                };
                tx.commit().await?;
                Ok(claim)
            }

            async fn complete_idempotency(
                &self,
                principal: &str,
                key: &str,
                answer: &StoredResponse,
                expires_ms: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE idempotency_keys SET state = 'done', status = $3, body = $4, \
                     expires_ms = $5 WHERE principal = $1 AND idem_key = $2",
                )
                .bind(principal)
                .bind(key)
                .bind(i64::from(answer.status))
                .bind(&answer.body)
                .bind(expires_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn release_idempotency(
                &self,
                principal: &str,
                key: &str,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "DELETE FROM idempotency_keys WHERE principal = $1 AND idem_key = $2 \
                     AND state = 'in_flight'",
                )
                .bind(principal)
                .bind(key)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn purge_idempotency(&self, now_ms: i64) -> Result<u64, StoreError> {
                let r = sqlx::query(
                    "DELETE FROM idempotency_keys WHERE state = 'done' AND expires_ms <= $1",
                )
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected())
            }
        }
    };
}

idempotency_sql!(crate::SqliteStore);
idempotency_sql!(crate::PostgresStore);
