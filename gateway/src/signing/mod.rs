//! The gateway's signing key ring: Ed25519 keys that sign the verified-caller header
//! ([`crate::pipeline::caller`]), sandbox-origin hand-offs and sandbox tokens
//! ([`crate::sandbox_identity`]), all published at `/.well-known/jwks.json`.
//!
//! Keys live in the governance store (table `signing_keys`), so every replica signs and
//! verifies with the same keys and a restart changes nothing. Rotation with overlap:
//!
//! - a key signs for `[signing] rotate_after_seconds`;
//! - its successor is created `publish_ahead_seconds` before that, so it is in every
//!   replica's JWKS (and in relying parties' cached copies) before its first signature;
//! - a retired key keeps verifying, and stays in the JWKS, until the last token it can
//!   have signed has expired (`retire + the longest token lifetime + 60 s`).
//!
//! Every replica runs [`KeyRing::sync`] every `refresh_seconds`: it reads the keys,
//! creates the current or the next key when missing (two replicas racing both insert one;
//! the signer is chosen deterministically, the spare is merely published), and deletes
//! expired ones. With `server.caller_key_file` set the ring holds that one key and never
//! rotates (the previous behaviour).

use crate::signing_key::{KeyError, SigningKey};
use arc_swap::ArcSwap;
use gatehouse_authn::SandboxKeys;
use gatehouse_store::{SigningKeyStore, StoredSigningKey};
use jsonwebtoken::DecodingKey;
use rand::RngCore;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Rotation timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingTiming {
    /// How long a key signs.
    pub rotate_after: Duration,
    /// How long before its first signature a key is published.
    pub publish_ahead: Duration,
    /// The longest lifetime of anything the ring signs.
    pub max_token_lifetime: Duration,
}

/// A key with its schedule.
struct Entry {
    key: Arc<SigningKey>,
    active_ms: i64,
    retire_ms: i64,
    expire_ms: i64,
}

/// One consistent view of the ring.
struct Snapshot {
    entries: Vec<Entry>,
    by_kid: HashMap<String, Arc<SigningKey>>,
    jwks: bytes::Bytes,
}

impl Snapshot {
    fn new(mut entries: Vec<Entry>) -> Self {
        entries.sort_by(|a, b| (a.active_ms, a.key.kid()).cmp(&(b.active_ms, b.key.kid())));
        let by_kid = entries
            .iter()
            .map(|e| (e.key.kid().to_owned(), e.key.clone()))
            .collect();
        let keys: Vec<_> = entries.iter().map(|e| e.key.jwk()).collect();
        let jwks = bytes::Bytes::from(serde_json::json!({ "keys": keys }).to_string());
        Self {
            entries,
            by_kid,
            jwks,
        }
    }

    /// The key signing at `now`: the latest active one (ties broken by `kid`, so replicas
    /// agree); the newest key when none is active yet.
    fn signer(&self, now: i64) -> Option<&Arc<SigningKey>> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.active_ms <= now && now < e.retire_ms)
            .or_else(|| {
                self.entries
                    .iter()
                    .rev()
                    .find(|e| e.active_ms <= now && now < e.expire_ms)
            })
            .or_else(|| self.entries.last())
            .map(|e| &e.key)
    }
}

