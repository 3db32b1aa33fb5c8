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

use serde::Deserialize;

/// `[platform]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlatformSection {
    /// `[[platform.controllers]]`: one entry per controller identity.
    pub controllers: Vec<ControllerConfig>,
}

/// One `[[platform.controllers]]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerConfig {
    /// The name of the `[[auth.api_keys]]` entry of kind `platform_controller` that
    /// authenticates as this controller (also its name in audit events).
    pub name: String,
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
    /// every entry names such a key.
    pub fn validate(&self, controller_keys: &[&str]) -> Result<(), (String, String)> {
        for (i, c) in self.controllers.iter().enumerate() {
            let at = |k: &str| format!("platform.controllers[{i}].{k}");
            if c.name.trim().is_empty() {
                return Err((at("name"), "must not be empty".into()));
            }
            if self.controllers[..i].iter().any(|o| o.name == c.name) {
                return Err((at("name"), format!("'{}' is listed twice", c.name)));
            }
            if !controller_keys.contains(&c.name.as_str()) {
                return Err((
                    at("name"),
                    format!(
                        "no [[auth.api_keys]] entry named '{}' has kind = \"platform_controller\"",
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
