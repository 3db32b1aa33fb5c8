//! Operations on existing sandboxes: inspect, list, delete, pause, resume, endpoint, and
//! the engine ping.

use crate::client::{timed, CallError, RUNTIME};
use crate::codes::{
    DELETE_FAILED, ENDPOINT_NOT_AVAILABLE, NOT_PAUSED, NOT_RUNNING, PAUSE_FAILED, QUERY_FAILED,
    RESUME_FAILED,
};
use crate::driver::{container_name, Inner};
use crate::{labels, state};
use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum};
use bollard::query_parameters::{
    EventsOptions, ListContainersOptions, LogsOptions, RemoveContainerOptions,
};
use bollard::Docker;
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use gatehouse_lifecycle::runtime::Discovered;
use gatehouse_lifecycle::{Observed, RuntimeError};
use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// How many containers `list` inspects at once.
const LIST_CONCURRENCY: usize = 8;
/// Pause between checks while another caller is removing a container.
const REMOVAL_POLL: Duration = Duration::from_millis(100);

/// A listed container: its inspection and its creation time (Unix seconds).
type Found = (ContainerInspectResponse, Option<i64>);

/// Checks that the engine answers.
pub(crate) async fn ping(inner: &Inner) -> Result<(), RuntimeError> {
    let docker = inner.client.get().await?;
    timed(inner.limit(), docker.ping())
        .await
        .map(|_| ())
        .map_err(|e| RuntimeError::Unavailable {
            runtime: RUNTIME,
            code: crate::codes::ENGINE_UNAVAILABLE,
            detail: format!("ping: {e}"),
        })
}

