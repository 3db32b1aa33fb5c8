//! The driver's operations on pods: every API request is rate-limited, bounded by the
//! API timeout and mapped by [`crate::errors`].

use crate::codes::{self, DELETE_FAILED, QUERY_FAILED, START_FAILED};
use crate::driver::{Inner, RUNTIME};
use crate::errors::{self, Call};
use crate::labels;
use crate::placement;
use crate::pod::{self, pod_name};
use crate::state::observe;
use gatehouse_lifecycle::runtime::Discovered;
use gatehouse_lifecycle::{Observed, RuntimeError, SandboxSpec, SandboxState};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::Api;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Runs one API request under the API timeout, mapping its error.
async fn request<T>(
    inner: &Inner,
    call: Call<'_>,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, RuntimeError> {
    match tokio::time::timeout(inner.timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(errors::map(e, call)),
        Err(_) => Err(RuntimeError::Unavailable {
            runtime: RUNTIME,
            code: codes::UNAVAILABLE,
            detail: format!(
                "{} pods in {}: no answer within {} s",
                call.verb,
                call.namespace,
                inner.timeout.as_secs()
            ),
        }),
    }
}

fn pods(inner: &Inner, ns: &str) -> Api<Pod> {
    Api::namespaced(inner.client.clone(), ns)
}

/// `GET /version`: whether the API server answers.
pub(crate) async fn ping(inner: &Inner) -> Result<(), RuntimeError> {
    inner.reads.acquire().await;
    let call = Call {
        verb: "get",
        namespace: "",
        code: QUERY_FAILED,
    };
    request(inner, call, inner.client.apiserver_version())
        .await
        .map(|_| ())
}

/// Whether a create may answer: the pod runs, or it will not.
fn settled(o: &Observed) -> bool {
    matches!(
        o.state,
        SandboxState::Running | SandboxState::Failed | SandboxState::Terminated
    )
}

