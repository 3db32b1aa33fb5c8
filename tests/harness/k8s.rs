//! The real kube-apiserver the Kubernetes tests run against (`dev/kubernetes/`).
//!
//! [`Cluster::shared`] is the one `make test` starts (its `DIR/env` exported:
//! `KUBECONFIG`, `GATEHOUSE_KUBE_SERVER`, `GATEHOUSE_KUBE_TOKEN`, `GATEHOUSE_KUBE_CA_FILE`);
//! a test fails with a clear message when that environment is missing. [`Cluster::private`]
//! starts a throwaway cluster of its own (for tests that stop the API server).

use anyhow::{bail, Context, Result};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A running API server and an admin client for it.
pub struct Cluster {
    /// Admin kubeconfig (token auth, `system:masters`).
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    /// The cluster CA file.
    pub ca_file: PathBuf,
    /// An admin client.
    pub client: Client,
    /// Set for a private cluster: its directory (stopped and removed on drop).
    private_dir: Option<PathBuf>,
}

fn env(name: &str) -> Result<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => bail!(
            "{name} is not set: the Kubernetes tests need the kube-apiserver `make test` starts \
             (dev/kubernetes/cluster.sh start DIR; then export DIR/env)"
        ),
    }
}

/// A client from a kubeconfig file.
pub async fn client_from(kubeconfig: &Path) -> Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(cfg)?)
}

impl Cluster {
    /// The cluster `make test` started; fails clearly when its environment is missing.
    pub async fn shared() -> Result<Self> {
        let kubeconfig = PathBuf::from(env("KUBECONFIG")?);
        let server = env("GATEHOUSE_KUBE_SERVER")?;
        let ca_file = PathBuf::from(env("GATEHOUSE_KUBE_CA_FILE")?);
        let client = client_from(&kubeconfig).await?;
        Ok(Self {
            kubeconfig,
            server,
            ca_file,
            client,
            private_dir: None,
        })
    }

    /// A fresh cluster of its own in a temporary directory (about 5 s to start).
    pub async fn private() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("gatehouse-kube-{}", uuid::Uuid::new_v4()));
        let script = crate::repo_root().join("dev/kubernetes/cluster.sh");
        let out = Command::new(&script)
            .arg("start")
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        if !out.status.success() {
            bail!(
                "cluster.sh start failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let envfile = std::fs::read_to_string(dir.join("env"))?;
        let get = |k: &str| {
            envfile
                .lines()
                .find_map(|l| l.strip_prefix(&format!("export {k}=")))
                .map(|v| v.trim_matches('\'').to_string())
                .unwrap_or_default()
        };
        let kubeconfig = PathBuf::from(get("KUBECONFIG"));
        let client = client_from(&kubeconfig).await?;
        Ok(Self {
            kubeconfig,
            server: get("GATEHOUSE_KUBE_SERVER"),
            ca_file: PathBuf::from(get("GATEHOUSE_KUBE_CA_FILE")),
            client,
            private_dir: Some(dir),
        })
    }

    /// The API server's pid (private clusters only).
    fn apiserver_pid(&self) -> Result<u32> {
        let dir = self.private_dir.as_ref().context("not a private cluster")?;
        Ok(std::fs::read_to_string(dir.join("apiserver.pid"))?
            .trim()
            .parse()?)
    }

    /// Stops the API server (etcd keeps running) and returns its command line, for
    /// [`Cluster::start_apiserver`].
    pub fn stop_apiserver(&self) -> Result<Vec<String>> {
        let pid = self.apiserver_pid()?;
        let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))?
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status()?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
            && std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| !s.contains(") Z "))
                .unwrap_or(false)
        {
            if std::time::Instant::now() > deadline {
                bail!("kube-apiserver {pid} did not exit");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(argv)
    }

    /// Starts the API server again with `argv` (same port, same etcd) and waits for it.
    pub async fn start_apiserver(&self, argv: &[String]) -> Result<()> {
        let dir = self.private_dir.as_ref().context("not a private cluster")?;
        let (bin, args) = argv.split_first().context("empty command line")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("kube-apiserver.log"))?;
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        std::fs::write(dir.join("apiserver.pid"), child.id().to_string())?;
        let client = self.client.clone();
        crate::wait_for("kube-apiserver back", Duration::from_secs(60), || {
            let client = client.clone();
            async move { client.apiserver_version().await.ok() }
        })
        .await?;
        Ok(())
    }

    /// Creates a namespace (and its `sandbox` ServiceAccount the pods run as).
    pub async fn namespace(&self, name: &str) -> Result<()> {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        self.service_account(name, "sandbox").await
    }

    /// Creates a ServiceAccount.
    pub async fn service_account(&self, ns: &str, name: &str) -> Result<()> {
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<ServiceAccount>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &sa)
            .await
            .with_context(|| format!("creating serviceaccount {ns}/{name}"))?;
        Ok(())
    }

    /// Grants ServiceAccount `ns/sa` exactly `verbs` on pods in `ns`.
    pub async fn grant_pods(&self, ns: &str, sa: &str, verbs: &[&str]) -> Result<()> {
        let name = format!("{sa}-pods");
        let role = Role {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            rules: Some(vec![PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["pods".into()]),
                verbs: verbs.iter().map(|v| v.to_string()).collect(),
                ..Default::default()
            }]),
        };
        Api::<Role>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &role)
            .await?;
        let binding = RoleBinding {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "Role".into(),
                name,
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: sa.into(),
                namespace: Some(ns.into()),
                ..Default::default()
            }]),
        };
        Api::<RoleBinding>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &binding)
            .await?;
        Ok(())
    }

    /// A TokenRequest token of ServiceAccount `ns/sa` for `audience`, valid for
    /// `seconds`, bound to `pod` when given (what the kubelet projects into a pod).
    pub async fn token(
        &self,
        ns: &str,
        sa: &str,
        audience: &str,
        pod: Option<&Pod>,
        seconds: i64,
    ) -> Result<String> {
        let req = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(vec![audience.into()]),
                bound_object_ref: pod.map(|p| BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: p.metadata.name.clone(),
                    uid: p.metadata.uid.clone(),
                }),
                expiration_seconds: Some(seconds),
                ..Default::default()
            }),
            ..Default::default()
        };
        Api::<ServiceAccount>::namespaced(self.client.clone(), ns)
            .create_token_request(sa, &PostParams::default(), &req)
            .await?
            .status
            .context("TokenRequest without status")?
            .token
            .context("TokenRequest without a token")
    }

    /// A kubeconfig (written into `dir`) authenticating as ServiceAccount `ns/sa` with a
    /// token from the TokenRequest API.
    pub async fn kubeconfig_for(&self, ns: &str, sa: &str, dir: &Path) -> Result<PathBuf> {
        let token = self
            .token(ns, sa, "https://kubernetes.default.svc", None, 3600)
            .await?;
        let path = dir.join(format!("kubeconfig-{ns}-{sa}"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority: {}\n\
                 users:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: {ns}\ncurrent-context: c\n",
                self.server,
                self.ca_file.display()
            ),
        )?;
        Ok(path)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(dir) = self.private_dir.take() {
            let _ = Command::new(crate::repo_root().join("dev/kubernetes/cluster.sh"))
                .arg("stop")
                .arg(&dir)
                .env("GATEHOUSE_KUBE_STOP_GRACE", "0")
                .status();
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