/// Inspects a container by name or id; `None` when the engine has no such container.
async fn inspect_raw(
    inner: &Inner,
    docker: &Docker,
    name: &str,
) -> Result<Option<ContainerInspectResponse>, CallError> {
    match timed(inner.limit(), docker.inspect_container(name, None)).await {
        Ok(c) => Ok(Some(c)),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The container of sandbox `id`, if the engine has it and it is one of ours.
async fn find(
    inner: &Inner,
    docker: &Docker,
    id: &str,
    name: &str,
) -> Result<Option<ContainerInspectResponse>, RuntimeError> {
    let c = inspect_raw(inner, docker, name)
        .await
        .map_err(|e| e.into_runtime(QUERY_FAILED, "inspect"))?;
    Ok(c.filter(|c| labels::is_managed(&container_labels(c), id, &inner.cfg.instance)))
}

/// Like [`find`] but `NotFound` when missing.
async fn find_required(
    inner: &Inner,
    id: &str,
) -> Result<(Docker, ContainerInspectResponse), RuntimeError> {
    let name = container_name(id).ok_or_else(|| RuntimeError::NotFound(id.to_string()))?;
    let docker = inner.client.get().await?;
    let c = find(inner, &docker, id, &name)
        .await?
        .ok_or_else(|| RuntimeError::NotFound(id.to_string()))?;
    Ok((docker, c))
}

fn container_labels(c: &ContainerInspectResponse) -> HashMap<String, String> {
    c.config
        .as_ref()
        .and_then(|cfg| cfg.labels.clone())
        .unwrap_or_default()
}

/// Observes sandbox `id` through the container `name` on `docker`.
pub(crate) async fn inspect_with(
    inner: &Inner,
    docker: &Docker,
    id: &str,
    name: &str,
) -> Result<Option<Observed>, RuntimeError> {
    match find(inner, docker, id, name).await? {
        Some(c) => Ok(Some(observe(inner, docker, id, &c).await)),
        None => Ok(None),
    }
}

/// The observation of container `c`; with the agent, an ended sandbox's message carries
/// the agent's report line (how the entrypoint ended).
async fn observe(
    inner: &Inner,
    docker: &Docker,
    id: &str,
    c: &ContainerInspectResponse,
) -> Observed {
    let mut o = state::observe(id, c.state.as_ref());
    let ended = matches!(
        o.state,
        gatehouse_lifecycle::SandboxState::Failed | gatehouse_lifecycle::SandboxState::Terminated
    );
    if ended && inner.execd.is_some() {
        if let Some(name) = container_name(id) {
            if let Ok(text) = read_logs(inner, docker, &name, false, true, 20).await {
                if let Some(line) = crate::execd::exit_line(&text) {
                    o.message = format!("{} {}", o.message, agent_report(line));
                }
            }
        }
    }
    o
}

/// The agent's report line as a sentence: `Entrypoint "app" exited with code 3.`
fn agent_report(line: &str) -> String {
    let line = line
        .strip_prefix(crate::execd::EXIT_LINE_PREFIX)
        .unwrap_or(line)
        .trim();
    let mut chars = line.chars();
    let mut out: String = match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// The last `tail` lines of a container's output, as text.
async fn read_logs(
    inner: &Inner,
    docker: &Docker,
    name: &str,
    stdout: bool,
    stderr: bool,
    tail: usize,
) -> Result<String, CallError> {
    let options = LogsOptions {
        stdout,
        stderr,
        tail: tail.to_string(),
        ..Default::default()
    };
    let mut stream = docker.logs(name, Some(options));
    let mut out = String::new();
    let deadline = Instant::now() + inner.limit();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.next()).await {
            Err(_) => return Err(CallError::Timeout(inner.limit())),
            Ok(None) => return Ok(out),
            Ok(Some(Ok(chunk))) => out.push_str(&String::from_utf8_lossy(&chunk.into_bytes())),
            Ok(Some(Err(e))) => return Err(CallError::Api(e)),
        }
    }
}

/// The sandbox's output (stdout and stderr), the last `tail` lines.
pub(crate) async fn logs(inner: &Inner, id: &str, tail: usize) -> Result<String, RuntimeError> {
    let (docker, c) = find_required(inner, id).await?;
    let name = container_ref(&c, id);
    read_logs(inner, &docker, &name, true, true, tail)
        .await
        .map_err(|e| e.into_runtime(QUERY_FAILED, "logs"))
}

/// The engine's events about the sandbox's container since it was created, one line each,
/// followed by its current state.
pub(crate) async fn events(inner: &Inner, id: &str) -> Result<String, RuntimeError> {
    let (docker, c) = find_required(inner, id).await?;
    let cid = c.id.clone().unwrap_or_default();
    let since = c
        .created
        .as_deref()
        .and_then(|t| state::timestamp(Some(t)))
        .map(|t| t.timestamp())
        .unwrap_or(0);
    let options = EventsOptions {
        since: Some(since.to_string()),
        // The engine compares with sub-second precision: one second ahead includes every
        // event up to now (the engine holds the stream open until then).
        until: Some((Utc::now().timestamp() + 1).to_string()),
        filters: Some(HashMap::from([(
            "container".to_string(),
            vec![cid.clone()],
        )])),
    };
    let mut stream = docker.events(Some(options));
    let mut out = String::new();
    let deadline = Instant::now() + inner.limit();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.next()).await {
            Err(_) => break,
            Ok(None) => break,
            Ok(Some(Ok(ev))) => {
                let when = ev
                    .time
                    .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
                    .map(|t| gatehouse_lifecycle::time::format(&t))
                    .unwrap_or_default();
                let action = ev.action.unwrap_or_default();
                let mut attrs: Vec<String> = ev
                    .actor
                    .and_then(|a| a.attributes)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(k, _)| matches!(k.as_str(), "exitCode" | "signal" | "image"))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                attrs.sort();
                out.push_str(&format!("{when} container {action} {}\n", attrs.join(" ")));
            }
            Ok(Some(Err(e))) => {
                return Err(CallError::Api(e).into_runtime(QUERY_FAILED, "events"));
            }
        }
    }
    let o = observe(inner, &docker, id, &c).await;
    out.push_str(&format!(
        "{} state {} ({}): {}\n",
        gatehouse_lifecycle::time::format(&Utc::now()),
        o.state,
        o.reason,
        o.message
    ));
    Ok(out)
}

