//! Mapping of a Pod to the lifecycle state, with a reason and a message.
//!
//! | pod | state | reason |
//! |---|---|---|
//! | `deletionTimestamp` set | Stopping | `POD_TERMINATING` |
//! | waiting `ErrImagePull`, `ImagePullBackOff`, `InvalidImageName`, `ErrImageNeverPull` | Failed | `IMAGE_PULL_FAILED` |
//! | waiting `CrashLoopBackOff` | Failed | `CRASH_LOOP_BACK_OFF` |
//! | terminated `OOMKilled` | Failed | `OOM_KILLED` |
//! | phase Failed, reason `Evicted` | Failed | `EVICTED` |
//! | terminated, exit code 0 / phase Succeeded | Terminated | `CONTAINER_EXITED` |
//! | terminated, exit code ≠ 0 / phase Failed | Failed | `CONTAINER_EXITED_ERROR` |
//! | Running, container ready or running, pod IP set | Running | `POD_RUNNING` |
//! | `PodScheduled=False` reason `Unschedulable` | Pending | `POD_UNSCHEDULABLE` |
//! | not bound to a node | Pending | `POD_SCHEDULING` |
//! | otherwise Pending (container creating) | Pending | `POD_STARTING` |
//! | phase Unknown | Unknown | `POD_STATE_UNKNOWN` |
//!
//! The Kubernetes reason and message (e.g. `ErrImagePull: ...`) are kept in the message.

use chrono::{DateTime, Utc};
use gatehouse_lifecycle::{Observed, SandboxState};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Waiting reasons meaning the image will not come.
const IMAGE_REASONS: [&str; 5] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "RegistryUnavailable",
];

/// Maps the pod of sandbox `id`.
pub fn observe(id: &str, pod: &Pod) -> Observed {
    let (state, reason, message, since) = classify(pod);
    Observed {
        id: id.to_string(),
        state,
        reason: reason.to_string(),
        message,
        since,
    }
}

/// The sandbox container's status (the first one; sandbox pods have one container).
fn container(pod: &Pod) -> Option<&ContainerStatus> {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
}

/// `reason: message`, or whichever is set.
fn detail(reason: Option<&str>, message: Option<&str>) -> String {
    match (
        reason.filter(|r| !r.is_empty()),
        message.filter(|m| !m.is_empty()),
    ) {
        (Some(r), Some(m)) => format!("{r}: {m}"),
        (Some(r), None) => r.to_string(),
        (None, Some(m)) => m.to_string(),
        (None, None) => String::new(),
    }
}

/// A Kubernetes time as a chrono time.
pub fn time(t: &Time) -> Option<DateTime<Utc>> {
    let subsec = u32::try_from(t.0.subsec_nanosecond()).unwrap_or(0);
    DateTime::from_timestamp(t.0.as_second(), subsec)
}