/// The key ring.
pub struct KeyRing {
    snapshot: ArcSwap<Snapshot>,
    store: Option<Arc<dyn SigningKeyStore>>,
    timing: RingTiming,
    /// Whether this ring has handed out a signer: until then a key of this process that
    /// is not in the store signed nothing, and a sync drops it instead of publishing it.
    signed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.snapshot.load();
        let kids: Vec<&str> = s.entries.iter().map(|e| e.key.kid()).collect();
        f.debug_struct("KeyRing")
            .field("kids", &kids)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl KeyRing {
    /// A ring of one key that never rotates (`server.caller_key_file`, tests).
    pub fn fixed(key: SigningKey) -> Self {
        let entry = Entry {
            key: Arc::new(key),
            active_ms: 0,
            retire_ms: i64::MAX,
            expire_ms: i64::MAX,
        };
        Self {
            snapshot: ArcSwap::from_pointee(Snapshot::new(vec![entry])),
            store: None,
            timing: RingTiming {
                rotate_after: Duration::MAX,
                publish_ahead: Duration::ZERO,
                max_token_lifetime: Duration::ZERO,
            },
            signed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A ring kept in `store`. Until the first [`KeyRing::sync`] succeeds it holds one
    /// fresh key of this process only (so the gateway can start while the store is down).
    pub fn stored(store: Arc<dyn SigningKeyStore>, timing: RingTiming) -> Self {
        let now = now_ms();
        let key = SigningKey::from_seed(random_seed());
        let entry = Entry {
            key: Arc::new(key),
            active_ms: now,
            retire_ms: now.saturating_add(ms(timing.rotate_after)),
            expire_ms: now
                .saturating_add(ms(timing.rotate_after))
                .saturating_add(ms(timing.max_token_lifetime)),
        };
        Self {
            snapshot: ArcSwap::from_pointee(Snapshot::new(vec![entry])),
            store: Some(store),
            timing,
            signed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Reads the stored keys, adds the current or next key when due, deletes expired
    /// ones, and publishes the result (keys of this process not in the store keep
    /// verifying until they expire, but no longer sign). A no-op for a fixed ring.
    pub async fn sync(&self) -> Result<(), gatehouse_store::StoreError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let now = now_ms();
        let mut rows = store.signing_keys(now).await?;
        let mut added = false;
        if !rows.iter().any(|k| k.active_ms <= now && now < k.retire_ms) {
            added |= store.insert_signing_key(&self.new_row(now, now)).await?;
        }
        if added {
            rows = store.signing_keys(now).await?;
        }
        let newest = rows.iter().map(|k| k.retire_ms).max().unwrap_or(now);
        if newest.saturating_sub(now) <= ms(self.timing.publish_ahead) {
            if store.insert_signing_key(&self.new_row(now, newest)).await? {
                tracing::info!(
                    active_ms = newest,
                    "signing key created; published before it signs"
                );
            }
            rows = store.signing_keys(now).await?;
        }
        let purged = store.purge_signing_keys(now).await?;
        if purged > 0 {
            tracing::info!(purged, "expired signing keys deleted");
        }
        let mut entries: Vec<Entry> = rows
            .into_iter()
            .map(|r| Entry {
                key: Arc::new(SigningKey::from_seed(r.seed)),
                active_ms: r.active_ms,
                retire_ms: r.retire_ms,
                expire_ms: r.expire_ms,
            })
            .collect();
        let old = self.snapshot.load();
        // Keys of this process that never signed need not verify anything: drop them.
        let keep_local = self.signed.load(std::sync::atomic::Ordering::Relaxed);
        for e in old
            .entries
            .iter()
            .filter(|e| keep_local && now < e.expire_ms)
        {
            if !entries.iter().any(|n| n.key.kid() == e.key.kid()) {
                entries.push(Entry {
                    key: e.key.clone(),
                    active_ms: i64::MIN,
                    retire_ms: i64::MIN,
                    expire_ms: e.expire_ms,
                });
            }
        }
        if !entries.is_empty() {
            self.snapshot.store(Arc::new(Snapshot::new(entries)));
        }
        Ok(())
    }

    /// A new key row signing from `active_ms`.
    fn new_row(&self, now: i64, active_ms: i64) -> StoredSigningKey {
        let seed = random_seed();
        let kid = SigningKey::from_seed(seed).kid().to_owned();
        let retire_ms = active_ms.saturating_add(ms(self.timing.rotate_after));
        StoredSigningKey {
            kid,
            seed,
            created_ms: now,
            active_ms,
            retire_ms,
            // A minute of slack for clocks and in-flight tokens.
            expire_ms: retire_ms
                .saturating_add(ms(self.timing.max_token_lifetime))
                .saturating_add(60_000),
        }
    }

    /// Runs [`KeyRing::sync`] every `every` on the current runtime.
    pub fn spawn_sync(self: &Arc<Self>, every: Duration) {
        if self.store.is_none() {
            return;
        }
        let ring = self.clone();
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                match ring.sync().await {
                    Ok(()) => failures = 0,
                    Err(e) => {
                        failures += 1;
                        if failures == 1 {
                            tracing::warn!(error = %e, "signing keys not synchronised with the store; retrying");
                        }
                    }
                }
                tokio::time::sleep(every).await;
            }
        });
    }

    /// The key signing now.
    pub fn signer(&self) -> Option<Arc<SigningKey>> {
        if !self.signed.load(std::sync::atomic::Ordering::Relaxed) {
            self.signed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self.snapshot.load().signer(now_ms()).cloned()
    }

    /// The kids in the ring, oldest first.
    pub fn kids(&self) -> Vec<String> {
        self.snapshot
            .load()
            .entries
            .iter()
            .map(|e| e.key.kid().to_owned())
            .collect()
    }

    /// The public JWKS document (every key that may still verify, and the next one).
    pub fn jwks(&self) -> bytes::Bytes {
        self.snapshot.load().jwks.clone()
    }

    /// Signs `claims` with the current key.
    pub fn sign<T: serde::Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        let key = self
            .signer()
            .ok_or_else(|| KeyError::Sign("no signing key".into()))?;
        key.sign(typ, claims)
    }

    /// Verifies a token signed by any key of the ring (the header's `kid` picks it).
    pub fn verify<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        aud: &str,
    ) -> Result<T, KeyError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| KeyError::Sign(e.to_string()))?;
        let snapshot = self.snapshot.load();
        let key = header
            .kid
            .as_deref()
            .and_then(|k| snapshot.by_kid.get(k))
            .ok_or_else(|| KeyError::Sign("unknown key".into()))?;
        key.verify(token, typ, aud)
    }
}

