//! `[sandbox_identity]` (sandbox principals; off unless the section is present) and
//! `[signing]` (the key ring's rotation).
//!
//! ```toml
//! [sandbox_identity]
//! issuer = "gatehouse"          # `iss` of sandbox tokens
//! audience = "gatehouse"        # `aud` of sandbox tokens
//! token_minutes = 15            # lifetime of one token
//! role = "sandbox"              # the role table's role of sandbox principals
//! push = true                   # Docker: hand each new sandbox its token via the backend
//!
//! [sandbox_identity.kubernetes] # pull: POST /auth/sandbox/token with a projected SA token
//! # kubeconfig_path = "/etc/gatehouse/kubeconfig"   # else in-cluster / KUBECONFIG
//! audience = "gatehouse"        # the projected token's audience
//! namespaces = ["sandboxes"]    # where sandbox pods may run
//! service_account = "sandbox"   # the ServiceAccount sandbox pods run as
//! timeout_ms = 5000
//!
//! [signing]
//! rotate_after_seconds = 86400  # a key signs this long
//! publish_ahead_seconds = 600   # its successor is in the JWKS this long before it signs
//! refresh_seconds = 30          # how often each replica re-reads the keys
//! ```

use gatehouse_config::ConfigError;
use serde::Deserialize;
use std::path::PathBuf;

/// `[sandbox_identity]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxIdentityConfig {
    /// `iss` of the tokens.
    pub issuer: String,
    /// `aud` of the tokens.
    pub audience: String,
    /// Lifetime of a token, minutes (1 to 1440).
    pub token_minutes: u64,
    /// The role sandbox principals get.
    pub role: String,
    /// Whether a sandbox created through the gateway gets its token pushed to the backend
    /// (`PUT /gatehouse/ext/v1/sandboxes/{id}/identity`) and re-pushed before expiry.
    pub push: bool,
    /// The Kubernetes pull bootstrap (`POST /auth/sandbox/token`), when set.
    pub kubernetes: Option<SandboxKubernetesConfig>,
}

impl Default for SandboxIdentityConfig {
    fn default() -> Self {
        Self {
            issuer: "gatehouse".into(),
            audience: "gatehouse".into(),
            token_minutes: 15,
            role: "sandbox".into(),
            push: true,
            kubernetes: None,
        }
    }
}

/// `[sandbox_identity.kubernetes]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxKubernetesConfig {
    /// Kubeconfig of the API server to ask; in-cluster or `KUBECONFIG` when unset.
    pub kubeconfig_path: Option<PathBuf>,
    /// The audience the projected ServiceAccount token must carry.
    pub audience: String,
    /// Namespaces sandbox pods may run in.
    pub namespaces: Vec<String>,
    /// The ServiceAccount sandbox pods run as.
    pub service_account: String,
    /// Deadline of each API call, milliseconds.
    pub timeout_ms: u64,
}

impl Default for SandboxKubernetesConfig {
    fn default() -> Self {
        Self {
            kubeconfig_path: None,
            audience: "gatehouse".into(),
            namespaces: Vec::new(),
            service_account: "sandbox".into(),
            timeout_ms: 5000,
        }
    }
}

impl SandboxIdentityConfig {
    /// Makes `kubeconfig_path` relative to `base` (the config file's directory).
    pub fn resolve_relative(&mut self, base: &std::path::Path) {
        if let Some(k) = self.kubernetes.as_mut() {
            if let Some(p) = k.kubeconfig_path.as_mut().filter(|p| p.is_relative()) {
                *p = base.join(&*p);
            }
        }
    }

    /// Checks the section; the error names the bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |k: &str, m: &str| Err(ConfigError::invalid(k, m.to_owned()));
        if self.issuer.trim().is_empty() {
            return bad("sandbox_identity.issuer", "must not be empty");
        }
        if self.audience.trim().is_empty() {
            return bad("sandbox_identity.audience", "must not be empty");
        }
        if !(1..=1440).contains(&self.token_minutes) {
            return bad(
                "sandbox_identity.token_minutes",
                "must be between 1 and 1440",
            );
        }
        if self.role.trim().is_empty() {
            return bad(
                "sandbox_identity.role",
                "must name a role of the role table",
            );
        }
        if let Some(k) = &self.kubernetes {
            if k.audience.trim().is_empty() {
                return bad("sandbox_identity.kubernetes.audience", "must not be empty");
            }
            if k.namespaces.is_empty() || k.namespaces.iter().any(|n| n.trim().is_empty()) {
                return bad(
                    "sandbox_identity.kubernetes.namespaces",
                    "must list at least one namespace",
                );
            }
            if k.service_account.trim().is_empty() {
                return bad(
                    "sandbox_identity.kubernetes.service_account",
                    "must not be empty",
                );
            }
            if k.timeout_ms == 0 {
                return bad(
                    "sandbox_identity.kubernetes.timeout_ms",
                    "must be at least 1",
                );
            }
        }
        Ok(())
    }

    /// The lifetime of one token.
    pub fn token_lifetime(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.token_minutes * 60)
    }
}

/// `[signing]`: rotation of the key ring (ignored with `server.caller_key_file`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigningConfig {
    /// How long a key signs, seconds.
    pub rotate_after_seconds: u64,
    /// How long before its first signature a key is published, seconds.
    pub publish_ahead_seconds: u64,
    /// How often each replica re-reads the keys, seconds.
    pub refresh_seconds: u64,
}

impl Default for SigningConfig {
    fn default() -> Self {
        Self {
            rotate_after_seconds: 86_400,
            publish_ahead_seconds: 600,
            refresh_seconds: 30,
        }
    }
}

impl SigningConfig {
    /// Checks the section; the error names the bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.refresh_seconds == 0 {
            return Err(ConfigError::invalid(
                "signing.refresh_seconds",
                "must be at least 1",
            ));
        }
        if self.publish_ahead_seconds < 2 * self.refresh_seconds {
            return Err(ConfigError::invalid(
                "signing.publish_ahead_seconds",
                "must be at least twice signing.refresh_seconds, so every replica sees a key before it signs",
            ));
        }
        if self.rotate_after_seconds <= self.publish_ahead_seconds {
            return Err(ConfigError::invalid(
                "signing.rotate_after_seconds",
                "must be longer than signing.publish_ahead_seconds",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_errors_name_the_key() {
        assert!(SandboxIdentityConfig::default().validate().is_ok());
        assert!(SigningConfig::default().validate().is_ok());
        let c = SandboxIdentityConfig {
            token_minutes: 0,
            ..Default::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("sandbox_identity.token_minutes"));
        let c = SandboxIdentityConfig {
            kubernetes: Some(SandboxKubernetesConfig::default()),
            ..Default::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("sandbox_identity.kubernetes.namespaces"));
        let s = SigningConfig {
            publish_ahead_seconds: 10,
            ..Default::default()
        };
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("signing.publish_ahead_seconds"));
        let e = toml::from_str::<SandboxIdentityConfig>("token_minuts = 3").unwrap_err();
        assert!(e.to_string().contains("token_minuts"));
    }
}
