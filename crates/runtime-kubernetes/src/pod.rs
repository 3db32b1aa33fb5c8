//! The Pod of a sandbox: one container running the entrypoint, labelled and annotated as
//! [`crate::labels`] describes, hardened, with the requested resources as both requests
//! and limits.

use crate::config::KubernetesConfig;
use crate::labels;
use crate::placement::Placement;
use gatehouse_lifecycle::SandboxSpec;
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvFromSource, EnvVar, EnvVarSource, Pod,
    PodSecurityContext, PodSpec, ResourceRequirements, SeccompProfile, SecretEnvSource,
    SecretKeySelector, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// Prefix of every sandbox pod name.
pub const NAME_PREFIX: &str = "sandbox-";
/// Name of the sandbox container.
pub const CONTAINER: &str = "sandbox";

/// The pod name of sandbox `id`, or `None` when `id` cannot name a pod (DNS-1123 label).
pub fn pod_name(id: &str) -> Option<String> {
    let name = format!("{NAME_PREFIX}{id}");
    crate::config::is_dns_label(&name).then_some(name)
}

/// CPU as a Kubernetes quantity: nano-CPUs rounded up to millicores.
fn cpu(nano: i64) -> Quantity {
    Quantity(format!("{}m", (nano + 999_999) / 1_000_000))
}