impl SandboxKeys for KeyRing {
    fn decoding_key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.snapshot
            .load()
            .by_kid
            .get(kid)
            .map(|k| k.decoding_key())
    }
}

fn random_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    seed
}

/// The ring the configuration asks for: the one key of `server.caller_key_file`, else
/// keys in the governance store, synchronised once now (5 s at most) and then every
/// `[signing] refresh_seconds` on `rt`.
pub fn build_ring(
    cfg: &crate::config::GatewayConfig,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Arc<KeyRing>> {
    use anyhow::Context;
    if let Some(path) = &cfg.server.caller_key_file {
        let key = SigningKey::load_or_generate(Some(path)).context("server.caller_key_file")?;
        return Ok(Arc::new(KeyRing::fixed(key)));
    }
    let store = rt
        .block_on(cfg.store.open_signing_keys())
        .context("opening the signing keys ([store])")?;
    // The longest-lived thing the ring signs: a sandbox token (or a minute for the
    // verified-caller header and hand-offs).
    let max_token_lifetime = cfg
        .sandbox_identity
        .as_ref()
        .map_or(Duration::ZERO, |s| s.token_lifetime())
        .max(Duration::from_secs(60));
    let timing = RingTiming {
        rotate_after: Duration::from_secs(cfg.signing.rotate_after_seconds),
        publish_ahead: Duration::from_secs(cfg.signing.publish_ahead_seconds),
        max_token_lifetime,
    };
    let ring = Arc::new(KeyRing::stored(store, timing));
    match rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), ring.sync()).await }) {
        Ok(Ok(())) => tracing::info!(kids = ?ring.kids(), "signing keys loaded from the store"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "signing keys not in the store yet; a key of this process signs meanwhile")
        }
        Err(_) => {
            tracing::warn!("signing key store not answering; a key of this process signs meanwhile")
        }
    }
    let _guard = rt.enter();
    ring.spawn_sync(Duration::from_secs(cfg.signing.refresh_seconds));
    Ok(ring)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(rotate: u64, ahead: u64) -> RingTiming {
        RingTiming {
            rotate_after: Duration::from_secs(rotate),
            publish_ahead: Duration::from_secs(ahead),
            max_token_lifetime: Duration::from_secs(60),
        }
    }

    async fn store(dir: &std::path::Path) -> Arc<dyn SigningKeyStore> {
        Arc::new(
            gatehouse_store::SqliteStore::open(&dir.join("g.db"))
                .await
                .unwrap(),
        )
    }

    #[tokio::test]
    async fn replicas_share_keys_and_a_successor_is_published_before_it_signs() {
        let dir = tempfile::tempdir().unwrap();
        let a = KeyRing::stored(store(dir.path()).await, timing(3600, 60));
        a.sync().await.unwrap();
        assert_eq!(a.kids().len(), 1, "one current key, no successor yet");
        let b = KeyRing::stored(store(dir.path()).await, timing(3600, 60));
        b.sync().await.unwrap();
        assert_eq!(a.kids(), b.kids(), "a second replica adopts the stored key");
        let token = a.sign(
            "t+jwt",
            &serde_json::json!({"aud": "x", "exp": 4_000_000_000u64}),
        );
        let claims: serde_json::Value = b.verify(&token.unwrap(), "t+jwt", "x").unwrap();
        assert_eq!(claims["aud"], "x");

        // Within `publish_ahead` of retirement (here: always), the successor is written:
        // both replicas publish it, neither signs with it yet.
        let c = KeyRing::stored(store(dir.path()).await, timing(3600, 7200));
        c.sync().await.unwrap();
        a.sync().await.unwrap();
        assert_eq!(a.kids().len(), 2);
        assert_eq!(a.kids(), c.kids());
        let jwks: serde_json::Value = serde_json::from_slice(&a.jwks()).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        let current = a.kids()[0].clone();
        assert_eq!(a.signer().unwrap().kid(), current);
        assert_eq!(c.signer().unwrap().kid(), current);
    }

    #[test]
    fn a_fixed_ring_signs_with_its_key() {
        let key = SigningKey::from_seed([7; 32]);
        let kid = key.kid().to_owned();
        let ring = KeyRing::fixed(key);
        assert_eq!(ring.signer().unwrap().kid(), kid);
        assert!(ring.decoding_key(&kid).is_some());
        assert!(ring.decoding_key("other").is_none());
    }
}
