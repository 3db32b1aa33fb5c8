//! The `[kubernetes]` section of the backend configuration.
//!
//! Keys follow the upstream OpenSandbox server's `[kubernetes]` section where the concept
//! is the same (`kubeconfig_path`, `namespace`, `service_account`, `image_pull_policy`,
//! `sandbox_create_timeout_seconds`, `read_qps`/`write_qps` ...); upstream keys for
//! machinery this driver does not run (BatchSandbox templates, informer tuning, execd
//! init resources) are accepted and ignored. `workload_provider = "pod"` (plain Pods, no
//! operator) is the only provider and the default. `instance`, `api_timeout`,
//! `exposed_ports`, `namespace_template` and `namespace_allowlist` are Gatehouse
//! extensions.

use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::BTreeSet;

/// Seconds a create waits for the pod to run when unset (upstream default).
pub const DEFAULT_CREATE_TIMEOUT_SECS: u64 = 60;
/// Seconds each API request may take when `api_timeout` is unset.
pub const DEFAULT_API_TIMEOUT_SECS: u64 = 30;
/// The only workload provider.
pub const POD_PROVIDER: &str = "pod";

/// Configuration of the Kubernetes driver.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesConfig {
    /// Kubeconfig file; when unset, `KUBECONFIG` / `~/.kube/config`, then the in-cluster
    /// service account.
    pub kubeconfig_path: Option<String>,
    /// Extension: kubeconfig context; the file's current context when unset.
    pub context: Option<String>,
    /// Namespace of sandboxes; the kubeconfig's (or in-cluster) namespace when unset.
    pub namespace: Option<String>,
    /// ServiceAccount the sandbox pods run as; its API token is never mounted (an
    /// audience-bound token is projected with `[kubernetes.sandbox_identity]`).
    pub service_account: Option<String>,
    /// `pod`: one plain Pod per sandbox (the only provider).
    pub workload_provider: String,
    /// `Always`, `IfNotPresent` or `Never`; Kubernetes' default when unset.
    pub image_pull_policy: Option<String>,
    /// How long a create waits for the pod to run before answering `Pending`.
    pub sandbox_create_timeout_seconds: u64,
    /// Reads per second against the API server (unset: unlimited).
    pub read_qps: Option<f64>,
    /// Writes per second against the API server (unset: unlimited).
    pub write_qps: Option<f64>,
    /// Extension: timeout of each API request, in seconds (30 when unset).
    pub api_timeout: Option<u64>,
    /// Extension: container ports every sandbox pod declares (endpoints are served only
    /// for these).
    pub exposed_ports: Vec<u16>,
    /// Extension: names this backend's pods (label `opensandbox.io/instance`), so several
    /// backends can share a namespace without adopting each other's sandboxes.
    pub instance: String,
    /// Extension: per-tenant namespace, e.g. `sandbox-{team}`; `{team}` and `{owner}` come
    /// from the reserved metadata `access.team` / `access.owner` the gateway sets. A
    /// sandbox without the key goes to `namespace`.
    pub namespace_template: Option<String>,
    /// Extension: the namespaces (besides `namespace`) sandboxes may be created in; a
    /// templated namespace outside this list is refused.
    pub namespace_allowlist: Vec<String>,
    /// Extension: RuntimeClass of every sandbox pod unless the request picks an allowed one.
    pub runtime_class_name: Option<String>,
    /// Extension: RuntimeClasses a create may pick (`extensions["kubernetes.runtimeClassName"]`).
    pub allowed_runtime_classes: Vec<String>,
    /// Extension: node-selector keys a create may set (`extensions["kubernetes.nodeSelector"]`).
    pub allowed_node_selector_keys: Vec<String>,
    /// Extension: taint keys a create may tolerate (`extensions["kubernetes.tolerations"]`).
    pub allowed_toleration_keys: Vec<String>,
    /// Extension: ServiceAccounts a create may run its pod as
    /// (`extensions["kubernetes.serviceAccountName"]`).
    pub allowed_service_accounts: Vec<String>,
    /// Extension: Secrets a create may expose as environment variables
    /// (`extensions["kubernetes.secretEnv"]` / `["kubernetes.secretEnvFrom"]`).
    pub allowed_secrets: Vec<String>,
    /// Extension: `[kubernetes.sandbox_identity]`, a projected ServiceAccount token for
    /// the gateway's pull bootstrap in every sandbox pod ([`crate::identity`]).
    pub sandbox_identity: Option<crate::identity::SandboxIdentityProjection>,
    /// Upstream key `read_burst`: accepted, ignored.
    #[serde(rename = "read_burst")]
    pub _read_burst: Option<IgnoredAny>,
    /// Upstream key `write_burst`: accepted, ignored.
    #[serde(rename = "write_burst")]
    pub _write_burst: Option<IgnoredAny>,
    /// Upstream key `execd_init_resources`: accepted, ignored.
    #[serde(rename = "execd_init_resources")]
    pub _execd_init_resources: Option<IgnoredAny>,
    /// Upstream key `batchsandbox_template_file`: accepted, ignored.
    #[serde(rename = "batchsandbox_template_file")]
    pub _batchsandbox_template_file: Option<IgnoredAny>,
    /// Upstream key `sandbox_create_poll_interval_seconds`: accepted, ignored.
    #[serde(rename = "sandbox_create_poll_interval_seconds")]
    pub _poll_interval: Option<IgnoredAny>,
    /// Upstream key `informer_enabled`: accepted, ignored.
    #[serde(rename = "informer_enabled")]
    pub _informer_enabled: Option<IgnoredAny>,
    /// Upstream key `informer_resync_seconds`: accepted, ignored.
    #[serde(rename = "informer_resync_seconds")]
    pub _informer_resync_seconds: Option<IgnoredAny>,
    /// Upstream key `informer_watch_timeout_seconds`: accepted, ignored.
    #[serde(rename = "informer_watch_timeout_seconds")]
    pub _informer_watch_timeout_seconds: Option<IgnoredAny>,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        Self {
            kubeconfig_path: None,
            context: None,
            namespace: None,
            service_account: None,
            workload_provider: POD_PROVIDER.into(),
            image_pull_policy: None,
            sandbox_create_timeout_seconds: DEFAULT_CREATE_TIMEOUT_SECS,
            read_qps: None,
            write_qps: None,
            api_timeout: None,
            exposed_ports: vec![8080, 44772],
            instance: "default".into(),
            namespace_template: None,
            namespace_allowlist: Vec::new(),
            runtime_class_name: None,
            allowed_runtime_classes: Vec::new(),
            allowed_node_selector_keys: Vec::new(),
            allowed_toleration_keys: Vec::new(),
            allowed_service_accounts: Vec::new(),
            allowed_secrets: Vec::new(),
            sandbox_identity: None,
            _read_burst: None,
            _write_burst: None,
            _execd_init_resources: None,
            _batchsandbox_template_file: None,
            _poll_interval: None,
            _informer_enabled: None,
            _informer_resync_seconds: None,
            _informer_watch_timeout_seconds: None,
        }
    }
}

