//! The Kubernetes driver's `extensions` keys (`driver_config`-style) and their formats.
//!
//! The create body's `extensions` is a map of strings (`sandbox-lifecycle.yml`), so
//! structured values are JSON text. The gateway checks these keys against a platform
//! controller's allowlists and the Kubernetes driver honours them within the backend's
//! own; both parse them here, so they never disagree on a format.
//!
//! | key | value |
//! |---|---|
//! | `kubernetes.namespace` | a namespace name |
//! | `kubernetes.runtimeClassName` | a RuntimeClass name |
//! | `kubernetes.nodeSelector` | JSON object of strings |
//! | `kubernetes.tolerations` | JSON array of Tolerations, each with a `key` |
//! | `kubernetes.serviceAccountName` | a ServiceAccount name |
//! | `kubernetes.secretEnv` | JSON array `[{"name":"ENV","secretKeyRef":{"name":"secret","key":"k"}}]` (`valueFrom.secretKeyRef`) |
//! | `kubernetes.secretEnvFrom` | JSON array of Secret names (`envFrom.secretRef`) |

use crate::validate::is_dns_subdomain;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The prefix of the Kubernetes driver's extension keys.
pub const PREFIX: &str = "kubernetes.";
/// The namespace of the sandbox pod.
pub const NAMESPACE: &str = "kubernetes.namespace";
/// The RuntimeClass of the sandbox pod.
pub const RUNTIME_CLASS: &str = "kubernetes.runtimeClassName";
/// Node-selector entries (JSON object).
pub const NODE_SELECTOR: &str = "kubernetes.nodeSelector";
/// Tolerations (JSON array).
pub const TOLERATIONS: &str = "kubernetes.tolerations";
/// The ServiceAccount the sandbox pod runs as.
pub const SERVICE_ACCOUNT: &str = "kubernetes.serviceAccountName";
/// Environment variables read from Secret keys (JSON array of [`SecretEnv`]).
pub const SECRET_ENV: &str = "kubernetes.secretEnv";
/// Secrets whose every key becomes an environment variable (JSON array of names).
pub const SECRET_ENV_FROM: &str = "kubernetes.secretEnvFrom";

/// Every key the Kubernetes driver knows.
pub const ALL: [&str; 7] = [
    NAMESPACE,
    RUNTIME_CLASS,
    NODE_SELECTOR,
    TOLERATIONS,
    SERVICE_ACCOUNT,
    SECRET_ENV,
    SECRET_ENV_FROM,
];

/// One environment variable read from a Secret key (`env[].valueFrom.secretKeyRef`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretEnv {
    /// The environment variable.
    pub name: String,
    /// The Secret and key it is read from.
    pub secret_key_ref: SecretKeyRef,
}

/// A key of a Secret in the sandbox's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretKeyRef {
    /// The Secret's name.
    pub name: String,
    /// The key inside it.
    pub key: String,
}

/// Whether `s` can name an environment variable (`[A-Za-z_][A-Za-z0-9_]*`).
fn is_env_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Whether `s` can be a key of a Secret (`[-._a-zA-Z0-9]+`, at most 253).
fn is_secret_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn secret_name(key: &str, name: &str) -> Result<(), String> {
    if is_dns_subdomain(name) && !name.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "'{key}' names Secret '{name}', which is not a valid Secret name (lower-case DNS subdomain)."
        ))
    }
}

/// Parses `kubernetes.secretEnv`.
pub fn secret_env(value: &str) -> Result<Vec<SecretEnv>, String> {
    let list: Vec<SecretEnv> = serde_json::from_str(value).map_err(|e| {
        format!(
            "'{SECRET_ENV}' must be a JSON array of {{\"name\",\"secretKeyRef\":{{\"name\",\"key\"}}}}: {e}."
        )
    })?;
    for e in &list {
        if !is_env_name(&e.name) {
            return Err(format!(
                "'{SECRET_ENV}' variable '{}' is not a valid environment variable name.",
                e.name
            ));
        }
        secret_name(SECRET_ENV, &e.secret_key_ref.name)?;
        if !is_secret_key(&e.secret_key_ref.key) {
            return Err(format!(
                "'{SECRET_ENV}' key '{}' of Secret '{}' is not a valid Secret key.",
                e.secret_key_ref.key, e.secret_key_ref.name
            ));
        }
    }
    if let Some(dup) = list
        .iter()
        .enumerate()
        .find(|(i, e)| list[..*i].iter().any(|p| p.name == e.name))
    {
        return Err(format!(
            "'{SECRET_ENV}' sets variable '{}' twice.",
            dup.1.name
        ));
    }
    Ok(list)
}

