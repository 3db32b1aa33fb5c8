//! `[platform]`: trusted control planes (platform controllers) that create sandboxes on
//! behalf of tenants, and what each may assert.
//!
//! ```toml
//! [[auth.api_keys]]
//! name = "onboarding"
//! env = "ONBOARDING_KEY"
//! kind = "platform_controller"
//! role = "platform_controller"
//!
//! [[platform.controllers]]
//! name = "onboarding"                  # the key above
//! tenants = ["team-a", "tenant-*"]     # teams it may create sandboxes for
//! owners = []                          # owner subjects it may assert (none)
//! namespaces = ["tenant-*"]            # extensions["kubernetes.namespace"]
//! runtime_classes = ["gvisor"]         # extensions["kubernetes.runtimeClassName"]
//! node_selector_keys = ["pool"]        # keys of extensions["kubernetes.nodeSelector"]
//! toleration_keys = ["sandbox"]        # taint keys of extensions["kubernetes.tolerations"]
//! service_accounts = ["sandbox-runner"] # extensions["kubernetes.serviceAccountName"]
//! secrets = ["*-llm-creds"]            # Secrets of kubernetes.secretEnv / secretEnvFrom
//! ```
//!
//! Every list holds patterns ([`super::pattern`]); an empty list allows nothing.
//!
//! A controller authenticates with its named key, or with a Kubernetes ServiceAccount
//! token: `kubernetes_service_accounts = ["platform/onboarding"]` (exact
//! `namespace/name` pairs, not patterns) with a `[platform.kubernetes]` section
//! ([`super::kubernetes`]). An entry needs at least one of the two.

use serde::Deserialize;

/// `[platform]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlatformSection {
    /// `[[platform.controllers]]`: one entry per controller identity.
    pub controllers: Vec<ControllerConfig>,
    /// `[platform.kubernetes]`: controllers authenticated by ServiceAccount token.
    pub kubernetes: Option<super::kubernetes::PlatformKubernetesConfig>,
}

/// One `[[platform.controllers]]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerConfig {
    /// The controller's name (its `key_name` in audit events): the `[[auth.api_keys]]`
    /// entry of kind `platform_controller` that authenticates as it, if any.
    pub name: String,
    /// Kubernetes ServiceAccounts (`namespace/name`) whose tokens authenticate as this
    /// controller (`[platform.kubernetes]`). Not the pods' ServiceAccounts: those are
    /// `service_accounts`.
    pub kubernetes_service_accounts: Vec<String>,
    /// Teams (tenants) it may create sandboxes for (`extensions["gatehouse.tenant.team"]`).
    pub tenants: Vec<String>,
    /// Owner subjects it may assert (`extensions["gatehouse.tenant.owner"]`).
    pub owners: Vec<String>,
    /// Namespaces (`extensions["kubernetes.namespace"]`).
    pub namespaces: Vec<String>,
    /// RuntimeClasses (`extensions["kubernetes.runtimeClassName"]`).
    pub runtime_classes: Vec<String>,
    /// Node-selector keys (`extensions["kubernetes.nodeSelector"]`).
    pub node_selector_keys: Vec<String>,
    /// Taint keys it may tolerate (`extensions["kubernetes.tolerations"]`).
    pub toleration_keys: Vec<String>,
    /// ServiceAccounts the pod may run as (`extensions["kubernetes.serviceAccountName"]`).
    pub service_accounts: Vec<String>,
    /// Secrets whose keys may become the sandbox's environment
    /// (`extensions["kubernetes.secretEnv"]`, `["kubernetes.secretEnvFrom"]`).
    pub secrets: Vec<String>,
}