/// Observes sandbox `id`.
pub(crate) async fn inspect(inner: &Inner, id: &str) -> Result<Option<Observed>, RuntimeError> {
    let Some(name) = container_name(id) else {
        return Ok(None);
    };
    let docker = inner.client.get().await?;
    inspect_with(inner, &docker, id, &name).await
}

/// Every managed sandbox, stopped ones included.
pub(crate) async fn list(inner: &Inner) -> Result<Vec<Discovered>, RuntimeError> {
    let docker = inner.client.get().await?;
    let filters = HashMap::from([(
        "label".to_string(),
        labels::managed_filter(&inner.cfg.instance),
    )]);
    let options = ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    let summaries = timed(inner.limit(), docker.list_containers(Some(options)))
        .await
        .map_err(|e| e.into_runtime(QUERY_FAILED, "list"))?;

    // Containers can disappear between the list and the inspect: those are skipped.
    let inspected: Vec<Result<Option<Found>, CallError>> = stream::iter(
        summaries
            .into_iter()
            .filter_map(|s| s.id.clone().map(|cid| (cid, s.created))),
    )
    .map(|(cid, created)| {
        let docker = docker.clone();
        async move {
            Ok(inspect_raw(inner, &docker, &cid)
                .await?
                .map(|c| (c, created)))
        }
    })
    .buffered(LIST_CONCURRENCY)
    .collect()
    .await;
    let mut containers = Vec::new();
    for r in inspected {
        if let Some(c) = r.map_err(|e| e.into_runtime(QUERY_FAILED, "list"))? {
            containers.push(c);
        }
    }

    let image_ids: BTreeSet<String> = containers
        .iter()
        .filter_map(|(c, _)| c.image.clone())
        .collect();
    let mut image_labels: HashMap<String, HashMap<String, String>> = HashMap::new();
    for image in image_ids {
        let l = labels_of_image(inner, &docker, &image).await?;
        image_labels.insert(image, l);
    }

    let empty = HashMap::new();
    let mut out = Vec::with_capacity(containers.len());
    for (c, created) in containers {
        let cl = container_labels(&c);
        let Some(id) = cl.get(labels::ID).cloned() else {
            continue;
        };
        let il = c
            .image
            .as_ref()
            .and_then(|i| image_labels.get(i))
            .unwrap_or(&empty);
        let config = c.config.clone().unwrap_or_default();
        out.push(Discovered {
            observed: observe(inner, &docker, &id, &c).await,
            image: config.image.unwrap_or_default(),
            entrypoint: config.cmd.unwrap_or_default(),
            metadata: labels::metadata(&cl, il),
            expires_at: labels::timestamp(&cl, labels::EXPIRES_AT),
            created_at: labels::timestamp(&cl, labels::CREATED_AT)
                .or_else(|| created.and_then(|s| DateTime::<Utc>::from_timestamp(s, 0)))
                .unwrap_or_else(gatehouse_lifecycle::time::now),
        });
    }
    Ok(out)
}

/// The labels an image gives its containers; none when the image is gone.
async fn labels_of_image(
    inner: &Inner,
    docker: &Docker,
    image: &str,
) -> Result<HashMap<String, String>, RuntimeError> {
    match timed(inner.limit(), docker.inspect_image(image)).await {
        Ok(i) => Ok(i.config.and_then(|c| c.labels).unwrap_or_default()),
        Err(e) if e.status() == Some(404) => {
            tracing::warn!(
                image,
                "image of a sandbox is gone; its labels cannot be told from metadata"
            );
            Ok(HashMap::new())
        }
        Err(e) => Err(e.into_runtime(QUERY_FAILED, "inspect_image")),
    }
}

