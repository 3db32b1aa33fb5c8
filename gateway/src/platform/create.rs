//! A create body as a platform controller (or anyone else) sent it: the controller-only
//! fields are checked against the controller's allowlists, or refused for everyone else;
//! then the reserved scope metadata is written.

use super::config::ControllerConfig;
use super::pattern::{any, listed};
use super::PlatformError;
use gatehouse_audit::OnBehalfOf;
use gatehouse_lifecycle::driver_config as dc;
use gatehouse_scope::{body as scope_body, Scope, ScopeKeys};
use serde_json::{Map, Value};

/// Extension key: the team (tenant) a controller creates the sandbox for.
pub const TENANT_TEAM: &str = "gatehouse.tenant.team";
/// Extension key: the owner subject a controller creates the sandbox for.
pub const TENANT_OWNER: &str = "gatehouse.tenant.owner";
/// Prefix of the tenant extension keys (all controller-only).
pub const TENANT_PREFIX: &str = "gatehouse.tenant.";

/// Whether an `extensions` key is one only a platform controller may set.
pub fn controller_only(key: &str) -> bool {
    key.starts_with(TENANT_PREFIX) || key.starts_with(dc::PREFIX)
}

/// A parsed create body.
#[derive(Debug)]
pub struct CreateBody {
    req: Map<String, Value>,
}

impl CreateBody {
    /// Parses the body: a JSON object whose `extensions`, when present, is an object of
    /// strings.
    pub fn parse(body: &[u8]) -> Result<Self, PlatformError> {
        let req = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(PlatformError::Malformed(
                    "the request body must be a JSON object".into(),
                ))
            }
            Err(e) => {
                return Err(PlatformError::Malformed(format!(
                    "the request body is not valid JSON: {e}"
                )))
            }
        };
        match req.get("extensions") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) if m.values().all(Value::is_string) => {}
            Some(_) => {
                return Err(PlatformError::Malformed(
                    "'extensions' must be an object of strings".into(),
                ))
            }
        }
        Ok(Self { req })
    }

    /// The `extensions` as string pairs.
    fn extensions(&self) -> impl Iterator<Item = (&str, &str)> {
        self.req
            .get("extensions")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
    }

    fn extension(&self, key: &str) -> Option<&str> {
        self.extensions().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The tenant the body asserts, as named (for the audit event).
    pub fn tenant(&self) -> Option<OnBehalfOf> {
        let team = self.extension(TENANT_TEAM).map(str::to_owned);
        let owner = self.extension(TENANT_OWNER).map(str::to_owned);
        (team.is_some() || owner.is_some()).then_some(OnBehalfOf { team, owner })
    }

    /// For callers that are not controllers: refuses every controller-only field.
    pub fn refuse_controller_fields(&self) -> Result<(), PlatformError> {
        match self.extensions().find(|(k, _)| controller_only(k)) {
            Some((k, _)) => Err(PlatformError::ControllerOnly(format!("extensions.{k}"))),
            None => Ok(()),
        }
    }

    /// For a controller: every controller-only field must be within its allowlists.
    pub fn check(&self, c: &ControllerConfig) -> Result<(), PlatformError> {
        for (key, value) in self.extensions().filter(|(k, _)| controller_only(k)) {
            check_one(c, key, value)?;
        }
        Ok(())
    }

    /// Drops the tenant keys (they become the scope metadata), writes the reserved
    /// metadata of `scope`, and serializes the body to forward.
    pub fn finish(mut self, scope: &Scope, keys: &ScopeKeys) -> Result<Vec<u8>, PlatformError> {
        if let Some(Value::Object(ext)) = self.req.get_mut("extensions") {
            ext.retain(|k, _| !k.starts_with(TENANT_PREFIX));
        }
        scope_body::inject_metadata(&mut self.req, scope, keys)
            .map_err(|e| PlatformError::Malformed(e.to_string()))?;
        serde_json::to_vec(&self.req).map_err(|e| PlatformError::Malformed(e.to_string()))
    }
}

