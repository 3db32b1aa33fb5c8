//! Automation limits: idempotent create ([`idempotency`]), quotas per team and user
//! ([`quota`]) and rate limits per principal ([`rate`]), configured by `[quotas]` and
//! `[rate_limits]` ([`config`]) and kept in the governance store where they must hold
//! across replicas.
//!
//! The pipeline calls in three places: [`Gateway::rate_limit`] right after
//! authentication, [`Gateway::admit_create`] when a create is admitted (replay, quota),
//! and [`Gateway::finish_create`] when the backend has answered it.

pub mod config;
pub mod idempotency;
mod live;
pub mod quota;
pub mod rate;

use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::http::inbound::Inbound;
use crate::reply::Reply;
use crate::state::Gateway;
use bytes::Bytes;
use std::sync::Arc;

/// The limits of one gateway.
pub struct Limits {
    /// Idempotency records.
    pub idempotency: idempotency::Idempotency,
    /// Quotas.
    pub quotas: quota::Quotas,
    /// Rate limits.
    pub rate: rate::RateLimits,
}

/// What a create holds while it runs: the idempotency claim and the quota admission.
#[derive(Debug, Default)]
pub struct CreateHold {
    /// The claimed key, to complete or release.
    pub idempotency: Option<idempotency::Held>,
    /// The quota admission (the team's lock and the ledger row).
    pub quota: Option<quota::Admission>,
    /// The created sandbox's answer body, kept for the idempotency record.
    pub answer: Option<Bytes>,
}

impl CreateHold {
    /// Whether anything is held.
    pub fn is_held(&self) -> bool {
        self.idempotency.is_some() || self.quota.is_some()
    }
}

impl Limits {
    /// The limits over `store` with the configured defaults.
    pub fn new(
        store: gatehouse_store::LimitsStores,
        quotas: &config::QuotasSection,
        rate: &config::RateLimitsSection,
    ) -> Result<Self, (String, String)> {
        let team = quotas.team.limits("quotas.team")?;
        let user = quotas.user.limits("quotas.user")?;
        Ok(Self {
            idempotency: idempotency::Idempotency::new(store.idempotency),
            quotas: quota::Quotas::new(store.quotas, team, user),
            rate: rate::RateLimits::new(rate),
        })
    }

    /// Background upkeep on `rt`: idle rate-limit buckets are dropped every minute and
    /// expired idempotency keys purged every ten.
    pub fn spawn_upkeep(self: &Arc<Self>, rt: &tokio::runtime::Handle) {
        let me = Arc::downgrade(self);
        rt.spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                let Some(l) = me.upgrade() else { return };
                l.rate.retain_recent();
                if n % 10 == 0 {
                    l.idempotency.purge().await;
                }
                n += 1;
            }
        });
    }
}

/// The scope of an idempotency key: who is calling.
fn principal_id(ctx: &RequestCtx) -> String {
    let p = &ctx.principal;
    format!("{}:{}", p.method.as_str(), p.subject)
}

impl Gateway {
    /// The caller's rate limit: one token, or 429 with `Retry-After`.
    pub(crate) fn rate_limit(&self, ctx: &RequestCtx) -> Result<(), GatewayError> {
        self.limits
            .rate
            .check(&ctx.principal, ctx.role.as_deref())
            .map_err(|l| l.error())
    }

    /// An admitted create: a replayed answer for a known `Idempotency-Key`, a quota
    /// refusal, or `None` to forward it (holding the claim and the admission in `ctx`).
    pub(crate) async fn admit_create(
        &self,
        req: &mut Inbound,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Reply>, GatewayError> {
        let key = idempotency::key_of(req.headers())?.map(str::to_owned);
        let scoped = ctx.scope.is_some();
        if key.is_none() && !scoped {
            return Ok(None);
        }
        let original = req.read_body(self.max_body).await.map_err(|_| {
            GatewayError::new(
                400,
                "GATEWAY::INVALID_BODY",
                "The request body could not be read.",
            )
        })?;
        if let Some(key) = key {
            let who = principal_id(ctx);
            match self.limits.idempotency.begin(&who, &key, &original).await? {
                idempotency::Begin::Replay(r) => return Ok(Some(r)),
                idempotency::Begin::Run(held) => ctx.create.idempotency = Some(held),
            }
        }
        if scoped {
            let p = &ctx.principal;
            let admitted = self
                .limits
                .quotas
                .admit(
                    &self.backend,
                    &self.keys,
                    &p.subject,
                    p.team.as_deref(),
                    &original,
                    &ctx.request_id,
                )
                .await;
            match admitted {
                Ok(a) => ctx.create.quota = a,
                Err(e) => {
                    self.finish_create(ctx, None).await;
                    return Err(e);
                }
            }
        }
        Ok(None)
    }

    /// The backend answered a held create with `status` (`None`: it failed): record the
    /// sandbox in the quota ledger and the answer for retries, or release the key.
    pub(crate) async fn finish_create(&self, ctx: &mut RequestCtx, status: Option<u16>) {
        let hold = std::mem::take(&mut ctx.create);
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        if let (Some(admission), Some(id), true) = (hold.quota, ctx.created_id.as_deref(), ok) {
            self.limits.quotas.created(admission, id).await;
        }
        if let Some(held) = &hold.idempotency {
            let answer = match (status, &hold.answer) {
                (Some(s), Some(body)) => Some((s, body)),
                _ => None,
            };
            self.limits.idempotency.finish(held, answer).await;
        }
    }
}
