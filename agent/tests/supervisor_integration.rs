//! Supervisor mode and token hand-over, against the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, scratch, BIN};

fn agent_cmd() -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
        "--no-egress",
    ]);
    c
}

#[test]
fn exits_with_the_entrypoint_code_and_a_reason_line() {
    let out = agent_cmd()
        .arg("--insecure-no-token")
        .args(["--", "sh", "-c", "echo from-entrypoint; exit 3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-entrypoint\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("entrypoint \"sh\" exited with code 3"),
        "{err}"
    );
}

#[test]
fn signal_death_maps_to_128_plus_signal() {
    let out = agent_cmd()
        .arg("--insecure-no-token")
        .args(["--", "sh", "-c", "kill -9 $$"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(137));
    assert!(String::from_utf8_lossy(&out.stderr).contains("killed by signal 9 (SIGKILL)"));
}

#[test]
fn missing_entrypoint_binary_is_127() {
    let out = agent_cmd()
        .arg("--insecure-no-token")
        .args(["--", "/no/such/binary"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
}

#[test]
fn refuses_to_start_without_a_token() {
    let out = agent_cmd()
        .env_remove("EXECD_ACCESS_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no access token"));
}

#[test]
fn env_token_is_not_passed_to_children() {
    let out = agent_cmd()
        .env("EXECD_ACCESS_TOKEN", "s3cret-env-token")
        .env("OTHER_VAR", "kept")
        .args([
            "--",
            "sh",
            "-c",
            "echo \"${EXECD_ACCESS_TOKEN:-absent} $OTHER_VAR\"",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "absent kept\n");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("s3cret-env-token"),
        "never logged"
    );
}

fn wait_exit(
    child: &mut std::process::Child,
    within: Duration,
) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn sigterm_is_forwarded_to_the_entrypoint() {
    let dir = scratch("sig");
    let marker = dir.join("got-term");
    let script = format!(
        "trap 'echo term > {}; exit 42' TERM; while :; do sleep 0.05; done",
        marker.display()
    );
    let mut child = agent_cmd()
        .arg("--insecure-no-token")
        .args(["--", "sh", "-c", &script])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let st = wait_exit(&mut child, Duration::from_secs(10)).expect("agent exits after SIGTERM");
    assert_eq!(st.code(), Some(42));
    assert!(marker.exists());
}

/// As PID 1 of a new PID namespace (via `unshare`), orphans are re-parented to the agent,
/// which must reap them.
#[test]
fn reaps_orphans_as_pid1() {
    if Command::new("unshare")
        .args(["--pid", "--fork", "true"])
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        eprintln!("skipped: cannot create a PID namespace here");
        return;
    }
    let dir = scratch("pid1");
    let pidfile = dir.join("agent-host-pid");
    // The entrypoint leaves an orphan (`sleep 0.2` whose parent exits), then lives on.
    let mut child = Command::new("unshare")
        .args(["--pid", "--fork", BIN, "--insecure-no-token", "--no-egress"])
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--", "sh", "-c", "(sleep 0.2 &); sleep 3"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    // Find the agent (child of unshare) and count zombie children it has.
    let agent_pid = children_of(child.id())
        .into_iter()
        .next()
        .expect("agent running");
    std::fs::write(&pidfile, agent_pid.to_string()).unwrap();
    let zombies: Vec<u32> = children_of(agent_pid)
        .into_iter()
        .filter(|p| state_of(*p) == Some('Z'))
        .collect();
    assert!(zombies.is_empty(), "unreaped zombies: {zombies:?}");
    let st = wait_exit(&mut child, Duration::from_secs(10)).expect("exits with the entrypoint");
    assert_eq!(st.code(), Some(0));
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
        if ppid == pid {
            out.push(p);
        }
    }
    out
}

fn state_of(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}