/// Checks one controller-only extension against the controller's allowlists.
fn check_one(c: &ControllerConfig, key: &str, value: &str) -> Result<(), PlatformError> {
    let deny = |reason: String| PlatformError::NotAllowed {
        field: format!("extensions.{key}"),
        controller: c.name.clone(),
        reason,
    };
    let one = |list: &[String], what: &str, v: &str| {
        if any(list, v) {
            Ok(())
        } else {
            Err(deny(format!(
                "{what} '{v}' is not in its allowlist ({}).",
                listed(list)
            )))
        }
    };
    match key {
        TENANT_TEAM => one(&c.tenants, "tenant", value),
        TENANT_OWNER => one(&c.owners, "owner", value),
        dc::NAMESPACE => one(&c.namespaces, "namespace", value),
        dc::RUNTIME_CLASS => one(&c.runtime_classes, "RuntimeClass", value),
        dc::SERVICE_ACCOUNT => one(&c.service_accounts, "ServiceAccount", value),
        dc::NODE_SELECTOR => {
            let sel = dc::node_selector(value).map_err(PlatformError::Malformed)?;
            sel.keys()
                .try_for_each(|k| one(&c.node_selector_keys, "node-selector key", k))
        }
        dc::TOLERATIONS => {
            let keys = dc::toleration_keys(value).map_err(PlatformError::Malformed)?;
            keys.iter().try_for_each(|k| {
                if k.is_empty() {
                    Err(deny(
                        "a toleration without a key tolerates every taint; name the taint key."
                            .into(),
                    ))
                } else {
                    one(&c.toleration_keys, "taint key", k)
                }
            })
        }
        dc::SECRET_ENV => {
            let env = dc::secret_env(value).map_err(PlatformError::Malformed)?;
            env.iter()
                .try_for_each(|e| one(&c.secrets, "Secret", &e.secret_key_ref.name))
        }
        dc::SECRET_ENV_FROM => {
            let names = dc::secret_env_from(value).map_err(PlatformError::Malformed)?;
            names.iter().try_for_each(|n| one(&c.secrets, "Secret", n))
        }
        other => Err(deny(format!(
            "'{other}' is not a field a platform controller may set."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_scope::ScopeMode;
    use serde_json::json;

    fn onboarding() -> ControllerConfig {
        ControllerConfig {
            name: "onboarding".into(),
            tenants: vec!["team-a".into(), "tenant-*".into()],
            namespaces: vec!["tenant-*".into()],
            runtime_classes: vec!["gvisor".into()],
            node_selector_keys: vec!["pool".into()],
            toleration_keys: vec!["sandbox".into()],
            service_accounts: vec!["runner".into()],
            secrets: vec!["*-creds".into()],
            ..Default::default()
        }
    }

    fn body(ext: Value) -> Vec<u8> {
        json!({"image": {"uri": "x"}, "metadata": {"access.owner": "forged", "p": "1"}, "extensions": ext})
            .to_string()
            .into_bytes()
    }

    fn checked(ext: Value) -> Result<(), PlatformError> {
        CreateBody::parse(&body(ext))?.check(&onboarding())
    }

    #[test]
    fn allowed_fields_pass_and_the_tenant_becomes_the_scope() {
        let ext = json!({
            "gatehouse.tenant.team": "team-a",
            "kubernetes.namespace": "tenant-a",
            "kubernetes.runtimeClassName": "gvisor",
            "kubernetes.nodeSelector": "{\"pool\":\"x\"}",
            "kubernetes.tolerations": "[{\"key\":\"sandbox\",\"operator\":\"Exists\"}]",
            "kubernetes.serviceAccountName": "runner",
            "kubernetes.secretEnv": "[{\"name\":\"T\",\"secretKeyRef\":{\"name\":\"a-creds\",\"key\":\"t\"}}]",
            "kubernetes.secretEnvFrom": "[\"b-creds\"]",
            "storage.id": "kept",
        });
        let b = CreateBody::parse(&body(ext)).unwrap();
        b.check(&onboarding()).unwrap();
        assert_eq!(
            b.tenant(),
            Some(OnBehalfOf {
                team: Some("team-a".into()),
                owner: None
            })
        );
        let keys = ScopeKeys::default();
        let scope = Scope::for_principal("key:onboarding", Some("team-a"), ScopeMode::Team)
            .with_controller("key:onboarding");
        let out: Value = serde_json::from_slice(&b.finish(&scope, &keys).unwrap()).unwrap();
        let md = &out["metadata"];
        assert_eq!(md["access.team"], scope.team.clone().unwrap());
        assert_eq!(md["access.owner"], scope.owner);
        assert_eq!(md["access.controller"], scope.controller.clone().unwrap());
        assert_eq!(md["p"], "1");
        assert!(out["extensions"].get(TENANT_TEAM).is_none(), "{out}");
        assert_eq!(out["extensions"]["storage.id"], "kept");
        assert_eq!(out["extensions"]["kubernetes.namespace"], "tenant-a");
    }

    #[test]
    fn anything_outside_an_allowlist_names_the_field() {
        for (key, value, needle) in [
            ("gatehouse.tenant.team", "team-b", "tenant 'team-b'"),
            ("gatehouse.tenant.owner", "alice", "none are allowed"),
            ("kubernetes.namespace", "kube-system", "allowed: tenant-*"),
            ("kubernetes.runtimeClassName", "kata", "'kata'"),
            ("kubernetes.nodeSelector", "{\"zone\":\"z\"}", "'zone'"),
            (
                "kubernetes.tolerations",
                "[{\"operator\":\"Exists\"}]",
                "every taint",
            ),
            ("kubernetes.serviceAccountName", "default", "'default'"),
            (
                "kubernetes.secretEnv",
                "[{\"name\":\"T\",\"secretKeyRef\":{\"name\":\"db-password\",\"key\":\"t\"}}]",
                "'db-password'",
            ),
            (
                "kubernetes.secretEnvFrom",
                "[\"root-token\"]",
                "'root-token'",
            ),
            ("kubernetes.hostNetwork", "true", "may set"),
            ("gatehouse.tenant.role", "x", "may set"),
        ] {
            let e = checked(json!({ key: value })).unwrap_err();
            let PlatformError::NotAllowed { field, .. } = &e else {
                panic!("{key}: {e:?}")
            };
            assert_eq!(field, &format!("extensions.{key}"));
            assert!(e.to_string().contains(needle), "{key}: {e}");
            assert!(e.to_string().contains("'onboarding'"), "{e}");
        }
        assert!(matches!(
            checked(json!({"kubernetes.secretEnvFrom": "nope"})),
            Err(PlatformError::Malformed(_))
        ));
    }

    #[test]
    fn other_callers_may_not_send_controller_fields() {
        for key in ["gatehouse.tenant.team", "kubernetes.runtimeClassName"] {
            let b = CreateBody::parse(&body(json!({ key: "x" }))).unwrap();
            assert_eq!(
                b.refuse_controller_fields(),
                Err(PlatformError::ControllerOnly(format!("extensions.{key}")))
            );
        }
        let plain = CreateBody::parse(&body(json!({"storage.id": "x"}))).unwrap();
        assert!(plain.refuse_controller_fields().is_ok());
        assert!(CreateBody::parse(b"{\"extensions\":{\"a\":1}}").is_err());
        assert!(CreateBody::parse(b"[]").is_err());
        assert!(CreateBody::parse(b"{\"extensions\":null}").is_ok());
    }

    #[test]
    fn a_json_escape_does_not_hide_a_controller_field() {
        let b = CreateBody::parse(br#"{"extensions":{"kubernetes\u002enamespace":"x"}}"#).unwrap();
        assert!(b.refuse_controller_fields().is_err());
    }
}
