//! Placement from the request's `extensions`, `driver_config`-style
//! ([`gatehouse_lifecycle::driver_config`]): a create may pick a RuntimeClass,
//! node-selector entries, tolerations, a ServiceAccount and Secret env refs, each only
//! within what the `[kubernetes]` section allows. Anything else under the `kubernetes.`
//! prefix is refused, so a request can never place a sandbox where the operator did not
//! mean it to go. (`kubernetes.namespace` is checked by the driver against the namespaces
//! it manages.)
//!
//! | extension key | value | allowed by |
//! |---|---|---|
//! | `kubernetes.runtimeClassName` | a name | `allowed_runtime_classes` |
//! | `kubernetes.nodeSelector` | JSON object of strings | `allowed_node_selector_keys` |
//! | `kubernetes.tolerations` | JSON array of Tolerations, each with a `key` | `allowed_toleration_keys` |
//! | `kubernetes.serviceAccountName` | a name | `allowed_service_accounts` |
//! | `kubernetes.secretEnv` | JSON array of `{"name","secretKeyRef":{"name","key"}}` | `allowed_secrets` |
//! | `kubernetes.secretEnvFrom` | JSON array of Secret names | `allowed_secrets` |
//! | `kubernetes.namespace` | a namespace | `namespace` + `namespace_allowlist` |

use crate::config::KubernetesConfig;
pub use gatehouse_lifecycle::driver_config::{
    SecretEnv, NAMESPACE, NODE_SELECTOR, PREFIX, RUNTIME_CLASS, SECRET_ENV, SECRET_ENV_FROM,
    SERVICE_ACCOUNT, TOLERATIONS,
};
use gatehouse_lifecycle::{driver_config, StringMap};
use k8s_openapi::api::core::v1::Toleration;
use std::collections::BTreeMap;

/// Where a sandbox pod may run, as validated from a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placement {
    /// RuntimeClass (the request's, else `runtime_class_name` from the configuration).
    pub runtime_class_name: Option<String>,
    /// Node-selector entries.
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations.
    pub tolerations: Vec<Toleration>,
    /// ServiceAccount (the request's, else `sandbox_identity.service_account`, else
    /// `service_account` from the configuration).
    pub service_account_name: Option<String>,
    /// Environment variables read from Secret keys.
    pub secret_env: Vec<SecretEnv>,
    /// Secrets whose every key becomes an environment variable.
    pub secret_env_from: Vec<String>,
}

fn listed(allowed: &[String]) -> String {
    if allowed.is_empty() {
        "none are allowed".into()
    } else {
        format!("allowed: {}", allowed.join(", "))
    }
}

fn allowed(key: &str, what: &str, value: &str, list: &[String]) -> Result<(), String> {
    if list.iter().any(|a| a == value) {
        Ok(())
    } else {
        Err(format!(
            "'{key}' {what} '{value}' is not allowed ({}).",
            listed(list)
        ))
    }
}