pub use gatehouse_lifecycle::validate::is_dns_label;

impl KubernetesConfig {
    /// Effective per-request timeout in seconds.
    pub fn api_timeout_secs(&self) -> u64 {
        self.api_timeout
            .filter(|t| *t >= 1)
            .unwrap_or(DEFAULT_API_TIMEOUT_SECS)
    }

    /// The longest a single driver call may take (a create waits for the pod to run).
    pub fn call_timeout_secs(&self) -> u64 {
        self.api_timeout_secs()
            .max(self.sandbox_create_timeout_seconds + self.api_timeout_secs())
    }

    /// Dotted names (`kubernetes.read_burst`) of upstream keys present that this driver
    /// ignores.
    pub fn ignored_keys(&self) -> Vec<&'static str> {
        [
            ("kubernetes.read_burst", self._read_burst.is_some()),
            ("kubernetes.write_burst", self._write_burst.is_some()),
            (
                "kubernetes.execd_init_resources",
                self._execd_init_resources.is_some(),
            ),
            (
                "kubernetes.batchsandbox_template_file",
                self._batchsandbox_template_file.is_some(),
            ),
            (
                "kubernetes.sandbox_create_poll_interval_seconds",
                self._poll_interval.is_some(),
            ),
            (
                "kubernetes.informer_enabled",
                self._informer_enabled.is_some(),
            ),
            (
                "kubernetes.informer_resync_seconds",
                self._informer_resync_seconds.is_some(),
            ),
            (
                "kubernetes.informer_watch_timeout_seconds",
                self._informer_watch_timeout_seconds.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(k, present)| present.then_some(k))
        .collect()
    }

