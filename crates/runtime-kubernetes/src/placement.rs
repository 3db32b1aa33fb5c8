//! Placement from the request's `extensions`, `driver_config`-style: a create may pick a
//! RuntimeClass, node-selector entries and tolerations, each only within what the
//! `[kubernetes]` section allows. Anything else under the `kubernetes.` prefix is refused,
//! so a request can never place a sandbox where the operator did not mean it to go.
//!
//! | extension key | value | allowed by |
//! |---|---|---|
//! | `kubernetes.runtimeClassName` | a name | `allowed_runtime_classes` |
//! | `kubernetes.nodeSelector` | JSON object of strings | `allowed_node_selector_keys` |
//! | `kubernetes.tolerations` | JSON array of Tolerations, each with a `key` | `allowed_toleration_keys` |

use crate::config::KubernetesConfig;
use gatehouse_lifecycle::StringMap;
use k8s_openapi::api::core::v1::Toleration;
use std::collections::BTreeMap;

/// The prefix of this driver's extension keys.
pub const PREFIX: &str = "kubernetes.";
/// Extension key: the RuntimeClass of the sandbox pod.
pub const RUNTIME_CLASS: &str = "kubernetes.runtimeClassName";
/// Extension key: node-selector entries (JSON object).
pub const NODE_SELECTOR: &str = "kubernetes.nodeSelector";
/// Extension key: tolerations (JSON array).
pub const TOLERATIONS: &str = "kubernetes.tolerations";

/// Where a sandbox pod may run, as validated from a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placement {
    /// RuntimeClass (the request's, else `runtime_class_name` from the configuration).
    pub runtime_class_name: Option<String>,
    /// Node-selector entries.
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations.
    pub tolerations: Vec<Toleration>,
}

fn listed(allowed: &[String]) -> String {
    if allowed.is_empty() {
        "none are allowed".into()
    } else {
        format!("allowed: {}", allowed.join(", "))
    }
}

/// The placement `extensions` ask for, or why it is refused (shown to the client).
pub fn from_extensions(cfg: &KubernetesConfig, ext: &StringMap) -> Result<Placement, String> {
    let mut p = Placement {
        runtime_class_name: cfg.runtime_class_name.clone(),
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
                let sel: BTreeMap<String, String> = serde_json::from_str(value).map_err(|e| {
                    format!("'{NODE_SELECTOR}' must be a JSON object of strings: {e}.")
                })?;
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
            other => {
                return Err(format!(
                    "Extension '{other}' is not known to the Kubernetes runtime (known: {RUNTIME_CLASS}, {NODE_SELECTOR}, {TOLERATIONS})."
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
                ("other.key", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(p.runtime_class_name.as_deref(), Some("gvisor"));
        assert_eq!(p.node_selector["pool"], "a");
        assert_eq!(p.tolerations[0].key.as_deref(), Some("sandbox"));
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
        assert!(bad(&[("kubernetes.hostNetwork", "true")]).contains("not known"));
        let none = from_extensions(
            &KubernetesConfig::default(),
            &ext(&[(RUNTIME_CLASS, "gvisor")]),
        );
        assert!(none.unwrap_err().contains("none are allowed"));
    }
}