/// The placement `extensions` ask for, or why it is refused (shown to the client).
pub fn from_extensions(cfg: &KubernetesConfig, ext: &StringMap) -> Result<Placement, String> {
    let mut p = Placement {
        runtime_class_name: cfg.runtime_class_name.clone(),
        service_account_name: cfg
            .sandbox_identity
            .as_ref()
            .and_then(|si| si.service_account.clone())
            .or_else(|| cfg.service_account.clone()),
        ..Default::default()
    };
    for (key, value) in ext.iter().filter(|(k, _)| k.starts_with(PREFIX)) {
        match key.as_str() {
            RUNTIME_CLASS => {
                if !cfg.allowed_runtime_classes.contains(value) {
                    return Err(format!(
                        "'{RUNTIME_CLASS}' = '{value}' is not allowed ({}).",
                        listed(&cfg.allowed_runtime_classes)
                    ));
                }
                p.runtime_class_name = Some(value.clone());
            }
            NODE_SELECTOR => {
                let sel = driver_config::node_selector(value)?;
                if let Some(k) = sel
                    .keys()
                    .find(|k| !cfg.allowed_node_selector_keys.contains(k))
                {
                    return Err(format!(
                        "'{NODE_SELECTOR}' key '{k}' is not allowed ({}).",
                        listed(&cfg.allowed_node_selector_keys)
                    ));
                }
                p.node_selector = sel;
            }
            TOLERATIONS => {
                let tol: Vec<Toleration> = serde_json::from_str(value).map_err(|e| {
                    format!("'{TOLERATIONS}' must be a JSON array of tolerations: {e}.")
                })?;
                for t in &tol {
                    let key = t.key.as_deref().unwrap_or_default();
                    if !cfg.allowed_toleration_keys.iter().any(|k| k == key) {
                        return Err(format!(
                            "'{TOLERATIONS}' may only tolerate taint keys the backend allows ({}); got key '{key}'.",
                            listed(&cfg.allowed_toleration_keys)
                        ));
                    }
                }
                p.tolerations = tol;
            }
            SERVICE_ACCOUNT => {
                allowed(
                    SERVICE_ACCOUNT,
                    "ServiceAccount",
                    value,
                    &cfg.allowed_service_accounts,
                )?;
                p.service_account_name = Some(value.clone());
            }
            SECRET_ENV => {
                let env = driver_config::secret_env(value)?;
                for e in &env {
                    allowed(
                        SECRET_ENV,
                        "Secret",
                        &e.secret_key_ref.name,
                        &cfg.allowed_secrets,
                    )?;
                }
                p.secret_env = env;
            }
            SECRET_ENV_FROM => {
                let names = driver_config::secret_env_from(value)?;
                for n in &names {
                    allowed(SECRET_ENV_FROM, "Secret", n, &cfg.allowed_secrets)?;
                }
                p.secret_env_from = names;
            }
            // Checked against the managed namespaces by `Inner::namespace_for`.
            NAMESPACE => {}
            other => {
                return Err(format!(
                    "Extension '{other}' is not known to the Kubernetes runtime (known: {}).",
                    driver_config::ALL.join(", ")
                ))
            }
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> KubernetesConfig {
        KubernetesConfig {
            allowed_runtime_classes: vec!["gvisor".into()],
            allowed_node_selector_keys: vec!["pool".into()],
            allowed_toleration_keys: vec!["sandbox".into()],
            allowed_service_accounts: vec!["runner".into()],
            allowed_secrets: vec!["tenant-creds".into()],
            ..Default::default()
        }
    }

    fn ext(pairs: &[(&str, &str)]) -> StringMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn allowed_placement() {
        let p = from_extensions(
            &cfg(),
            &ext(&[
                (RUNTIME_CLASS, "gvisor"),
                (NODE_SELECTOR, r#"{"pool":"a"}"#),
                (
                    TOLERATIONS,
                    r#"[{"key":"sandbox","operator":"Exists","effect":"NoSchedule"}]"#,
                ),
                (SERVICE_ACCOUNT, "runner"),
                (
                    SECRET_ENV,
                    r#"[{"name":"T","secretKeyRef":{"name":"tenant-creds","key":"t"}}]"#,
                ),
                (SECRET_ENV_FROM, r#"["tenant-creds"]"#),
                (NAMESPACE, "anything-checked-elsewhere"),
                ("other.key", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(p.runtime_class_name.as_deref(), Some("gvisor"));
        assert_eq!(p.node_selector["pool"], "a");
        assert_eq!(p.tolerations[0].key.as_deref(), Some("sandbox"));
        assert_eq!(p.service_account_name.as_deref(), Some("runner"));
        assert_eq!(p.secret_env[0].secret_key_ref.key, "t");
        assert_eq!(p.secret_env_from, vec!["tenant-creds".to_string()]);
        assert_eq!(
            from_extensions(&KubernetesConfig::default(), &ext(&[])).unwrap(),
            Placement::default()
        );
    }

    #[test]
    fn refused_placement() {
        let bad = |pairs: &[(&str, &str)]| from_extensions(&cfg(), &ext(pairs)).unwrap_err();
        assert!(bad(&[(RUNTIME_CLASS, "kata")]).contains("allowed: gvisor"));
        assert!(bad(&[(NODE_SELECTOR, r#"{"zone":"x"}"#)]).contains("'zone'"));
        assert!(bad(&[(NODE_SELECTOR, "pool=a")]).contains("JSON object"));
        assert!(bad(&[(TOLERATIONS, r#"[{"operator":"Exists"}]"#)]).contains("got key ''"));
        assert!(bad(&[(SERVICE_ACCOUNT, "default")]).contains("allowed: runner"));
        assert!(bad(&[(
            SECRET_ENV,
            r#"[{"name":"T","secretKeyRef":{"name":"root","key":"t"}}]"#
        )])
        .contains("'root'"));
        assert!(bad(&[(SECRET_ENV_FROM, r#"["root"]"#)]).contains("'root'"));
        assert!(bad(&[("kubernetes.hostNetwork", "true")]).contains("not known"));
        let none = from_extensions(
            &KubernetesConfig::default(),
            &ext(&[(RUNTIME_CLASS, "gvisor")]),
        );
        assert!(none.unwrap_err().contains("none are allowed"));
    }
}