    /// Checks every value; the error starts with the offending key (without the section).
    pub fn validate(&self) -> Result<(), String> {
        if self.workload_provider != POD_PROVIDER {
            return Err(format!(
                "workload_provider \"{}\" is not supported: only \"pod\" (plain Pods, no operator) is",
                self.workload_provider
            ));
        }
        if let Some(p) = &self.kubeconfig_path {
            if p.trim().is_empty() {
                return Err("kubeconfig_path must not be empty when set".into());
            }
        }
        if let Some(ns) = &self.namespace {
            if !is_dns_label(ns) {
                return Err(format!(
                    "namespace \"{ns}\" must be a DNS-1123 label (lower-case letters, digits, '-')"
                ));
            }
        }
        if let Some(sa) = &self.service_account {
            if !is_dns_label(sa) {
                return Err(format!("service_account \"{sa}\" must be a DNS-1123 label"));
            }
        }
        if let Some(p) = &self.image_pull_policy {
            if !matches!(p.as_str(), "Always" | "IfNotPresent" | "Never") {
                return Err(format!(
                    "image_pull_policy \"{p}\" must be \"Always\", \"IfNotPresent\" or \"Never\""
                ));
            }
        }
        if self.sandbox_create_timeout_seconds == 0 {
            return Err("sandbox_create_timeout_seconds must be at least 1".into());
        }
        for (name, qps) in [("read_qps", self.read_qps), ("write_qps", self.write_qps)] {
            if qps.is_some_and(|q| !q.is_finite() || q <= 0.0) {
                return Err(format!("{name} must be a positive number when set"));
            }
        }
        if self.api_timeout == Some(0) {
            return Err("api_timeout must be at least 1 second".into());
        }
        let mut seen = BTreeSet::new();
        for p in &self.exposed_ports {
            if *p == 0 {
                return Err("exposed_ports must not contain 0".into());
            }
            if !seen.insert(*p) {
                return Err(format!("exposed_ports lists port {p} more than once"));
            }
        }
        if self.instance.is_empty()
            || !gatehouse_lifecycle::validate::is_label_value(&self.instance)
        {
            return Err(format!(
                "instance '{}' must be a non-empty label value (letters, digits, '-', '_', '.')",
                self.instance
            ));
        }
        if let Some(ns) = self.namespace_allowlist.iter().find(|n| !is_dns_label(n)) {
            return Err(format!(
                "namespace_allowlist entry \"{ns}\" must be a DNS-1123 label"
            ));
        }
        if self
            .runtime_class_name
            .as_deref()
            .is_some_and(|r| r.trim().is_empty())
        {
            return Err("runtime_class_name must not be empty when set".into());
        }
        for (name, list) in [
            ("allowed_runtime_classes", &self.allowed_runtime_classes),
            (
                "allowed_node_selector_keys",
                &self.allowed_node_selector_keys,
            ),
            ("allowed_toleration_keys", &self.allowed_toleration_keys),
            ("allowed_service_accounts", &self.allowed_service_accounts),
            ("allowed_secrets", &self.allowed_secrets),
        ] {
            if list.iter().any(|v| v.trim().is_empty()) {
                return Err(format!("{name} must not contain an empty entry"));
            }
        }
        if let Some(si) = &self.sandbox_identity {
            si.validate(self.service_account.as_deref())?;
        }
        if let Some(t) = &self.namespace_template {
            crate::namespace::check_template(t).map_err(|e| format!("namespace_template {e}"))?;
            if self.namespace_allowlist.is_empty() {
                return Err(
                    "namespace_allowlist must list the namespaces namespace_template may resolve to"
                        .into(),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = KubernetesConfig::default();
        assert_eq!(c.workload_provider, "pod");
        assert_eq!(c.sandbox_create_timeout_seconds, 60);
        assert_eq!(c.api_timeout_secs(), 30);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn upstream_keys_load_and_unknown_keys_are_named() {
        let c: KubernetesConfig = serde_json::from_str(
            r#"{"kubeconfig_path":"/k","namespace":"sbx","informer_enabled":true,"read_qps":5,"read_burst":10}"#,
        )
        .unwrap();
        assert_eq!(c.namespace.as_deref(), Some("sbx"));
        assert_eq!(c.read_qps, Some(5.0));
        assert_eq!(
            c.ignored_keys(),
            vec!["kubernetes.read_burst", "kubernetes.informer_enabled"]
        );
        let e = serde_json::from_str::<KubernetesConfig>(r#"{"bogus":1}"#).unwrap_err();
        assert!(e.to_string().contains("bogus"));
    }

    #[test]
    fn validation_names_the_key() {
        let bad = |f: fn(&mut KubernetesConfig)| {
            let mut c = KubernetesConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(
            bad(|c| c.workload_provider = "batchsandbox".into()).starts_with("workload_provider")
        );
        assert!(bad(|c| c.namespace = Some("Bad_NS".into())).starts_with("namespace"));
        assert!(
            bad(|c| c.image_pull_policy = Some("always".into())).starts_with("image_pull_policy")
        );
        assert!(bad(|c| c.sandbox_create_timeout_seconds = 0)
            .starts_with("sandbox_create_timeout_seconds"));
        assert!(bad(|c| c.write_qps = Some(0.0)).starts_with("write_qps"));
        assert!(bad(|c| c.exposed_ports = vec![1, 1]).starts_with("exposed_ports"));
        assert!(bad(|c| c.allowed_secrets = vec![" ".into()]).starts_with("allowed_secrets"));
        assert!(
            bad(|c| c.namespace_template = Some("sandbox-{team}".into()))
                .starts_with("namespace_allowlist")
        );
        assert!(bad(|c| {
            c.namespace_template = Some("sandbox-{nope}".into());
            c.namespace_allowlist = vec!["a".into()];
        })
        .starts_with("namespace_template"));
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("sandbox-team-a1"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("a.b"));
        assert!(!is_dns_label(""));
        assert!(!is_dns_label(&"a".repeat(64)));
    }
}