type Class = (SandboxState, &'static str, String, Option<DateTime<Utc>>);

fn classify(pod: &Pod) -> Class {
    use SandboxState as S;
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.as_deref().unwrap_or("Pending");
    let image = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    if let Some(t) = &pod.metadata.deletion_timestamp {
        return (
            S::Stopping,
            "POD_TERMINATING",
            "Sandbox pod is being deleted.".into(),
            time(t),
        );
    }
    let cs = container(pod);
    let st = cs.and_then(|c| c.state.as_ref());
    if let Some(w) = st.and_then(|s| s.waiting.as_ref()) {
        let r = w.reason.as_deref().unwrap_or_default();
        let d = detail(w.reason.as_deref(), w.message.as_deref());
        if IMAGE_REASONS.contains(&r) {
            return (
                S::Failed,
                "IMAGE_PULL_FAILED",
                format!("Image '{image}' cannot be pulled ({d})."),
                None,
            );
        }
        if r == "CrashLoopBackOff" {
            let code = cs
                .and_then(|c| c.last_state.as_ref())
                .and_then(|l| l.terminated.as_ref())
                .map(|t| format!(" (last exit code {})", t.exit_code))
                .unwrap_or_default();
            return (
                S::Failed,
                "CRASH_LOOP_BACK_OFF",
                format!("Sandbox container keeps crashing{code}: {d}."),
                None,
            );
        }
    }
    if let Some(t) = st.and_then(|s| s.terminated.as_ref()) {
        let at = t.finished_at.as_ref().and_then(time);
        if t.reason.as_deref() == Some("OOMKilled") {
            return (
                S::Failed,
                "OOM_KILLED",
                format!(
                    "Sandbox container was killed for exceeding its memory limit (exit code {}).",
                    t.exit_code
                ),
                at,
            );
        }
        return if t.exit_code == 0 {
            (
                S::Terminated,
                "CONTAINER_EXITED",
                "Sandbox container exited successfully.".into(),
                at,
            )
        } else {
            (
                S::Failed,
                "CONTAINER_EXITED_ERROR",
                format!("Sandbox container exited with code {}.", t.exit_code),
                at,
            )
        };
    }
    match phase {
        "Failed" => {
            let d = detail(status.reason.as_deref(), status.message.as_deref());
            if status.reason.as_deref() == Some("Evicted") {
                (
                    S::Failed,
                    "EVICTED",
                    format!("Sandbox pod was evicted ({d})."),
                    None,
                )
            } else {
                (
                    S::Failed,
                    "POD_FAILED",
                    format!("Sandbox pod failed ({d})."),
                    None,
                )
            }
        }
        "Succeeded" => (
            S::Terminated,
            "CONTAINER_EXITED",
            "Sandbox container exited successfully.".into(),
            None,
        ),
        "Running" => {
            let started = st
                .and_then(|s| s.running.as_ref())
                .and_then(|r| r.started_at.as_ref())
                .and_then(time)
                .or(status.start_time.as_ref().and_then(time));
            if status.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty()) {
                (
                    S::Running,
                    "POD_RUNNING",
                    "Sandbox pod is running.".into(),
                    started,
                )
            } else {
                (
                    S::Pending,
                    "POD_STARTING",
                    "Sandbox pod is running but has no IP yet.".into(),
                    None,
                )
            }
        }
        "Unknown" => (
            S::Unknown,
            "POD_STATE_UNKNOWN",
            "The node of the sandbox pod does not report its state.".into(),
            None,
        ),
        _ => pending(pod),
    }
}