/// Removes sandbox `id`; succeeds when it is already gone.
pub(crate) async fn delete(inner: &Inner, id: &str) -> Result<(), RuntimeError> {
    let Some(name) = container_name(id) else {
        return Ok(());
    };
    let docker = inner.client.get().await?;
    if find(inner, &docker, id, &name).await?.is_some() {
        remove(inner, &docker, &name).await?;
    }
    if let Some(d) = &inner.execd {
        d.remove(id);
    }
    Ok(())
}

/// Force-removes container `name` (killing it, paused or not) with its anonymous volumes.
/// Idempotent: a missing container, or one another caller is removing, ends in `Ok` once
/// it is gone.
pub(crate) async fn remove(inner: &Inner, docker: &Docker, name: &str) -> Result<(), RuntimeError> {
    let deadline = Instant::now() + inner.limit();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(RuntimeError::Failed {
                code: DELETE_FAILED,
                op: "delete",
                detail: format!(
                    "container {name} still exists after {}s",
                    inner.limit().as_secs()
                ),
            });
        }
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        let err = match timed(left, docker.remove_container(name, Some(options))).await {
            Ok(()) => return Ok(()),
            Err(e) if e.status() == Some(404) => return Ok(()),
            Err(e) if e.is_unavailable() => return Err(e.into_runtime(DELETE_FAILED, "delete")),
            Err(e) => e,
        };
        // "removal already in progress" (409) or a race with another remover: done as
        // soon as the container is gone.
        tokio::time::sleep(REMOVAL_POLL).await;
        match inspect_raw(inner, docker, name).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) if err.status() == Some(409) => continue,
            Ok(Some(_)) => return Err(err.into_runtime(DELETE_FAILED, "delete")),
            Err(e) => return Err(e.into_runtime(DELETE_FAILED, "delete")),
        }
    }
}

fn status_of(c: &ContainerInspectResponse) -> (ContainerStateStatusEnum, bool, bool) {
    let s = c.state.clone().unwrap_or_default();
    (
        s.status.unwrap_or(ContainerStateStatusEnum::EMPTY),
        s.running.unwrap_or(false),
        s.paused.unwrap_or(false),
    )
}

fn state_name(status: ContainerStateStatusEnum) -> String {
    match status {
        ContainerStateStatusEnum::EMPTY => "unknown".into(),
        s => s.to_string(),
    }
}

/// Freezes a running sandbox.
pub(crate) async fn pause(inner: &Inner, id: &str) -> Result<(), RuntimeError> {
    let (docker, c) = find_required(inner, id).await?;
    let (status, running, paused) = status_of(&c);
    let not_running = |detail: String| RuntimeError::Conflict {
        code: NOT_RUNNING,
        message: format!(
            "Sandbox {id} is not running ({detail}); only a running sandbox can be paused."
        ),
    };
    if !running || paused {
        return Err(not_running(format!("state: {}", state_name(status))));
    }
    match timed(
        inner.limit(),
        docker.pause_container(&container_ref(&c, id)),
    )
    .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.status() == Some(404) => Err(RuntimeError::NotFound(id.to_string())),
        Err(e) if e.status() == Some(409) => Err(not_running(e.message())),
        Err(e) => Err(e.into_runtime(PAUSE_FAILED, "pause")),
    }
}

/// Thaws a paused sandbox.
pub(crate) async fn resume(inner: &Inner, id: &str) -> Result<(), RuntimeError> {
    let (docker, c) = find_required(inner, id).await?;
    let (status, _, paused) = status_of(&c);
    let not_paused = |detail: String| RuntimeError::Conflict {
        code: NOT_PAUSED,
        message: format!(
            "Sandbox {id} is not paused ({detail}); only a paused sandbox can be resumed."
        ),
    };
    if !paused {
        return Err(not_paused(format!("state: {}", state_name(status))));
    }
    match timed(
        inner.limit(),
        docker.unpause_container(&container_ref(&c, id)),
    )
    .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.status() == Some(404) => Err(RuntimeError::NotFound(id.to_string())),
        Err(e) if e.status() == Some(409) || e.message().contains("not paused") => {
            Err(not_paused(e.message()))
        }
        Err(e) => Err(e.into_runtime(RESUME_FAILED, "resume")),
    }
}

