//! Quotas per team and per user: live sandboxes, total CPU and memory, longest timeout.
//!
//! Checked on every scoped create (service_admin and the backend's key are not scoped,
//! so not limited). Use is counted from the backend's own list of the team's (or the
//! user's) sandboxes, so it is right after deletes and expiry and across gateway
//! replicas; the CPU and memory of each live sandbox come from the ledger the gateway
//! writes to the store when a create succeeds (the backend's list does not show
//! `resourceLimits`). Creates of one team are serialized while the check and the create
//! run: on this replica by a mutex, across replicas by the store's quota lock (a
//! PostgreSQL advisory lock), so a team quota of 2 is 2 however the creates are spread.

use crate::backend_client::BackendClient;
use crate::error::GatewayError;
use gatehouse_scope::{Scope, ScopeKeys, ScopeMode};
use gatehouse_store::{LedgerEntry, QuotaLimits, QuotaLock, QuotaStore};
use serde::Serialize;
use std::sync::Arc;

/// Use of one team or user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Live sandboxes.
    pub sandboxes: u64,
    /// CPU of the live sandboxes, millicores.
    pub cpu_millis: u64,
    /// Memory of the live sandboxes, bytes.
    pub memory_bytes: u64,
}

/// What a create asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ask {
    /// CPU, millicores.
    pub cpu_millis: u64,
    /// Memory, bytes.
    pub memory_bytes: u64,
    /// `timeout`, seconds (`None`: the backend's default).
    pub timeout_seconds: Option<u64>,
}

impl Ask {
    /// Reads a create body; `None` when it is not one (the backend then refuses it).
    pub fn of(body: &[u8]) -> Option<Ask> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Create {
            timeout: Option<i64>,
            resource_limits: Option<std::collections::BTreeMap<String, String>>,
        }
        let c: Create = serde_json::from_slice(body).ok()?;
        let limits = c.resource_limits.unwrap_or_default();
        let cpu = limits
            .get("cpu")
            .and_then(|q| gatehouse_lifecycle::validate::cpu_nanos(q).ok())
            .map_or(0, |n| u64::try_from(n / 1_000_000).unwrap_or(0));
        let memory = limits
            .get("memory")
            .and_then(|q| gatehouse_lifecycle::validate::memory_bytes(q).ok())
            .map_or(0, |n| u64::try_from(n).unwrap_or(0));
        Some(Ask {
            cpu_millis: cpu,
            memory_bytes: memory,
            timeout_seconds: c.timeout.map(|t| u64::try_from(t).unwrap_or(0)),
        })
    }
}

/// A create admitted by the quotas: the team's locks (this replica's and the store's),
/// held until the create has answered, and the ledger row to record when it succeeds.
#[derive(Debug)]
pub struct Admission {
    // Field order is drop order: the shared lock goes before the local one, so the next
    // create on this replica finds it free.
    _shared: QuotaLock,
    _lock: tokio::sync::OwnedMutexGuard<()>,
    entry: LedgerEntry,
}

/// The quotas of this gateway.
pub struct Quotas {
    store: Arc<dyn QuotaStore>,
    team: QuotaLimits,
    user: QuotaLimits,
    locks: moka::sync::Cache<String, Arc<tokio::sync::Mutex<()>>>,
    /// Teams' stored overrides (`None`: none stored), read at most once per
    /// [`OVERRIDE_TTL`]: a create does not wait for the store to learn that nothing
    /// changed.
    overrides: moka::sync::Cache<String, Option<QuotaLimits>>,
}

/// How long a team's stored override is reused: one set through another replica applies
/// within this time (at once on the replica that set it).
pub const OVERRIDE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// A caller's quotas and use, as `GET /gatehouse/v1/quotas` shows them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The team (`None` without one).
    pub team: Option<String>,
    /// The user.
    pub user: String,
    /// The team's limits (defaults with the team's override applied).
    pub team_limits: QuotaLimits,
    /// The team's use.
    pub team_usage: Usage,
    /// The user's limits.
    pub user_limits: QuotaLimits,
    /// The user's use.
    pub user_usage: Usage,
}

fn over(what: &str, who: &str, quota: &str, limit: u64, used: u64, asked: u64) -> GatewayError {
    GatewayError::new(
        403,
        "GATEWAY::QUOTA_EXCEEDED",
        format!(
            "{who}'s quota {quota} is {limit}; {used} in use and this create asks for {asked} \
             more {what}. Delete sandboxes or ask an administrator for more."
        ),
    )
}

