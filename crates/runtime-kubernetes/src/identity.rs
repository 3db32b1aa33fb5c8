//! `[kubernetes.sandbox_identity]`: project an audience-bound, pod-bound ServiceAccount
//! token into every sandbox pod, for the gateway's pull bootstrap (the sandbox sends it to
//! `POST /auth/sandbox/token` and gets its sandbox token back).
//!
//! ```toml
//! [kubernetes.sandbox_identity]
//! service_account = "sandbox"   # the pods' ServiceAccount (default: kubernetes.service_account)
//! audience = "gatehouse"        # = the gateway's [sandbox_identity.kubernetes] audience
//! expiration_seconds = 3600     # the kubelet refreshes the file before it expires (>= 600)
//! ```
//!
//! The pod then runs as that ServiceAccount (unless a create picks another allowed one),
//! its default API token is still not mounted (`automountServiceAccountToken: false`), and
//! a projected `serviceAccountToken` volume is mounted read-only at [`TOKEN_DIR`]; the
//! container's environment names the file ([`TOKEN_ENV`] = [`TOKEN_FILE`]). The token
//! cannot call the API server (its audience is the gateway's) and stops validating when
//! the pod is gone.

use k8s_openapi::api::core::v1::{
    EnvVar, ProjectedVolumeSource, ServiceAccountTokenProjection, Volume, VolumeMount,
    VolumeProjection,
};
use serde::Deserialize;

/// Where the token volume is mounted.
pub const TOKEN_DIR: &str = "/var/run/secrets/gatehouse";
/// The token file's name in [`TOKEN_DIR`].
pub const TOKEN_NAME: &str = "token";
/// The token file.
pub const TOKEN_FILE: &str = "/var/run/secrets/gatehouse/token";
/// The environment variable naming [`TOKEN_FILE`].
pub const TOKEN_ENV: &str = "GATEHOUSE_SERVICE_ACCOUNT_TOKEN_FILE";
/// The pod volume's name.
pub const VOLUME: &str = "gatehouse-identity";
/// Shortest lifetime the API server accepts for a projected token.
pub const MIN_EXPIRATION_SECONDS: i64 = 600;

/// `[kubernetes.sandbox_identity]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxIdentityProjection {
    /// The ServiceAccount sandbox pods run as; `kubernetes.service_account` when unset.
    pub service_account: Option<String>,
    /// The projected token's audience (the gateway's).
    pub audience: String,
    /// The projected token's lifetime, seconds (at least 600; the kubelet rotates it).
    pub expiration_seconds: i64,
}

impl Default for SandboxIdentityProjection {
    fn default() -> Self {
        Self {
            service_account: None,
            audience: String::new(),
            expiration_seconds: 3600,
        }
    }
}

impl SandboxIdentityProjection {
    /// Checks the section; `fallback_sa` is `kubernetes.service_account`. The message
    /// starts with the key (without the `kubernetes.` section).
    pub fn validate(&self, fallback_sa: Option<&str>) -> Result<(), String> {
        if self.audience.trim().is_empty() {
            return Err(
                "sandbox_identity.audience must name the gateway's audience ([sandbox_identity.kubernetes] audience)"
                    .into(),
            );
        }
        if self.expiration_seconds < MIN_EXPIRATION_SECONDS {
            return Err(format!(
                "sandbox_identity.expiration_seconds must be at least {MIN_EXPIRATION_SECONDS}"
            ));
        }
        match self.service_account.as_deref().or(fallback_sa) {
            None => Err(
                "sandbox_identity.service_account (or service_account) must name the ServiceAccount sandbox pods run as"
                    .into(),
            ),
            Some(sa) if !crate::config::is_dns_label(sa) => Err(format!(
                "sandbox_identity.service_account \"{sa}\" must be a DNS-1123 label"
            )),
            Some(_) => Ok(()),
        }
    }

    /// The projected token volume.
    pub fn volume(&self) -> Volume {
        Volume {
            name: VOLUME.into(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(vec![VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        audience: Some(self.audience.clone()),
                        expiration_seconds: Some(self.expiration_seconds),
                        path: TOKEN_NAME.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Its read-only mount in the sandbox container.
    pub fn mount(&self) -> VolumeMount {
        VolumeMount {
            name: VOLUME.into(),
            mount_path: TOKEN_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        }
    }

    /// The environment variable naming the token file.
    pub fn env(&self) -> EnvVar {
        EnvVar {
            name: TOKEN_ENV.into(),
            value: Some(TOKEN_FILE.into()),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_key() {
        let ok = SandboxIdentityProjection {
            audience: "gatehouse".into(),
            ..Default::default()
        };
        assert!(ok.validate(Some("sandbox")).is_ok());
        assert!(ok
            .validate(None)
            .unwrap_err()
            .starts_with("sandbox_identity.service_account"));
        let short = SandboxIdentityProjection {
            expiration_seconds: 60,
            ..ok.clone()
        };
        assert!(short
            .validate(Some("sandbox"))
            .unwrap_err()
            .starts_with("sandbox_identity.expiration_seconds"));
        assert!(SandboxIdentityProjection::default()
            .validate(Some("sandbox"))
            .unwrap_err()
            .starts_with("sandbox_identity.audience"));
        let bad_sa = SandboxIdentityProjection {
            service_account: Some("Bad_SA".into()),
            ..ok
        };
        assert!(bad_sa.validate(None).is_err());
        assert!(serde_json::from_str::<SandboxIdentityProjection>(r#"{"audiense":"x"}"#).is_err());
    }

    #[test]
    fn the_volume_mount_and_env_agree() {
        let p = SandboxIdentityProjection {
            audience: "gatehouse".into(),
            ..Default::default()
        };
        let v = p.volume();
        let t = v.projected.unwrap().sources.unwrap()[0]
            .service_account_token
            .clone()
            .unwrap();
        assert_eq!(t.audience.as_deref(), Some("gatehouse"));
        assert_eq!(t.expiration_seconds, Some(3600));
        assert_eq!(
            format!("{}/{}", p.mount().mount_path, t.path),
            p.env().value.unwrap()
        );
        assert_eq!(p.mount().read_only, Some(true));
    }
}