/// The engine's id of the container, else its name.
fn container_ref(c: &ContainerInspectResponse, id: &str) -> String {
    c.id.clone()
        .or_else(|| container_name(id))
        .unwrap_or_default()
}

/// The address on which this process reaches `port` of sandbox `id`.
pub(crate) async fn endpoint(
    inner: &Inner,
    id: &str,
    port: u16,
) -> Result<SocketAddr, RuntimeError> {
    let (_, c) = find_required(inner, id).await?;
    let host_config = c.host_config.clone().unwrap_or_default();
    let host_mode = host_config
        .network_mode
        .as_deref()
        .is_some_and(|m| m.eq_ignore_ascii_case("host"));
    if host_mode {
        // The agent's port is the one its container was started with.
        let host_port = match c.config.as_ref().and_then(|c| c.entrypoint.as_deref()) {
            Some(args) if port == crate::execd::EXECD_PORT => {
                crate::execd::ExecdDelivery::listen_port(args)
            }
            _ => port,
        };
        return Ok(SocketAddr::from((inner.cfg.dial_host(), host_port)));
    }

    let mut published: Vec<u16> = host_config
        .port_bindings
        .unwrap_or_default()
        .keys()
        .filter_map(|k| k.strip_suffix("/tcp").and_then(|p| p.parse().ok()))
        .collect();
    published.sort_unstable();
    if !published.contains(&port) {
        let list = if published.is_empty() {
            "none".to_string()
        } else {
            published
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(RuntimeError::Invalid {
            status: 404,
            code: ENDPOINT_NOT_AVAILABLE,
            message: format!(
                "Port {port} is not published by this sandbox; published ports: {list}."
            ),
        });
    }

    let bindings = c
        .network_settings
        .clone()
        .and_then(|n| n.ports)
        .and_then(|mut p| p.remove(&format!("{port}/tcp")))
        .flatten()
        .unwrap_or_default();
    // Prefer the IPv4 binding; never a bridge address.
    let bound = bindings
        .iter()
        .filter_map(|b| {
            let hp: u16 = b.host_port.as_deref()?.parse().ok()?;
            let ip = b.host_ip.as_deref().unwrap_or("");
            match ip.parse::<Ipv4Addr>() {
                Ok(ip) if ip.is_unspecified() => Some((0, Ipv4Addr::LOCALHOST, hp)),
                Ok(ip) => Some((0, ip, hp)),
                Err(_) if ip.is_empty() => Some((1, inner.cfg.dial_host(), hp)),
                Err(_) => Some((2, inner.cfg.dial_host(), hp)),
            }
        })
        .min_by_key(|(rank, _, _)| *rank);
    match bound {
        Some((_, ip, hp)) => Ok(SocketAddr::from((ip, hp))),
        None => {
            let (status, _, _) = status_of(&c);
            Err(RuntimeError::Conflict {
                code: NOT_RUNNING,
                message: format!(
                    "Sandbox {id} is not running (state: {}); port {port} has no host binding.",
                    state_name(status)
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::agent_report;

    #[test]
    fn agent_report_is_a_sentence() {
        assert_eq!(
            agent_report("gatehouse-execd: entrypoint \"sh\" exited with code 3"),
            "Entrypoint \"sh\" exited with code 3."
        );
        assert_eq!(
            agent_report(
                "gatehouse-execd: cannot start entrypoint \"/x\": No such file (os error 2)"
            ),
            "Cannot start entrypoint \"/x\": No such file (os error 2)."
        );
    }
}