fn check_one(limits: &QuotaLimits, used: &Usage, ask: &Ask, who: &str) -> Result<(), GatewayError> {
    if let (Some(max), Some(t)) = (limits.max_timeout_seconds, ask.timeout_seconds) {
        if t > max {
            return Err(GatewayError::new(
                403,
                "GATEWAY::QUOTA_EXCEEDED",
                format!("{who}'s quota maxTimeoutSeconds is {max}; this create asks for {t}."),
            ));
        }
    }
    if let Some(max) = limits.max_sandboxes {
        if used.sandboxes + 1 > max {
            return Err(over(
                "sandbox(es)",
                who,
                "maxSandboxes",
                max,
                used.sandboxes,
                1,
            ));
        }
    }
    if let Some(max) = limits.max_cpu_millis {
        if used.cpu_millis + ask.cpu_millis > max {
            return Err(over(
                "millicores",
                who,
                "maxCpuMillis",
                max,
                used.cpu_millis,
                ask.cpu_millis,
            ));
        }
    }
    if let Some(max) = limits.max_memory_bytes {
        if used.memory_bytes + ask.memory_bytes > max {
            return Err(over(
                "bytes",
                who,
                "maxMemoryBytes",
                max,
                used.memory_bytes,
                ask.memory_bytes,
            ));
        }
    }
    Ok(())
}

/// Each limit of `over` that is set replaces the one of `base`.
fn overlay(base: QuotaLimits, over: &QuotaLimits) -> QuotaLimits {
    QuotaLimits {
        max_sandboxes: over.max_sandboxes.or(base.max_sandboxes),
        max_cpu_millis: over.max_cpu_millis.or(base.max_cpu_millis),
        max_memory_bytes: over.max_memory_bytes.or(base.max_memory_bytes),
        max_timeout_seconds: over.max_timeout_seconds.or(base.max_timeout_seconds),
    }
}

fn unavailable() -> GatewayError {
    GatewayError::new(
        503,
        "GATEWAY::QUOTA_UNAVAILABLE",
        "Quota use cannot be counted right now; retry later.",
    )
    .with_retry_after(2)
}

fn is_unlimited(l: &QuotaLimits) -> bool {
    *l == QuotaLimits::default()
}

impl Quotas {
    /// Quotas with these defaults, overrides and ledger in `store`.
    pub fn new(store: Arc<dyn QuotaStore>, team: QuotaLimits, user: QuotaLimits) -> Self {
        Self {
            store,
            team,
            user,
            locks: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(std::time::Duration::from_secs(600))
                .build(),
            overrides: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(OVERRIDE_TTL)
                .build(),
        }
    }

    /// Forgets the cached override of `team` (it was just set or removed here).
    pub fn override_changed(&self, team: &str) {
        self.overrides.invalidate(team);
    }

    /// The store (for the quota routes).
    pub fn store(&self) -> &Arc<dyn QuotaStore> {
        &self.store
    }

    /// The team's limits: the defaults with the stored override applied.
    pub async fn team_limits(&self, team: Option<&str>) -> Result<QuotaLimits, GatewayError> {
        let Some(team) = team else {
            return Ok(self.team);
        };
        let stored = match self.overrides.get(team) {
            Some(cached) => cached,
            None => {
                let read = self.store.team_quota(team).await.map_err(|e| {
                    tracing::warn!(error = %e, "team quota lookup failed");
                    unavailable()
                })?;
                let limits = read.map(|q| q.limits);
                self.overrides.insert(team.to_owned(), limits);
                limits
            }
        };
        Ok(stored.map_or(self.team, |o| overlay(self.team, &o)))
    }

