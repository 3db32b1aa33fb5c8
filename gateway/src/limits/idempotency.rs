//! Idempotent create: `POST /v1/sandboxes` with an `Idempotency-Key` header (IETF
//! draft-ietf-httpapi-idempotency-key-header).
//!
//! The first request with a key claims it in the governance store (state "in flight",
//! with a lease); its answer is stored when it has one and replayed, status and body, to
//! every retry by the same principal for [`TTL`]. A retry with another body is refused
//! (422). A retry while the first still runs waits for it: woken in-process when the
//! first runs on this replica, polling the store otherwise. A first request whose gateway
//! died holds the key only until its lease ([`LEASE`]) runs out; then a retry runs it.
//! Answers without a definite result (the backend failed or refused: not 2xx) release
//! the key, so a retry runs again.

use crate::error::GatewayError;
use crate::reply::Reply;
use bytes::Bytes;
use gatehouse_store::{Claim, ClaimSpec, StoredResponse};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// How long a first answer is replayed.
pub const TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a claim holds while its request runs, before a retry may take over.
pub const LEASE: Duration = Duration::from_secs(60);
/// Longest key accepted.
pub const MAX_KEY: usize = 255;
/// How often a waiting retry re-reads the store (a first request on another replica).
const POLL: Duration = Duration::from_millis(250);

/// A claim this request holds: it must be completed or released.
#[derive(Debug, Clone)]
pub struct Held {
    principal: String,
    key: String,
}

/// What to do with a create that carries a key.
#[derive(Debug)]
pub enum Begin {
    /// Run it; the claim is held.
    Run(Held),
    /// Answer this (the first request's answer).
    Replay(Reply),
}

/// The key of a request: `None` without the header; 400 when it is unusable. The value
/// may be a structured-field string (`"abc"`) or a bare token.
pub fn key_of(headers: &http::HeaderMap) -> Result<Option<&str>, GatewayError> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    let bad = |why: &str| {
        GatewayError::new(
            400,
            "GATEWAY::INVALID_IDEMPOTENCY_KEY",
            format!("The Idempotency-Key header {why}."),
        )
    };
    if values.next().is_some() {
        return Err(bad("appears more than once"));
    }
    let s = v.to_str().map_err(|_| bad("must be visible ASCII"))?.trim();
    let s = s
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(s);
    if s.is_empty() {
        return Err(bad("must not be empty"));
    }
    if s.len() > MAX_KEY {
        return Err(bad(&format!("must be at most {MAX_KEY} characters")));
    }
    if !s.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(bad("must be visible ASCII"));
    }
    Ok(Some(s))
}