fn pending(pod: &Pod) -> Class {
    use SandboxState as S;
    let status = pod.status.clone().unwrap_or_default();
    let unschedulable = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    });
    if let Some(c) = unschedulable {
        return (
            S::Pending,
            "POD_UNSCHEDULABLE",
            format!(
                "No node can run the sandbox pod yet ({}).",
                detail(c.reason.as_deref(), c.message.as_deref())
            ),
            None,
        );
    }
    let bound = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    if !bound {
        return (
            S::Pending,
            "POD_SCHEDULING",
            "Sandbox pod is waiting for a node.".into(),
            None,
        );
    }
    let waiting = container(pod)
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.waiting.as_ref())
        .map(|w| detail(w.reason.as_deref(), w.message.as_deref()))
        .filter(|d| !d.is_empty())
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    (
        S::Pending,
        "POD_STARTING",
        format!("Sandbox pod is starting{waiting}."),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        let mut base = json!({
            "metadata": {"name": "sandbox-x"},
            "spec": {"containers": [{"name": "sandbox", "image": "img:1"}], "nodeName": "n1"},
        });
        if let (Some(b), Some(o)) = (base.as_object_mut(), v.as_object()) {
            for (k, val) in o {
                if k == "spec" {
                    if let Some(s) = b.get_mut("spec").and_then(|s| s.as_object_mut()) {
                        for (sk, sv) in val.as_object().into_iter().flatten() {
                            s.insert(sk.clone(), sv.clone());
                        }
                    }
                } else {
                    b.insert(k.clone(), val.clone());
                }
            }
        }
        serde_json::from_value(base).unwrap()
    }

    fn check(p: Pod, state: SandboxState, reason: &str) -> Observed {
        let o = observe("x", &p);
        assert_eq!((o.state, o.reason.as_str()), (state, reason), "{o:?}");
        o
    }

    fn waiting(reason: &str, msg: &str) -> serde_json::Value {
        json!({"status": {"phase": "Pending", "containerStatuses": [{
            "name": "sandbox", "image": "img:1", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": msg}}}]}})
    }

    fn terminated(code: i32, reason: &str) -> serde_json::Value {
        json!({"status": {"phase": "Failed", "containerStatuses": [{
            "name": "sandbox", "image": "img:1", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "reason": reason, "finishedAt": "2025-01-01T00:00:00Z"}}}]}})
    }

    #[test]
    fn running_needs_an_ip() {
        let o = check(
            pod(
                json!({"status": {"phase": "Running", "podIP": "127.0.0.2", "startTime": "2025-01-01T00:00:00Z"}}),
            ),
            SandboxState::Running,
            "POD_RUNNING",
        );
        assert!(o.since.is_some());
        check(
            pod(json!({"status": {"phase": "Running"}})),
            SandboxState::Pending,
            "POD_STARTING",
        );
    }

    #[test]
    fn pending_variants() {
        check(
            pod(json!({"spec": {"nodeName": null}})),
            SandboxState::Pending,
            "POD_SCHEDULING",
        );
        check(pod(json!({})), SandboxState::Pending, "POD_STARTING");
        let o = check(
            pod(
                json!({"spec": {"nodeName": null}, "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available"}]}}),
            ),
            SandboxState::Pending,
            "POD_UNSCHEDULABLE",
        );
        assert!(o.message.contains("0/1 nodes"), "{o:?}");
        check(
            pod(waiting("ContainerCreating", "")),
            SandboxState::Pending,
            "POD_STARTING",
        );
    }

    #[test]
    fn image_and_crash_failures() {
        let o = check(
            pod(waiting("ErrImagePull", "pull access denied")),
            SandboxState::Failed,
            "IMAGE_PULL_FAILED",
        );
        assert_eq!(
            o.message,
            "Image 'img:1' cannot be pulled (ErrImagePull: pull access denied)."
        );
        check(
            pod(waiting("ImagePullBackOff", "")),
            SandboxState::Failed,
            "IMAGE_PULL_FAILED",
        );
        check(
            pod(waiting("CrashLoopBackOff", "back-off")),
            SandboxState::Failed,
            "CRASH_LOOP_BACK_OFF",
        );
    }

    #[test]
    fn terminations() {
        check(
            pod(terminated(0, "Completed")),
            SandboxState::Terminated,
            "CONTAINER_EXITED",
        );
        let o = check(
            pod(terminated(3, "Error")),
            SandboxState::Failed,
            "CONTAINER_EXITED_ERROR",
        );
        assert_eq!(o.message, "Sandbox container exited with code 3.");
        assert!(o.since.is_some());
        check(
            pod(terminated(137, "OOMKilled")),
            SandboxState::Failed,
            "OOM_KILLED",
        );
        let o = check(
            pod(
                json!({"status": {"phase": "Failed", "reason": "Evicted", "message": "node low on memory"}}),
            ),
            SandboxState::Failed,
            "EVICTED",
        );
        assert!(o.message.contains("node low on memory"));
        check(
            pod(json!({"status": {"phase": "Succeeded"}})),
            SandboxState::Terminated,
            "CONTAINER_EXITED",
        );
        check(
            pod(json!({"status": {"phase": "Unknown"}})),
            SandboxState::Unknown,
            "POD_STATE_UNKNOWN",
        );
    }

    #[test]
    fn deleting_is_stopping() {
        check(
            pod(
                json!({"metadata": {"name": "sandbox-x", "deletionTimestamp": "2025-01-01T00:00:00Z"},
                       "status": {"phase": "Running", "podIP": "127.0.0.2"}}),
            ),
            SandboxState::Stopping,
            "POD_TERMINATING",
        );
    }
}
