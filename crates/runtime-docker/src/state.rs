//! Mapping of a Docker container state to the lifecycle state, as the upstream server
//! maps it (same states, reasons and messages).

use bollard::models::{ContainerState, ContainerStateStatusEnum};
use chrono::{DateTime, Utc};
use gatehouse_lifecycle::{Observed, SandboxState};

/// The zero time Docker reports for a timestamp that never happened.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Maps the container `state` of sandbox `id`.
pub fn observe(id: &str, state: Option<&ContainerState>) -> Observed {
    let default = ContainerState::default();
    let s = state.unwrap_or(&default);
    let running = s.running.unwrap_or(false);
    let paused = s.paused.unwrap_or(false);
    let restarting = s.restarting.unwrap_or(false);
    let status = s.status.unwrap_or(ContainerStateStatusEnum::EMPTY);
    let exit_code = s.exit_code.unwrap_or(0);
    let started = timestamp(s.started_at.as_deref());
    let finished = timestamp(s.finished_at.as_deref());

    use ContainerStateStatusEnum as St;
    let (state, reason, message, since) = if running && !paused {
        (
            SandboxState::Running,
            "CONTAINER_RUNNING",
            "Sandbox container is running.".to_string(),
            started,
        )
    } else if paused {
        (
            SandboxState::Paused,
            "CONTAINER_PAUSED",
            "Sandbox container is paused.".to_string(),
            started,
        )
    } else if restarting {
        (
            SandboxState::Running,
            "CONTAINER_RESTARTING",
            "Sandbox container is restarting.".to_string(),
            started,
        )
    } else if status == St::CREATED {
        (
            SandboxState::Pending,
            "CONTAINER_STARTING",
            "Sandbox container is starting.".to_string(),
            None,
        )
    } else if matches!(status, St::EXITED | St::DEAD) {
        if exit_code == 0 {
            (
                SandboxState::Terminated,
                "CONTAINER_EXITED",
                "Sandbox container exited successfully.".to_string(),
                finished,
            )
        } else {
            (
                SandboxState::Failed,
                "CONTAINER_EXITED_ERROR",
                format!("Sandbox container exited with code {exit_code}."),
                finished,
            )
        }
    } else if status == St::REMOVING {
        (
            SandboxState::Stopping,
            "CONTAINER_REMOVING",
            "Sandbox container is being removed.".to_string(),
            None,
        )
    } else {
        let name = match status {
            St::EMPTY => "unknown".to_string(),
            other => other.to_string(),
        };
        (
            SandboxState::Unknown,
            "CONTAINER_STATE_UNKNOWN",
            format!("Sandbox container is in state '{name}'."),
            None,
        )
    };
    Observed {
        id: id.to_string(),
        state,
        reason: reason.to_string(),
        message,
        since,
    }
}

/// Parses a Docker timestamp, ignoring the zero time and empty values.
pub fn timestamp(s: Option<&str>) -> Option<DateTime<Utc>> {
    let s = s?.trim();
    if s.is_empty() || s == ZERO_TIME {
        return None;
    }
    gatehouse_lifecycle::time::parse(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STARTED: &str = "2025-03-01T10:00:00.123456789Z";
    const FINISHED: &str = "2025-03-01T11:00:00Z";

    fn st(
        status: ContainerStateStatusEnum,
        running: bool,
        paused: bool,
        restarting: bool,
        code: i64,
    ) -> ContainerState {
        ContainerState {
            status: Some(status),
            running: Some(running),
            paused: Some(paused),
            restarting: Some(restarting),
            exit_code: Some(code),
            started_at: Some(STARTED.into()),
            finished_at: Some(FINISHED.into()),
            ..Default::default()
        }
    }

    fn check(s: ContainerState, state: SandboxState, reason: &str) -> Observed {
        let o = observe("sb", Some(&s));
        assert_eq!(o.id, "sb");
        assert_eq!(o.state, state, "{o:?}");
        assert_eq!(o.reason, reason, "{o:?}");
        o
    }

    #[test]
    fn running() {
        use ContainerStateStatusEnum as S;
        let o = check(
            st(S::RUNNING, true, false, false, 0),
            SandboxState::Running,
            "CONTAINER_RUNNING",
        );
        assert_eq!(o.message, "Sandbox container is running.");
        assert_eq!(o.since, timestamp(Some(STARTED)));
        assert!(o.since.is_some());
    }

    #[test]
    fn paused_and_restarting() {
        use ContainerStateStatusEnum as S;
        // A paused container is both Running and Paused.
        check(
            st(S::PAUSED, true, true, false, 0),
            SandboxState::Paused,
            "CONTAINER_PAUSED",
        );
        check(
            st(S::RESTARTING, false, false, true, 1),
            SandboxState::Running,
            "CONTAINER_RESTARTING",
        );
    }

    #[test]
    fn created_is_pending() {
        use ContainerStateStatusEnum as S;
        check(
            st(S::CREATED, false, false, false, 0),
            SandboxState::Pending,
            "CONTAINER_STARTING",
        );
    }

    #[test]
    fn exits() {
        use ContainerStateStatusEnum as S;
        let ok = check(
            st(S::EXITED, false, false, false, 0),
            SandboxState::Terminated,
            "CONTAINER_EXITED",
        );
        assert_eq!(ok.message, "Sandbox container exited successfully.");
        assert_eq!(ok.since, timestamp(Some(FINISHED)));
        let bad = check(
            st(S::EXITED, false, false, false, 137),
            SandboxState::Failed,
            "CONTAINER_EXITED_ERROR",
        );
        assert_eq!(bad.message, "Sandbox container exited with code 137.");
        check(
            st(S::DEAD, false, false, false, 0),
            SandboxState::Terminated,
            "CONTAINER_EXITED",
        );
        check(
            st(S::DEAD, false, false, false, 2),
            SandboxState::Failed,
            "CONTAINER_EXITED_ERROR",
        );
    }

    #[test]
    fn removing_and_unknown() {
        use ContainerStateStatusEnum as S;
        check(
            st(S::REMOVING, false, false, false, 0),
            SandboxState::Stopping,
            "CONTAINER_REMOVING",
        );
        let u = check(
            st(S::EMPTY, false, false, false, 0),
            SandboxState::Unknown,
            "CONTAINER_STATE_UNKNOWN",
        );
        assert_eq!(u.message, "Sandbox container is in state 'unknown'.");
        let none = observe("sb", None);
        assert_eq!(none.state, SandboxState::Unknown);
    }

    #[test]
    fn zero_time_is_ignored() {
        assert_eq!(timestamp(Some("0001-01-01T00:00:00Z")), None);
        assert_eq!(timestamp(Some("")), None);
        assert_eq!(timestamp(None), None);
        let mut s = st(ContainerStateStatusEnum::EXITED, false, false, false, 0);
        s.finished_at = Some(ZERO_TIME.into());
        assert_eq!(observe("sb", Some(&s)).since, None);
    }
}
