//! `[quotas]` and `[rate_limits]`: the defaults of the automation limits
//! ([`crate::limits`]). Both are empty (no limit) unless configured.

use gatehouse_store::QuotaLimits;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Default limits of one team or user, as written in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaDefaults {
    /// Most live sandboxes.
    pub max_sandboxes: Option<u64>,
    /// Most CPU over all live sandboxes, a Kubernetes quantity (`"4"`, `"2500m"`).
    pub max_cpu: Option<String>,
    /// Most memory over all live sandboxes, a Kubernetes quantity (`"8Gi"`).
    pub max_memory: Option<String>,
    /// Longest `timeout` a create may ask for, seconds.
    pub max_timeout_seconds: Option<u64>,
}

impl QuotaDefaults {
    /// The limits in store units; `key` (`quotas.team`) names a bad value.
    pub fn limits(&self, key: &str) -> Result<QuotaLimits, (String, String)> {
        let cpu = match &self.max_cpu {
            Some(q) => Some(
                gatehouse_lifecycle::validate::cpu_nanos(q)
                    .map(|n| u64::try_from(n / 1_000_000).unwrap_or(0))
                    .map_err(|_| {
                        (
                            format!("{key}.max_cpu"),
                            format!("'{q}' is not a CPU quantity like \"4\" or \"2500m\""),
                        )
                    })?,
            ),
            None => None,
        };
        let memory = match &self.max_memory {
            Some(q) => Some(
                gatehouse_lifecycle::validate::memory_bytes(q)
                    .map(|n| u64::try_from(n).unwrap_or(0))
                    .map_err(|_| {
                        (
                            format!("{key}.max_memory"),
                            format!("'{q}' is not a memory quantity like \"8Gi\" (at least 6Mi)"),
                        )
                    })?,
            ),
            None => None,
        };
        Ok(QuotaLimits {
            max_sandboxes: self.max_sandboxes,
            max_cpu_millis: cpu,
            max_memory_bytes: memory,
            max_timeout_seconds: self.max_timeout_seconds,
        })
    }
}

/// `[quotas]`: defaults per team and per user; a team's override in the store
/// (`PUT /gatehouse/v1/quotas/teams/{team}`) replaces the team defaults it sets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotasSection {
    /// `[quotas.team]`: every team's limits.
    pub team: QuotaDefaults,
    /// `[quotas.user]`: every user's limits (within their team's).
    pub user: QuotaDefaults,
}

impl QuotasSection {
    /// Checks the quantities; the error names the dotted key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.team.limits("quotas.team")?;
        self.user.limits("quotas.user")?;
        Ok(())
    }
}

/// One token bucket: `per_second` requests a second on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Bucket size: requests allowed at once after a quiet spell.
    pub burst: u32,
}

/// `[rate_limits]`: a token bucket per principal (API key, user, sandbox identity),
/// sized by the caller's role.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsSection {
    /// How many gateway replicas share the traffic: each enforces `1/replicas` of every
    /// limit, so a caller spread over all replicas sees the configured limit.
    pub replicas: u32,
    /// The bucket of roles without their own entry; unset: no limit for them.
    pub default: Option<RateLimit>,
    /// Buckets per role name (`[rate_limits.roles.operator]`).
    pub roles: BTreeMap<String, RateLimit>,
}

impl Default for RateLimitsSection {
    fn default() -> Self {
        Self {
            replicas: 1,
            default: None,
            roles: BTreeMap::new(),
        }
    }
}

impl RateLimitsSection {
    /// Checks the numbers; the error names the dotted key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.replicas == 0 {
            return Err(("rate_limits.replicas".into(), "must be at least 1".into()));
        }
        let named = self
            .roles
            .iter()
            .map(|(r, l)| (format!("rate_limits.roles.{r}"), l));
        let all = self
            .default
            .iter()
            .map(|l| ("rate_limits.default".to_string(), l))
            .chain(named);
        for (key, l) in all {
            if l.per_second == 0 {
                return Err((format!("{key}.per_second"), "must be at least 1".into()));
            }
            if l.burst == 0 {
                return Err((format!("{key}.burst"), "must be at least 1".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_named() {
        let q: QuotasSection = toml::from_str("[team]\nmax_cpu = \"lots\"\n").unwrap();
        assert_eq!(q.validate().unwrap_err().0, "quotas.team.max_cpu");
        let q: QuotasSection =
            toml::from_str("[user]\nmax_memory = \"1Gi\"\nmax_cpu = \"1500m\"\n").unwrap();
        let l = q.user.limits("quotas.user").unwrap();
        assert_eq!(l.max_cpu_millis, Some(1500));
        assert_eq!(l.max_memory_bytes, Some(1 << 30));
        let r: RateLimitsSection =
            toml::from_str("[roles.operator]\nper_second = 0\nburst = 3\n").unwrap();
        assert_eq!(
            r.validate().unwrap_err().0,
            "rate_limits.roles.operator.per_second"
        );
        let r: RateLimitsSection = toml::from_str("replicas = 0\n").unwrap();
        assert_eq!(r.validate().unwrap_err().0, "rate_limits.replicas");
        assert!(toml::from_str::<RateLimitsSection>("replica = 2\n").is_err());
    }
}
