//! [`RateLimits`]: one token bucket per principal (an API key, a user, a sandbox
//! identity), sized by the caller's role (`[rate_limits]`), GCRA from `governor`.
//!
//! A bucket is keyed by a 64-bit hash of who the caller is (kind, subject, key name)
//! under a per-process random seed, so the hot path hashes two short strings and
//! allocates nothing once a caller's bucket exists. Buckets of callers idle for a while
//! are dropped by [`RateLimits::retain_recent`].
//!
//! Replicas: the buckets live in each gateway process. With `replicas = N` every process
//! enforces `1/N` of each limit (rate and burst, rounded up), so a caller whose requests
//! are spread over the N replicas gets the configured limit in total, not N times it.

use super::config::{RateLimit, RateLimitsSection};
use crate::error::GatewayError;
use gatehouse_authn::Principal;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::num::NonZeroU32;
use std::time::Duration;

/// One role's limiter.
struct Bucket {
    limiter: DefaultKeyedRateLimiter<u64>,
    /// The configured (all-replica) limit, for `RateLimit-Limit`.
    limit: RateLimit,
}

/// The per-principal rate limits of this process.
pub struct RateLimits {
    by_role: HashMap<String, Bucket>,
    default: Option<Bucket>,
    seed: std::collections::hash_map::RandomState,
    clock: DefaultClock,
}

/// A refusal: when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Whole seconds until a request is allowed again (at least 1).
    pub retry_after: u64,
    /// The configured limit (burst) the caller ran into.
    pub limit: RateLimit,
}

/// The quota one replica enforces for `l` when `replicas` share the traffic.
pub fn replica_quota(l: RateLimit, replicas: u32) -> Option<Quota> {
    let replicas = replicas.max(1);
    let burst = NonZeroU32::new(l.burst.div_ceil(replicas).max(1))?;
    // One token every `replicas / per_second` seconds.
    let period = Duration::from_secs_f64(f64::from(replicas) / f64::from(l.per_second.max(1)));
    Quota::with_period(period).map(|q| q.allow_burst(burst))
}

impl RateLimits {
    /// The limits of `cfg`.
    pub fn new(cfg: &RateLimitsSection) -> Self {
        let bucket = |l: &RateLimit| {
            replica_quota(*l, cfg.replicas).map(|q| Bucket {
                limiter: governor::RateLimiter::keyed(q),
                limit: *l,
            })
        };
        Self {
            by_role: cfg
                .roles
                .iter()
                .filter_map(|(role, l)| bucket(l).map(|b| (role.clone(), b)))
                .collect(),
            default: cfg.default.as_ref().and_then(bucket),
            seed: std::collections::hash_map::RandomState::new(),
            clock: DefaultClock::default(),
        }
    }

    /// Whether any limit is configured.
    pub fn enabled(&self) -> bool {
        self.default.is_some() || !self.by_role.is_empty()
    }

    /// Takes one token from the caller's bucket, or says when to retry. Anonymous
    /// callers are not limited here (they only reach public routes or get a 401).
    pub fn check(&self, p: &Principal, role: Option<&str>) -> Result<(), Limited> {
        if p.is_anonymous() {
            return Ok(());
        }
        let bucket = role
            .and_then(|r| self.by_role.get(r))
            .or(self.default.as_ref());
        let Some(b) = bucket else {
            return Ok(());
        };
        let key = self.seed.hash_one((p.kind, &p.subject, &p.key_name));
        b.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            Limited {
                retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                limit: b.limit,
            }
            .at_least_one()
        })
    }

    /// Drops the buckets of callers that are full again (idle), to bound memory.
    pub fn retain_recent(&self) {
        for b in self.by_role.values().chain(self.default.iter()) {
            b.limiter.retain_recent();
            b.limiter.shrink_to_fit();
        }
    }
}

impl Limited {
    fn at_least_one(mut self) -> Self {
        self.retry_after = self.retry_after.max(1);
        self
    }

    /// The 429 answer: the API's error shape with `Retry-After` and the `RateLimit-*`
    /// headers (draft-ietf-httpapi-ratelimit-headers).
    pub fn error(&self) -> GatewayError {
        GatewayError::new(
            429,
            "GATEWAY::RATE_LIMITED",
            format!(
                "Rate limit exceeded: at most {} requests at once and {} per second for your \
                 role; retry in {} s.",
                self.limit.burst, self.limit.per_second, self.retry_after
            ),
        )
        .with_retry_after(self.retry_after)
        .with_header("ratelimit-limit", self.limit.burst.to_string())
        .with_header("ratelimit-remaining", "0".to_string())
        .with_header("ratelimit-reset", self.retry_after.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_authn::{AuthMethod, PrincipalKind};

    fn user(name: &str) -> Principal {
        Principal {
            kind: PrincipalKind::User,
            subject: name.into(),
            method: AuthMethod::ApiKey,
            ..Principal::anonymous()
        }
    }

    fn section(replicas: u32) -> RateLimitsSection {
        let mut s = RateLimitsSection {
            replicas,
            ..Default::default()
        };
        s.roles.insert(
            "operator".into(),
            RateLimit {
                per_second: 1,
                burst: 4,
            },
        );
        s
    }

    fn allowed(r: &RateLimits, p: &Principal) -> usize {
        (0..20)
            .take_while(|_| r.check(p, Some("operator")).is_ok())
            .count()
    }

    #[test]
    fn a_burst_is_cut_at_the_limit_per_principal() {
        let r = RateLimits::new(&section(1));
        assert!(r.enabled());
        let alice = user("alice");
        assert_eq!(allowed(&r, &alice), 4);
        let refused = r.check(&alice, Some("operator")).unwrap_err();
        assert!(refused.retry_after >= 1);
        let e = refused.error();
        assert_eq!(e.status(), 429);
        assert_eq!(e.code(), "GATEWAY::RATE_LIMITED");
        // Another principal has its own bucket; a role without a limit has none.
        assert_eq!(allowed(&r, &user("bob")), 4);
        assert!(r.check(&alice, Some("read_only")).is_ok());
        assert!(r.check(&Principal::anonymous(), Some("operator")).is_ok());
    }

    /// With N replicas each enforces 1/N: two replicas, each seeing half the caller's
    /// requests, let through the configured burst in total.
    #[test]
    fn replicas_share_one_limit() {
        let (a, b) = (RateLimits::new(&section(2)), RateLimits::new(&section(2)));
        let alice = user("alice");
        assert_eq!(allowed(&a, &alice) + allowed(&b, &alice), 4);
        let q = replica_quota(
            RateLimit {
                per_second: 10,
                burst: 5,
            },
            2,
        )
        .unwrap();
        assert_eq!(q.burst_size().get(), 3);
        assert_eq!(q.replenish_interval(), Duration::from_millis(200));
        assert!(!RateLimits::new(&RateLimitsSection::default()).enabled());
    }
}
