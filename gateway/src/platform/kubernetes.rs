//! `[platform.kubernetes]`: platform controllers authenticated by a Kubernetes
//! ServiceAccount token (TokenReview), besides (or instead of) a named key.
//!
//! ```toml
//! [platform.kubernetes]
//! # kubeconfig_path = "/etc/gatehouse/kubeconfig"  # else in-cluster / KUBECONFIG
//! audience = "gatehouse-platform"     # the controller's token must carry it
//! # issuer = "https://kubernetes.default.svc"    # only tokens claiming this iss are looked at
//! role = "platform_controller"        # the role of every controller principal
//! cache_seconds = 300                 # a review is remembered this long (never past exp)
//! timeout_ms = 5000                   # deadline of each TokenReview
//!
//! [[platform.controllers]]
//! name = "onboarding"
//! kubernetes_service_accounts = ["platform/onboarding"]   # namespace/name
//! ```
//!
//! [`build`] makes the chain's [`ServiceAccountAuthenticator`] from it, reusing
//! [`TokenReviewer`] (the client of the sandbox pull bootstrap).

use super::config::PlatformSection;
use gatehouse_authn::kubernetes::{
    ServiceAccountAuthenticator, ServiceAccountSettings, TokenReviewer,
};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[platform.kubernetes]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlatformKubernetesConfig {
    /// Kubeconfig of the API server to ask; in-cluster or `KUBECONFIG` when unset.
    pub kubeconfig_path: Option<PathBuf>,
    /// The audience a controller's token must carry (never the API server's own).
    pub audience: String,
    /// When set, only bearer tokens whose (unverified) `iss` is this are reviewed.
    pub issuer: Option<String>,
    /// The role controller principals get.
    pub role: String,
    /// Longest a TokenReview answer is remembered, seconds (1 to 3600).
    pub cache_seconds: u64,
    /// Deadline of each TokenReview, milliseconds.
    pub timeout_ms: u64,
}

impl Default for PlatformKubernetesConfig {
    fn default() -> Self {
        Self {
            kubeconfig_path: None,
            audience: String::new(),
            issuer: None,
            role: "platform_controller".into(),
            cache_seconds: 300,
            timeout_ms: 5000,
        }
    }
}

impl PlatformKubernetesConfig {
    /// Checks the section: `(dotted key, message)` on the first problem.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: &str| Err((format!("platform.kubernetes.{k}"), m.to_owned()));
        if self.audience.trim().is_empty() {
            return bad(
                "audience",
                "must name the audience controllers request their token for (not the API server's)",
            );
        }
        if self.issuer.as_deref().is_some_and(|i| i.trim().is_empty()) {
            return bad("issuer", "must not be empty when set");
        }
        if self.role.trim().is_empty() {
            return bad("role", "must name a role of the role table");
        }
        if !(1..=3600).contains(&self.cache_seconds) {
            return bad("cache_seconds", "must be between 1 and 3600");
        }
        if self.timeout_ms == 0 {
            return bad("timeout_ms", "must be at least 1");
        }
        if self
            .kubeconfig_path
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return bad("kubeconfig_path", "must not be empty when set");
        }
        Ok(())
    }
}

use gatehouse_lifecycle::validate::is_dns_label;

/// Whether `s` is `namespace/name` of a ServiceAccount.
pub fn is_service_account_ref(s: &str) -> bool {
    s.split_once('/')
        .is_some_and(|(ns, name)| is_dns_label(ns) && is_dns_label(name))
}

/// The chain's ServiceAccount authenticator, when `[platform.kubernetes]` is set.
pub fn build(
    section: &PlatformSection,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Option<ServiceAccountAuthenticator>> {
    use anyhow::Context;
    let Some(k) = &section.kubernetes else {
        return Ok(None);
    };
    let reviewer = rt
        .block_on(TokenReviewer::from_kubeconfig(
            k.kubeconfig_path.as_deref(),
            Duration::from_millis(k.timeout_ms),
        ))
        .context("platform.kubernetes")?;
    let controllers = section
        .controllers
        .iter()
        .flat_map(|c| {
            c.kubernetes_service_accounts
                .iter()
                .map(|sa| (sa.clone(), c.name.clone()))
        })
        .collect();
    Ok(Some(ServiceAccountAuthenticator::new(
        reviewer,
        ServiceAccountSettings {
            audience: k.audience.clone(),
            issuer: k.issuer.clone(),
            controllers,
            role: k.role.clone(),
            cache_ttl: Duration::from_secs(k.cache_seconds),
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_key() {
        let ok = PlatformKubernetesConfig {
            audience: "gatehouse-platform".into(),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        assert_eq!(
            PlatformKubernetesConfig::default()
                .validate()
                .unwrap_err()
                .0,
            "platform.kubernetes.audience"
        );
        let c = PlatformKubernetesConfig {
            cache_seconds: 0,
            ..ok.clone()
        };
        assert_eq!(
            c.validate().unwrap_err().0,
            "platform.kubernetes.cache_seconds"
        );
        let c = PlatformKubernetesConfig {
            issuer: Some(" ".into()),
            ..ok
        };
        assert_eq!(c.validate().unwrap_err().0, "platform.kubernetes.issuer");
        let shared = toml::from_str::<crate::config::GatewayConfig>(
            "[sandbox_identity.kubernetes]\naudience = \"gh\"\nnamespaces = [\"s\"]\n\
             [platform.kubernetes]\naudience = \"gh\"\n\
             [[platform.controllers]]\nname = \"a\"\nkubernetes_service_accounts = [\"p/a\"]\n",
        )
        .unwrap();
        let e = shared.validate().unwrap_err().to_string();
        assert!(e.contains("platform.kubernetes.audience"), "{e}");
        assert!(is_service_account_ref("platform/onboarding"));
        for bad in ["onboarding", "platform/", "/x", "Platform/x", "a/b/c"] {
            assert!(!is_service_account_ref(bad), "{bad}");
        }
    }
}