    /// The live sandboxes of the caller's team (or of the caller, without a team), as
    /// `(team use, user use)`.
    async fn usage(
        &self,
        backend: &BackendClient,
        keys: &ScopeKeys,
        subject: &str,
        team: Option<&str>,
        request_id: &str,
    ) -> Result<(Usage, Usage), GatewayError> {
        let scope = Scope::for_principal(subject, team, ScopeMode::Team);
        let live = backend
            .live_sandboxes(&scope, keys, request_id)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "quota count: backend list failed");
                unavailable()
            })?;
        let ledger = self.store.ledger(team, &scope.owner).await.map_err(|e| {
            tracing::warn!(error = %e, "quota count: ledger read failed");
            unavailable()
        })?;
        let mut t = Usage::default();
        let mut u = Usage::default();
        for (id, owner) in &live {
            let row = ledger.iter().find(|r| &r.sandbox_id == id);
            let (cpu, mem) = row.map_or((0, 0), |r| (r.cpu_millis, r.memory_bytes));
            t.sandboxes += 1;
            t.cpu_millis += cpu;
            t.memory_bytes += mem;
            if owner.as_deref() == Some(scope.owner.as_str()) {
                u.sandboxes += 1;
                u.cpu_millis += cpu;
                u.memory_bytes += mem;
            }
        }
        let gone: Vec<String> = ledger
            .iter()
            .filter(|r| !live.iter().any(|(id, _)| id == &r.sandbox_id))
            .filter(|r| chrono::Utc::now().timestamp_millis() - r.created_ms > 60_000)
            .map(|r| r.sandbox_id.clone())
            .collect();
        if !gone.is_empty() {
            if let Err(e) = self.store.forget_sandboxes(&gone).await {
                tracing::debug!(error = %e, "cannot prune the quota ledger");
            }
        }
        Ok((t, u))
    }

    /// Checks a create of `body` by `subject` of `team`; the admission to hold until the
    /// create has answered, or `None` when no quota is configured.
    pub async fn admit(
        &self,
        backend: &BackendClient,
        keys: &ScopeKeys,
        subject: &str,
        team: Option<&str>,
        body: &[u8],
        request_id: &str,
    ) -> Result<Option<Admission>, GatewayError> {
        let team_limits = self.team_limits(team).await?;
        if is_unlimited(&team_limits) && is_unlimited(&self.user) {
            return Ok(None);
        }
        let Some(ask) = Ask::of(body) else {
            return Ok(None);
        };
        let scope = Scope::for_principal(subject, team, ScopeMode::Team);
        let lock_key = team.map_or_else(
            || format!("user\n{}", scope.owner),
            |t| format!("team\n{t}"),
        );
        let lock = self
            .locks
            .get_with(lock_key.clone(), || Arc::new(tokio::sync::Mutex::new(())));
        let guard = lock.lock_owned().await;
        let shared = self.store.lock_quota(&lock_key).await.map_err(|e| {
            tracing::warn!(error = %e, "quota lock: store unavailable");
            unavailable()
        })?;
        let (t, u) = self.usage(backend, keys, subject, team, request_id).await?;
        let team_name = team.map_or_else(|| format!("User '{subject}'"), |t| format!("Team '{t}'"));
        check_one(&team_limits, &t, &ask, &team_name)?;
        check_one(&self.user, &u, &ask, &format!("User '{subject}'"))?;
        Ok(Some(Admission {
            _shared: shared,
            _lock: guard,
            entry: LedgerEntry {
                sandbox_id: String::new(),
                team: team.map(str::to_owned),
                owner: scope.owner,
                cpu_millis: ask.cpu_millis,
                memory_bytes: ask.memory_bytes,
                created_ms: chrono::Utc::now().timestamp_millis(),
            },
        }))
    }

    /// Records the sandbox an admitted create made, then lets the team's next create in.
    pub async fn created(&self, admission: Admission, sandbox_id: &str) {
        let mut entry = admission.entry;
        entry.sandbox_id = sandbox_id.to_owned();
        if let Err(e) = self.store.record_sandbox(&entry).await {
            tracing::warn!(error = %e, sandbox.id = sandbox_id, "cannot record the sandbox in the quota ledger");
        }
    }

    /// The caller's quotas and use.
    pub async fn report(
        &self,
        backend: &BackendClient,
        keys: &ScopeKeys,
        subject: &str,
        team: Option<&str>,
        request_id: &str,
    ) -> Result<Report, GatewayError> {
        let team_limits = self.team_limits(team).await?;
        let (t, u) = self.usage(backend, keys, subject, team, request_id).await?;
        Ok(Report {
            team: team.map(str::to_owned),
            user: subject.to_owned(),
            team_limits,
            team_usage: t,
            user_limits: self.user,
            user_usage: u,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_and_limits() {
        let ask =
            Ask::of(br#"{"timeout":600,"resourceLimits":{"cpu":"500m","memory":"64Mi"}}"#).unwrap();
        assert_eq!(ask.cpu_millis, 500);
        assert_eq!(ask.memory_bytes, 64 << 20);
        assert_eq!(ask.timeout_seconds, Some(600));
        let limits = QuotaLimits {
            max_sandboxes: Some(2),
            max_cpu_millis: Some(1000),
            ..Default::default()
        };
        let used = Usage {
            sandboxes: 1,
            cpu_millis: 500,
            memory_bytes: 0,
        };
        assert!(check_one(&limits, &used, &ask, "Team 't'").is_ok());
        let full = Usage {
            sandboxes: 2,
            ..used
        };
        let e = check_one(&limits, &full, &ask, "Team 't'").unwrap_err();
        assert_eq!((e.status(), e.code()), (403, "GATEWAY::QUOTA_EXCEEDED"));
        assert!(e.0.message.contains("maxSandboxes is 2; 2 in use"), "{e:?}");
        let cpu = Usage {
            cpu_millis: 600,
            ..used
        };
        let e = check_one(&limits, &cpu, &ask, "Team 't'").unwrap_err();
        assert!(
            e.0.message.contains("maxCpuMillis is 1000; 600 in use"),
            "{e:?}"
        );
        let short = QuotaLimits {
            max_timeout_seconds: Some(300),
            ..Default::default()
        };
        assert!(check_one(&short, &Usage::default(), &ask, "User 'u'").is_err());
        let merged = overlay(
            limits,
            &QuotaLimits {
                max_sandboxes: Some(5),
                ..Default::default()
            },
        );
        assert_eq!(
            (merged.max_sandboxes, merged.max_cpu_millis),
            (Some(5), Some(1000))
        );
    }
}