/// Creates the pod, then waits (on the watch, up to `sandbox_create_timeout_seconds`) for
/// it to run or fail; still `Pending` after that is answered as such.
pub(crate) async fn create(inner: &Inner, spec: &SandboxSpec) -> Result<Observed, RuntimeError> {
    let Some(name) = pod_name(&spec.id) else {
        return Err(RuntimeError::Invalid {
            status: 400,
            code: gatehouse_lifecycle::codes::INVALID_PARAMETER,
            message: format!("Sandbox id '{}' cannot name a Kubernetes pod.", spec.id),
        });
    };
    if spec.entrypoint.first().is_none_or(|c| c.trim().is_empty()) {
        return Err(RuntimeError::Invalid {
            status: 400,
            code: gatehouse_lifecycle::codes::INVALID_ENTRYPOINT,
            message: "Entrypoint must contain at least one command.".into(),
        });
    }
    if spec.image_auth.is_some() {
        return Err(RuntimeError::Invalid {
            status: 400,
            code: codes::API_NOT_SUPPORTED,
            message: "'image.auth' is not supported on the Kubernetes runtime: give the sandbox \
                      ServiceAccount (kubernetes.service_account) imagePullSecrets instead."
                .into(),
        });
    }
    let placement =
        placement::from_extensions(&inner.cfg, &spec.extensions).map_err(|message| {
            RuntimeError::Invalid {
                status: 400,
                code: codes::PLACEMENT_NOT_ALLOWED,
                message,
            }
        })?;
    if let Some(e) = placement
        .secret_env
        .iter()
        .find(|e| spec.env.contains_key(&e.name))
    {
        return Err(RuntimeError::Invalid {
            status: 400,
            code: codes::PLACEMENT_NOT_ALLOWED,
            message: format!(
                "Environment variable '{}' is set both in 'env' and in '{}'.",
                e.name,
                placement::SECRET_ENV
            ),
        });
    }
    let ns = inner.namespace_for(spec)?;
    let body = pod::build(&inner.cfg, spec, &placement, &name, &ns);
    let mut changed = inner.watches.subscribe();
    inner.writes.acquire().await;
    let call = Call {
        verb: "create",
        namespace: &ns,
        code: START_FAILED,
    };
    let created = match request(
        inner,
        call,
        pods(inner, &ns).create(&PostParams::default(), &body),
    )
    .await
    {
        Ok(p) => p,
        Err(e @ RuntimeError::Unavailable { .. }) => {
            // The API server may have created the pod before the answer was lost: remove
            // it (best effort; a pod left anyway is adopted, and expires, on reconcile).
            let api = pods(inner, &ns);
            let dp = DeleteParams::default();
            if let Ok(Ok(_)) = tokio::time::timeout(inner.timeout, api.delete(&name, &dp)).await {
                tracing::warn!(namespace = %ns, pod = %name, "removed a pod whose create answer was lost");
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    tracing::info!(namespace = %ns, pod = %name, "sandbox pod created");
    let mut last = observe(&spec.id, &created);
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(inner.cfg.sandbox_create_timeout_seconds);
    loop {
        if let Some(p) = inner.watches.get(&ns, &name) {
            last = observe(&spec.id, &p);
        }
        if settled(&last) {
            return Ok(last);
        }
        match tokio::time::timeout_at(deadline, changed.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    tracing::info!(namespace = %ns, pod = %name, state = %last.state, reason = %last.reason,
        "sandbox pod not running within sandbox_create_timeout_seconds; answering its current state");
    Ok(last)
}

/// The pod of sandbox `id` and its namespace: from the watches, else asked of the API
/// server in every managed namespace (a pod created a moment ago may not be observed yet).
async fn find(inner: &Inner, id: &str) -> Result<Option<(String, Arc<Pod>)>, RuntimeError> {
    let Some(name) = pod_name(id) else {
        return Ok(None);
    };
    if let Some(found) = inner.watches.find(&name) {
        return Ok(Some(found));
    }
    for ns in &inner.namespaces {
        inner.reads.acquire().await;
        let call = Call {
            verb: "get",
            namespace: ns,
            code: QUERY_FAILED,
        };
        if let Some(p) = request(inner, call, pods(inner, ns).get_opt(&name)).await? {
            if is_ours(inner, &p, id) {
                return Ok(Some((ns.clone(), Arc::new(p))));
            }
        }
    }
    Ok(None)
}

/// Whether `pod` is sandbox `id` of this driver instance.
fn is_ours(inner: &Inner, pod: &Pod, id: &str) -> bool {
    let l = pod.metadata.labels.clone().unwrap_or_default();
    l.get(labels::ID).map(String::as_str) == Some(id)
        && l.get(labels::MANAGED_BY).map(String::as_str) == Some(labels::MANAGED_BY_VALUE)
        && l.get(labels::INSTANCE) == Some(&inner.cfg.instance)
}

/// Observes one sandbox.
pub(crate) async fn inspect(inner: &Inner, id: &str) -> Result<Option<Observed>, RuntimeError> {
    Ok(find(inner, id).await?.map(|(_, p)| observe(id, &p)))
}

/// What adopting `pod` needs, or `None` for a pod that is not a live sandbox.
fn discovered(pod: &Pod) -> Option<Discovered> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let l = pod.metadata.labels.clone().unwrap_or_default();
    let a = pod.metadata.annotations.clone().unwrap_or_default();
    let id = l.get(labels::ID)?.clone();
    let c = pod.spec.as_ref().and_then(|s| s.containers.first());
    Some(Discovered {
        observed: observe(&id, pod),
        image: c.and_then(|c| c.image.clone()).unwrap_or_default(),
        entrypoint: c.and_then(|c| c.command.clone()).unwrap_or_default(),
        metadata: labels::metadata(&l),
        expires_at: labels::timestamp(&a, labels::EXPIRES_AT),
        created_at: labels::timestamp(&a, labels::CREATED_AT)
            .or(pod
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(crate::state::time))
            .unwrap_or_else(gatehouse_lifecycle::time::now),
    })
}

/// Every live sandbox of this instance: from the watches when all are in sync, else
/// listed from the API server (which answers `Unavailable` while it is away, so the
/// backend never drops records on an outage).
pub(crate) async fn list(inner: &Inner) -> Result<Vec<Discovered>, RuntimeError> {
    if inner.watches.all_in_sync() {
        return Ok(inner
            .watches
            .pods()
            .iter()
            .filter_map(|p| discovered(p))
            .collect());
    }
    let selector = labels::managed_selector(&inner.cfg.instance);
    let mut out = Vec::new();
    for ns in &inner.namespaces {
        inner.reads.acquire().await;
        let call = Call {
            verb: "list",
            namespace: ns,
            code: QUERY_FAILED,
        };
        let l = request(
            inner,
            call,
            pods(inner, ns).list(&ListParams::default().labels(&selector)),
        )
        .await?;
        out.extend(l.items.iter().filter_map(discovered));
    }
    Ok(out)
}

/// Deletes the pod; succeeds when it is already gone.
pub(crate) async fn delete(inner: &Inner, id: &str) -> Result<(), RuntimeError> {
    let Some(name) = pod_name(id) else {
        return Ok(());
    };
    let targets = match inner.watches.find(&name) {
        Some((ns, _)) => vec![ns],
        None => inner.namespaces.clone(),
    };
    for ns in targets {
        inner.writes.acquire().await;
        let call = Call {
            verb: "delete",
            namespace: &ns,
            code: DELETE_FAILED,
        };
        match request(
            inner,
            call,
            pods(inner, &ns).delete(&name, &DeleteParams::default()),
        )
        .await
        {
            Ok(_) => {
                tracing::info!(namespace = %ns, pod = %name, "sandbox pod deleted");
                return Ok(());
            }
            Err(RuntimeError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The pod IP and `port` of a running sandbox.
pub(crate) async fn endpoint(
    inner: &Inner,
    id: &str,
    port: u16,
) -> Result<SocketAddr, RuntimeError> {
    let Some((_, pod)) = find(inner, id).await? else {
        return Err(RuntimeError::NotFound(id.to_string()));
    };
    let o = observe(id, &pod);
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    match ip {
        Some(ip) if o.state == SandboxState::Running => Ok(SocketAddr::new(ip, port)),
        _ => Err(RuntimeError::Conflict {
            code: codes::NOT_RUNNING,
            message: format!(
                "Sandbox {id} is not running (state: {}, {}); it has no pod IP to reach port {port}.",
                o.state, o.reason
            ),
        }),
    }
}