/// Parses `kubernetes.secretEnvFrom`.
pub fn secret_env_from(value: &str) -> Result<Vec<String>, String> {
    let list: Vec<String> = serde_json::from_str(value)
        .map_err(|e| format!("'{SECRET_ENV_FROM}' must be a JSON array of Secret names: {e}."))?;
    for n in &list {
        secret_name(SECRET_ENV_FROM, n)?;
    }
    Ok(list)
}

/// Parses `kubernetes.nodeSelector`.
pub fn node_selector(value: &str) -> Result<BTreeMap<String, String>, String> {
    serde_json::from_str(value)
        .map_err(|e| format!("'{NODE_SELECTOR}' must be a JSON object of strings: {e}."))
}

/// The taint keys `kubernetes.tolerations` tolerates (`""` for a toleration without a
/// key, which tolerates every taint).
pub fn toleration_keys(value: &str) -> Result<Vec<String>, String> {
    let list: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(value)
        .map_err(|e| format!("'{TOLERATIONS}' must be a JSON array of tolerations: {e}."))?;
    list.iter()
        .map(|t| match t.get("key") {
            None | Some(serde_json::Value::Null) => Ok(String::new()),
            Some(serde_json::Value::String(k)) => Ok(k.clone()),
            Some(other) => Err(format!(
                "'{TOLERATIONS}' has a toleration whose key is not a string: {other}."
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_env_parses_and_checks_names() {
        let ok = secret_env(
            r#"[{"name":"API_TOKEN","secretKeyRef":{"name":"tenant-a","key":"token"}}]"#,
        )
        .unwrap();
        assert_eq!(ok[0].secret_key_ref.name, "tenant-a");
        assert!(secret_env("{}").unwrap_err().contains("JSON array"));
        assert!(
            secret_env(r#"[{"name":"1X","secretKeyRef":{"name":"s","key":"k"}}]"#)
                .unwrap_err()
                .contains("'1X'")
        );
        assert!(
            secret_env(r#"[{"name":"X","secretKeyRef":{"name":"Bad_Name","key":"k"}}]"#)
                .unwrap_err()
                .contains("'Bad_Name'")
        );
        assert!(
            secret_env(r#"[{"name":"X","secretKeyRef":{"name":"s","key":"k/../x"}}]"#).is_err()
        );
        assert!(secret_env(
            r#"[{"name":"X","secretKeyRef":{"name":"s","key":"k","optional":true}}]"#
        )
        .is_err());
        let dup = r#"[{"name":"X","secretKeyRef":{"name":"s","key":"a"}},{"name":"X","secretKeyRef":{"name":"s","key":"b"}}]"#;
        assert!(secret_env(dup).unwrap_err().contains("twice"));
    }

    #[test]
    fn env_from_selector_and_tolerations() {
        assert_eq!(secret_env_from(r#"["a","b.c"]"#).unwrap(), vec!["a", "b.c"]);
        assert!(secret_env_from(r#"["A"]"#).is_err());
        assert!(secret_env_from("a").is_err());
        assert_eq!(node_selector(r#"{"pool":"x"}"#).unwrap()["pool"], "x");
        assert!(node_selector("[]").is_err());
        assert_eq!(
            toleration_keys(r#"[{"key":"sandbox","operator":"Exists"},{"operator":"Exists"}]"#)
                .unwrap(),
            vec!["sandbox".to_string(), String::new()]
        );
        assert!(toleration_keys(r#"[{"key":1}]"#).is_err());
        assert_eq!(ALL.iter().filter(|k| k.starts_with(PREFIX)).count(), 7);
    }
}
