//! [`SigningKeyStore`]: the gateway's Ed25519 signing keys, shared by every replica
//! (table `signing_keys`, migration 0003). A key row says when the key signs
//! (`active_ms`..`retire_ms`) and until when it still verifies and is published in the
//! JWKS (`expire_ms`: its last token's expiry). The gateway's key ring
//! (`gateway/src/signing/`) decides rotation; the store only keeps rows.
//!
//! The private seed is stored (base64) so that every replica signs with the same key:
//! protect the database like the key file it replaces.

use crate::error::StoreError;

/// One signing key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// Key id (the RFC 7638 thumbprint of the public key).
    pub kid: String,
    /// The 32-byte Ed25519 seed (private).
    pub seed: [u8; 32],
    /// When it was created, Unix milliseconds.
    pub created_ms: i64,
    /// From when it signs.
    pub active_ms: i64,
    /// From when it no longer signs (a successor does).
    pub retire_ms: i64,
    /// From when it no longer verifies and leaves the JWKS.
    pub expire_ms: i64,
}

impl std::fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("active_ms", &self.active_ms)
            .field("retire_ms", &self.retire_ms)
            .field("expire_ms", &self.expire_ms)
            .finish_non_exhaustive()
    }
}

/// Where the signing keys live. Implemented by [`crate::SqliteStore`] and
/// [`crate::PostgresStore`].
#[async_trait::async_trait]
pub trait SigningKeyStore: Send + Sync + 'static {
    /// Stores a key; `false` (and no change) when its `kid` is already stored.
    async fn insert_signing_key(&self, key: &StoredSigningKey) -> Result<bool, StoreError>;

    /// The keys not expired at `now_ms`, oldest `active_ms` first.
    async fn signing_keys(&self, now_ms: i64) -> Result<Vec<StoredSigningKey>, StoreError>;

    /// Deletes the keys expired at `now_ms`; how many.
    async fn purge_signing_keys(&self, now_ms: i64) -> Result<u64, StoreError>;
}

/// Decodes a stored seed.
pub(crate) fn seed_from_text(kid: &str, text: &str) -> Result<[u8; 32], StoreError> {
    data_encoding::BASE64
        .decode(text.as_bytes())
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("signing key {kid}: bad seed")))
}

/// Implements [`SigningKeyStore`] for `$store` (a struct with a `pool: sqlx::Pool<$db>`).
macro_rules! signing_keys_sql {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::signing_keys::SigningKeyStore for $store {
            async fn insert_signing_key(
                &self,
                key: &$crate::signing_keys::StoredSigningKey,
            ) -> Result<bool, $crate::StoreError> {
                let r = sqlx::query(
                    "INSERT INTO signing_keys (kid, seed, created_ms, active_ms, retire_ms, expire_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kid) DO NOTHING",
                )
                .bind(&key.kid)
                .bind(data_encoding::BASE64.encode(&key.seed))
                .bind(key.created_ms)
                .bind(key.active_ms)
                .bind(key.retire_ms)
                .bind(key.expire_ms)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn signing_keys(
                &self,
                now_ms: i64,
            ) -> Result<Vec<$crate::signing_keys::StoredSigningKey>, $crate::StoreError> {
                use sqlx::Row;
                let rows = sqlx::query(
                    "SELECT kid, seed, created_ms, active_ms, retire_ms, expire_ms FROM signing_keys \
                     WHERE expire_ms > $1 ORDER BY active_ms, kid",
                )
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let kid: String = r.try_get("kid")?;
                        let seed: String = r.try_get("seed")?;
                        Ok($crate::signing_keys::StoredSigningKey {
                            seed: $crate::signing_keys::seed_from_text(&kid, &seed)?,
                            kid,
                            created_ms: r.try_get("created_ms")?,
                            active_ms: r.try_get("active_ms")?,
                            retire_ms: r.try_get("retire_ms")?,
                            expire_ms: r.try_get("expire_ms")?,
                        })
                    })
                    .collect()
            }

            async fn purge_signing_keys(&self, now_ms: i64) -> Result<u64, $crate::StoreError> {
                let r = sqlx::query("DELETE FROM signing_keys WHERE expire_ms <= $1")
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected())
            }
        }
    };
}

signing_keys_sql!(crate::SqliteStore);
signing_keys_sql!(crate::PostgresStore);