/// SHA-256 (hex) of a request body: the fingerprint two retries must share.
pub fn fingerprint(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn store_down(e: &gatehouse_store::StoreError) -> GatewayError {
    tracing::warn!(error = %e, "idempotency store call failed");
    GatewayError::new(
        503,
        "GATEWAY::STORE_UNAVAILABLE",
        "The governance store is unavailable; retry later.",
    )
    .with_retry_after(2)
}

/// Idempotency records and the in-process wake-ups of waiting retries.
pub struct Idempotency {
    store: Arc<dyn gatehouse_store::IdempotencyStore>,
    waiters: moka::sync::Cache<String, Arc<Notify>>,
}

impl Idempotency {
    /// Records in `store`.
    pub fn new(store: Arc<dyn gatehouse_store::IdempotencyStore>) -> Self {
        Self {
            store,
            waiters: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(LEASE * 2)
                .build(),
        }
    }

    fn notify(&self, principal: &str, key: &str) -> Arc<Notify> {
        self.waiters
            .get_with(format!("{principal}\n{key}"), || Arc::new(Notify::new()))
    }

    /// Claims `key` for `principal` with this body, waiting while another request with
    /// the same key runs.
    pub async fn begin(
        &self,
        principal: &str,
        key: &str,
        body: &[u8],
    ) -> Result<Begin, GatewayError> {
        let fp = fingerprint(body);
        let lease_ms = i64::try_from(LEASE.as_millis()).unwrap_or(60_000);
        let deadline = tokio::time::Instant::now() + LEASE + Duration::from_secs(5);
        let wake = self.notify(principal, key);
        loop {
            let woken = wake.notified();
            let spec = ClaimSpec {
                principal,
                key,
                fingerprint: &fp,
                now_ms: now_ms(),
                lease_ms,
            };
            match self.store.claim_idempotency(&spec).await {
                Ok(Claim::Acquired) => {
                    return Ok(Begin::Run(Held {
                        principal: principal.to_owned(),
                        key: key.to_owned(),
                    }))
                }
                Ok(Claim::Done(r)) => {
                    tracing::info!(idempotency.key = key, "replaying the first answer");
                    return Ok(Begin::Replay(
                        Reply::json(r.status, Bytes::from(r.body))
                            .header("idempotent-replayed", "true"),
                    ));
                }
                Ok(Claim::Mismatch) => {
                    return Err(GatewayError::new(
                        422,
                        "GATEWAY::IDEMPOTENCY_KEY_REUSED",
                        "This Idempotency-Key was already used with a different request body; \
                         use a new key for a different request.",
                    ))
                }
                Ok(Claim::InFlight) => {}
                Err(e) => return Err(store_down(&e)),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(GatewayError::new(
                    409,
                    "GATEWAY::IDEMPOTENCY_IN_FLIGHT",
                    "A request with this Idempotency-Key is still being processed; retry later.",
                )
                .with_retry_after(1));
            }
            let _ = tokio::time::timeout(POLL, woken).await;
        }
    }

    /// Ends a held claim: a 2xx answer is stored and replayed from now on; anything else
    /// releases the key. Waiting retries are woken either way.
    pub async fn finish(&self, held: &Held, answer: Option<(u16, &Bytes)>) {
        let r = match answer {
            Some((status, body)) if (200..300).contains(&status) => {
                let stored = StoredResponse {
                    status,
                    body: String::from_utf8_lossy(body).into_owned(),
                };
                let expires = now_ms() + i64::try_from(TTL.as_millis()).unwrap_or(i64::MAX / 2);
                self.store
                    .complete_idempotency(&held.principal, &held.key, &stored, expires)
                    .await
            }
            _ => {
                self.store
                    .release_idempotency(&held.principal, &held.key)
                    .await
            }
        };
        if let Err(e) = r {
            // The lease still runs out, so a retry is delayed, never blocked forever.
            tracing::warn!(error = %e, "cannot record the idempotent answer");
        }
        self.notify(&held.principal, &held.key).notify_waiters();
    }

    /// Deletes expired records (run now and then in the background).
    pub async fn purge(&self) {
        match self.store.purge_idempotency(now_ms()).await {
            Ok(n) if n > 0 => tracing::debug!(purged = n, "expired idempotency keys deleted"),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot purge idempotency keys"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for v in values {
            h.append(HEADER, http::HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn keys_are_checked() {
        assert_eq!(key_of(&headers(&[])).unwrap(), None);
        assert_eq!(key_of(&headers(&["abc-1"])).unwrap(), Some("abc-1"));
        assert_eq!(key_of(&headers(&["\"abc-1\""])).unwrap(), Some("abc-1"));
        for bad in [vec![""], vec!["\"\""], vec!["a", "b"]] {
            let e = key_of(&headers(&bad)).unwrap_err();
            assert_eq!(e.status(), 400, "{bad:?}");
            assert_eq!(e.code(), "GATEWAY::INVALID_IDEMPOTENCY_KEY");
        }
        let long = "k".repeat(MAX_KEY + 1);
        assert_eq!(key_of(&headers(&[&long])).unwrap_err().status(), 400);
        assert!(key_of(&headers(&[&"k".repeat(MAX_KEY)])).unwrap().is_some());
        assert_ne!(fingerprint(b"{}"), fingerprint(b"{ }"));
    }
}