/// The pod of `spec` in `namespace`, placed as `placement` says.
pub fn build(
    cfg: &KubernetesConfig,
    spec: &SandboxSpec,
    placement: &Placement,
    name: &str,
    namespace: &str,
) -> Pod {
    let mut res = BTreeMap::new();
    if let Some(n) = spec.resources.nano_cpus {
        res.insert("cpu".to_string(), cpu(n));
    }
    if let Some(m) = spec.resources.memory_bytes {
        res.insert("memory".to_string(), Quantity(m.to_string()));
    }
    let resources = (!res.is_empty()).then(|| ResourceRequirements {
        requests: Some(res.clone()),
        limits: Some(res),
        ..Default::default()
    });
    let identity = cfg.sandbox_identity.as_ref();
    let mut env: Vec<EnvVar> = spec
        .env
        .iter()
        // The token file's variable is the driver's, never the request's.
        .filter(|(k, _)| identity.is_none() || k.as_str() != crate::identity::TOKEN_ENV)
        .map(|(k, v)| EnvVar {
            name: k.clone(),
            value: Some(v.clone()),
            ..Default::default()
        })
        .collect();
    // Secret refs: the kubelet reads the values; they never pass through the backend.
    env.extend(placement.secret_env.iter().map(|e| EnvVar {
        name: e.name.clone(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: e.secret_key_ref.name.clone(),
                key: e.secret_key_ref.key.clone(),
                optional: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }));
    env.extend(identity.map(|i| i.env()));
    let env_from: Vec<EnvFromSource> = placement
        .secret_env_from
        .iter()
        .map(|name| EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: name.clone(),
                optional: None,
            }),
            ..Default::default()
        })
        .collect();
    let ports: Vec<ContainerPort> = cfg
        .exposed_ports
        .iter()
        .map(|p| ContainerPort {
            container_port: i32::from(*p),
            protocol: Some("TCP".into()),
            ..Default::default()
        })
        .collect();
    let container = Container {
        name: CONTAINER.into(),
        image: Some(spec.image.clone()),
        image_pull_policy: cfg.image_pull_policy.clone(),
        // `command` replaces the image's ENTRYPOINT, so exactly the requested process runs.
        command: Some(spec.entrypoint.clone()),
        env: (!env.is_empty()).then_some(env),
        env_from: (!env_from.is_empty()).then_some(env_from),
        ports: (!ports.is_empty()).then_some(ports),
        resources,
        volume_mounts: identity.map(|i| vec![i.mount()]),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut node_selector = placement.node_selector.clone();
    if let Some(p) = &spec.platform {
        node_selector.insert("kubernetes.io/os".to_string(), p.os.clone());
        node_selector.insert("kubernetes.io/arch".to_string(), p.arch.clone());
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels::for_spec(spec, &cfg.instance)),
            annotations: Some(labels::annotations(spec)),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![container],
            restart_policy: Some("Never".into()),
            service_account_name: placement.service_account_name.clone(),
            // No API token: only the audience-bound identity volume, when configured.
            automount_service_account_token: Some(false),
            volumes: identity.map(|i| vec![i.volume()]),
            enable_service_links: Some(false),
            node_selector: (!node_selector.is_empty()).then_some(node_selector),
            runtime_class_name: placement.runtime_class_name.clone(),
            tolerations: (!placement.tolerations.is_empty()).then(|| placement.tolerations.clone()),
            security_context: Some(PodSecurityContext {
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_lifecycle::model::PlatformSpec;
    use gatehouse_lifecycle::validate::Resources;

    fn spec() -> SandboxSpec {
        SandboxSpec {
            id: "abc".into(),
            image: "busybox:1".into(),
            image_auth: None,
            entrypoint: vec!["sleep".into(), "60".into()],
            env: BTreeMap::from([("A".to_string(), "1".to_string())]),
            metadata: BTreeMap::from([("team".to_string(), "core".to_string())]),
            resources: Resources {
                nano_cpus: Some(500_000_000),
                memory_bytes: Some(64 << 20),
            },
            expires_at: None,
            created_at: gatehouse_lifecycle::time::now(),
            platform: Some(PlatformSpec {
                os: "linux".into(),
                arch: "amd64".into(),
            }),
            extensions: Default::default(),
            execd_token: None,
        }
    }

    #[test]
    fn hardened_pod() {
        let cfg = KubernetesConfig {
            service_account: Some("sandbox".into()),
            image_pull_policy: Some("IfNotPresent".into()),
            ..Default::default()
        };
        let placement = Placement {
            runtime_class_name: Some("gvisor".into()),
            node_selector: BTreeMap::from([("pool".to_string(), "a".to_string())]),
            tolerations: Vec::new(),
            service_account_name: cfg.service_account.clone(),
            ..Default::default()
        };
        let p = build(&cfg, &spec(), &placement, "sandbox-abc", "ns1");
        assert_eq!(p.metadata.namespace.as_deref(), Some("ns1"));
        assert_eq!(p.metadata.labels.as_ref().unwrap()[labels::ID], "abc");
        let s = p.spec.unwrap();
        assert_eq!(s.automount_service_account_token, Some(false));
        assert_eq!(s.restart_policy.as_deref(), Some("Never"));
        assert_eq!(s.service_account_name.as_deref(), Some("sandbox"));
        assert_eq!(
            s.security_context.unwrap().seccomp_profile.unwrap().type_,
            "RuntimeDefault"
        );
        assert_eq!(s.runtime_class_name.as_deref(), Some("gvisor"));
        let sel = s.node_selector.unwrap();
        assert_eq!(
            (sel["kubernetes.io/arch"].as_str(), sel["pool"].as_str()),
            ("amd64", "a")
        );
        let c = &s.containers[0];
        assert_eq!(c.command, Some(vec!["sleep".to_string(), "60".to_string()]));
        assert_eq!(c.args, None);
        assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
        let sc = c.security_context.clone().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
        let r = c.resources.clone().unwrap();
        assert_eq!(r.limits.as_ref().unwrap()["cpu"], Quantity("500m".into()));
        assert_eq!(
            r.requests.unwrap()["memory"],
            Quantity((64u64 << 20).to_string())
        );
        assert_eq!(c.ports.as_ref().unwrap().len(), 2);
        assert_eq!(c.env.as_ref().unwrap()[0].name, "A");
        assert_eq!(c.env_from, None);
    }

    #[test]
    fn secret_refs_and_service_account() {
        let placement = Placement {
            service_account_name: Some("runner".into()),
            secret_env: gatehouse_lifecycle::driver_config::secret_env(
                r#"[{"name":"T","secretKeyRef":{"name":"creds","key":"token"}}]"#,
            )
            .unwrap(),
            secret_env_from: vec!["extra".into()],
            ..Default::default()
        };
        let p = build(
            &KubernetesConfig::default(),
            &spec(),
            &placement,
            "sandbox-abc",
            "ns1",
        );
        let s = p.spec.unwrap();
        assert_eq!(s.service_account_name.as_deref(), Some("runner"));
        let c = &s.containers[0];
        let env = c.env.clone().unwrap();
        let t = env.iter().find(|e| e.name == "T").unwrap();
        assert_eq!(t.value, None);
        let r = t.value_from.clone().unwrap().secret_key_ref.unwrap();
        assert_eq!((r.name.as_str(), r.key.as_str()), ("creds", "token"));
        let from = c.env_from.clone().unwrap();
        assert_eq!(from[0].secret_ref.clone().unwrap().name, "extra");
    }

    #[test]
    fn the_identity_token_is_projected_when_configured() {
        let cfg = KubernetesConfig {
            service_account: Some("default-sa".into()),
            sandbox_identity: Some(crate::identity::SandboxIdentityProjection {
                service_account: Some("sandbox".into()),
                audience: "gatehouse".into(),
                expiration_seconds: 900,
            }),
            ..Default::default()
        };
        let placement = crate::placement::from_extensions(&cfg, &Default::default()).unwrap();
        let mut s = spec();
        s.env
            .insert(crate::identity::TOKEN_ENV.into(), "/forged".into());
        let p = build(&cfg, &s, &placement, "sandbox-abc", "ns1")
            .spec
            .unwrap();
        assert_eq!(p.service_account_name.as_deref(), Some("sandbox"));
        assert_eq!(p.automount_service_account_token, Some(false));
        let v = &p.volumes.unwrap()[0];
        let t = v.projected.clone().unwrap().sources.unwrap()[0]
            .service_account_token
            .clone()
            .unwrap();
        assert_eq!(
            (t.audience.as_deref(), t.expiration_seconds),
            (Some("gatehouse"), Some(900))
        );
        let c = &p.containers[0];
        let m = &c.volume_mounts.clone().unwrap()[0];
        assert_eq!(
            (m.name.as_str(), m.read_only),
            (v.name.as_str(), Some(true))
        );
        let env: Vec<_> = c
            .env
            .clone()
            .unwrap()
            .into_iter()
            .filter(|e| e.name == crate::identity::TOKEN_ENV)
            .collect();
        assert_eq!(env.len(), 1);
        assert_eq!(env[0].value.as_deref(), Some(crate::identity::TOKEN_FILE));
        // Off by default: no volume, no variable.
        let p = build(
            &KubernetesConfig::default(),
            &spec(),
            &Placement::default(),
            "sandbox-abc",
            "ns1",
        )
        .spec
        .unwrap();
        assert!(p.volumes.is_none() && p.containers[0].volume_mounts.is_none());
    }

    #[test]
    fn names_and_cpu() {
        assert_eq!(pod_name("abc-1").as_deref(), Some("sandbox-abc-1"));
        assert_eq!(pod_name("A_b"), None);
        assert_eq!(cpu(1), Quantity("1m".into()));
        assert_eq!(cpu(2_000_000_000), Quantity("2000m".into()));
    }
}