impl ControllerConfig {
    /// The pattern lists with their key names.
    pub fn lists(&self) -> [(&'static str, &Vec<String>); 8] {
        [
            ("tenants", &self.tenants),
            ("owners", &self.owners),
            ("namespaces", &self.namespaces),
            ("runtime_classes", &self.runtime_classes),
            ("node_selector_keys", &self.node_selector_keys),
            ("toleration_keys", &self.toleration_keys),
            ("service_accounts", &self.service_accounts),
            ("secrets", &self.secrets),
        ]
    }
}

impl PlatformSection {
    /// Checks the section against the configured API keys: `(dotted key, message)` on
    /// the first problem. Every key of kind `platform_controller` needs an entry, and
    /// every entry names such a key or lists ServiceAccounts (with `[platform.kubernetes]`).
    pub fn validate(&self, controller_keys: &[&str]) -> Result<(), (String, String)> {
        if let Some(k) = &self.kubernetes {
            k.validate()?;
            if self
                .controllers
                .iter()
                .all(|c| c.kubernetes_service_accounts.is_empty())
            {
                return Err((
                    "platform.kubernetes".into(),
                    "no [[platform.controllers]] entry lists kubernetes_service_accounts".into(),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.controllers.iter().enumerate() {
            let at = |k: &str| format!("platform.controllers[{i}].{k}");
            if c.name.trim().is_empty() {
                return Err((at("name"), "must not be empty".into()));
            }
            if self.controllers[..i].iter().any(|o| o.name == c.name) {
                return Err((at("name"), format!("'{}' is listed twice", c.name)));
            }
            for (j, sa) in c.kubernetes_service_accounts.iter().enumerate() {
                let key = at(&format!("kubernetes_service_accounts[{j}]"));
                if !super::kubernetes::is_service_account_ref(sa) {
                    return Err((
                        key,
                        format!("'{sa}' is not namespace/name of a ServiceAccount"),
                    ));
                }
                if self.kubernetes.is_none() {
                    return Err((
                        key,
                        "needs a [platform.kubernetes] section (audience, API server)".into(),
                    ));
                }
                if !seen.insert(sa.as_str()) {
                    return Err((key, format!("'{sa}' is listed twice")));
                }
            }
            if !controller_keys.contains(&c.name.as_str())
                && c.kubernetes_service_accounts.is_empty()
            {
                return Err((
                    at("name"),
                    format!(
                        "no [[auth.api_keys]] entry named '{}' has kind = \"platform_controller\", \
                         and the entry lists no kubernetes_service_accounts",
                        c.name
                    ),
                ));
            }
            for (name, list) in c.lists() {
                if let Some(p) = list
                    .iter()
                    .find(|p| p.trim().is_empty() || p.contains(char::is_whitespace))
                {
                    return Err((at(name), format!("'{p}' is not a usable pattern")));
                }
            }
        }
        if let Some(k) = controller_keys
            .iter()
            .find(|k| !self.controllers.iter().any(|c| c.name == **k))
        {
            return Err((
                "platform.controllers".into(),
                format!("the platform_controller key '{k}' has no [[platform.controllers]] entry"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml_text: &str) -> PlatformSection {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn validation_names_the_key() {
        let ok = section("[[controllers]]\nname = \"onb\"\ntenants = [\"team-*\"]\n");
        assert!(ok.validate(&["onb"]).is_ok());
        assert_eq!(
            ok.validate(&[]).unwrap_err().0,
            "platform.controllers[0].name"
        );
        assert_eq!(
            ok.validate(&["onb", "other"]).unwrap_err().0,
            "platform.controllers"
        );
        let bad = section("[[controllers]]\nname = \"onb\"\nsecrets = [\"\"]\n");
        assert_eq!(
            bad.validate(&["onb"]).unwrap_err().0,
            "platform.controllers[0].secrets"
        );
        let sa = section(
            "[kubernetes]\naudience = \"gh\"\n[[controllers]]\nname = \"sa-only\"\n\
             kubernetes_service_accounts = [\"platform/onb\"]\n",
        );
        assert!(sa.validate(&[]).is_ok(), "a controller without a key");
        let no_section =
            section("[[controllers]]\nname = \"a\"\nkubernetes_service_accounts = [\"p/a\"]\n");
        assert_eq!(
            no_section.validate(&[]).unwrap_err().0,
            "platform.controllers[0].kubernetes_service_accounts[0]"
        );
        let not_a_ref = section(
            "[kubernetes]\naudience = \"gh\"\n[[controllers]]\nname = \"a\"\n\
             kubernetes_service_accounts = [\"onb\"]\n",
        );
        assert!(not_a_ref
            .validate(&[])
            .unwrap_err()
            .1
            .contains("namespace/name"));
        let shared = section(
            "[kubernetes]\naudience = \"gh\"\n[[controllers]]\nname = \"a\"\n\
             kubernetes_service_accounts = [\"p/x\"]\n[[controllers]]\nname = \"b\"\n\
             kubernetes_service_accounts = [\"p/x\"]\n",
        );
        assert_eq!(
            shared.validate(&[]).unwrap_err().0,
            "platform.controllers[1].kubernetes_service_accounts[0]"
        );
        let unused = section("[kubernetes]\naudience = \"gh\"\n[[controllers]]\nname = \"a\"\n");
        assert_eq!(
            unused.validate(&["a"]).unwrap_err().0,
            "platform.kubernetes"
        );
        let no_aud = section("[kubernetes]\n[[controllers]]\nname = \"a\"\nkubernetes_service_accounts = [\"p/a\"]\n");
        assert_eq!(
            no_aud.validate(&[]).unwrap_err().0,
            "platform.kubernetes.audience"
        );
        let twice = section("[[controllers]]\nname = \"a\"\n[[controllers]]\nname = \"a\"\n");
        assert!(twice.validate(&["a"]).unwrap_err().1.contains("twice"));
        assert!(
            toml::from_str::<PlatformSection>("[[controllers]]\nname = \"a\"\nbogus = 1\n")
                .unwrap_err()
                .to_string()
                .contains("bogus")
        );
    }
}
