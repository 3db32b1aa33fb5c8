//! A test kubelet for the real kube-apiserver: no kubelet runs there, so this plays one
//! for the pods a backend creates.
//!
//! For each pod of the given instance it creates (once) a Node, binds the pod to it via
//! `pods/binding`, and patches `pods/status` the way a kubelet would:
//! - image containing `unpullable` → `Pending`, container waiting `ErrImagePull`;
//! - image containing `exit-N` → container terminated with exit code N (`Failed`, or
//!   `Succeeded` for 0);
//! - `oom` → terminated `OOMKilled` (137); `crashloop` → waiting `CrashLoopBackOff` after an
//!   exit 1; `evicted` → phase `Failed`, reason `Evicted`; `unschedulable` → never bound,
//!   `PodScheduled=False` with reason `Unschedulable` (as the scheduler reports it);
//! - anything else → `Running` with a `podIP` from 127.0.0.0/8, after it actually serves
//!   every declared container port on that address: a small HTTP responder that answers
//!   `pod=<name> port=<port> path=<path>`, and a WebSocket endpoint (RFC 6455 handshake
//!   with `Sec-WebSocket-Accept`) that echoes every text or binary frame.
//!
//! A pod being deleted (`deletionTimestamp`) has its responders stopped and is then
//! removed with `gracePeriodSeconds=0`, as a kubelet confirms a container stopped.

use anyhow::Result;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use serde_json::json;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Next loopback address to hand out in this process.
static NEXT_IP: AtomicU32 = AtomicU32::new(0);

/// A fresh 127.x.y.z address, distinct across test processes (by pid) and calls.
fn next_ip() -> Ipv4Addr {
    let n = NEXT_IP.fetch_add(1, Ordering::Relaxed);
    let p = std::process::id() % 200;
    Ipv4Addr::new(127, 20 + p as u8, (n / 250) as u8, (n % 250) as u8 + 2)
}

/// A running test kubelet; stops (with its responders) when dropped.
pub struct TestKubelet {
    task: JoinHandle<()>,
}

impl Drop for TestKubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestKubelet {
    /// Plays kubelet for every pod labelled `opensandbox.io/instance=<instance>`, in any
    /// namespace, on Node `node`.
    pub async fn start(client: Client, instance: &str, node: &str) -> Result<Self> {
        let nodes: Api<Node> = Api::all(client.clone());
        let n = Node {
            metadata: ObjectMeta {
                name: Some(node.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        if let Err(e) = nodes.create(&PostParams::default(), &n).await {
            if !matches!(&e, kube::Error::Api(s) if s.code == 409) {
                return Err(e.into());
            }
        }
        let selector = format!("opensandbox.io/instance={instance}");
        let task = tokio::spawn(run(client, selector, node.to_string()));
        Ok(Self { task })
    }
}

/// What the kubelet did with one pod.
struct Handled {
    responders: Vec<JoinHandle<()>>,
}

async fn run(client: Client, selector: String, node: String) {
    let pods: Api<Pod> = Api::all(client.clone());
    let mut handled: HashMap<String, Handled> = HashMap::new();
    let stream = watcher(pods, watcher::Config::default().labels(&selector))
        .default_backoff()
        .applied_objects();
    let mut stream = std::pin::pin!(stream);
    while let Some(ev) = stream.next().await {
        let Ok(pod) = ev else { continue };
        let (Some(name), Some(ns), Some(uid)) = (
            pod.metadata.name.clone(),
            pod.metadata.namespace.clone(),
            pod.metadata.uid.clone(),
        ) else {
            continue;
        };
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        if pod.metadata.deletion_timestamp.is_some() {
            if let Some(h) = handled.remove(&uid) {
                h.responders.iter().for_each(JoinHandle::abort);
            }
            let _ = api
                .delete(&name, &DeleteParams::default().grace_period(0))
                .await;
            continue;
        }
        if handled.contains_key(&uid) {
            continue;
        }
        match start_pod(&api, &pod, &name, &node).await {
            Ok(responders) => {
                handled.insert(uid, Handled { responders });
            }
            Err(e) => eprintln!("test kubelet: pod {ns}/{name}: {e:#}"),
        }
    }
}

/// Binds the pod and reports its status; returns the responders serving its ports.
async fn start_pod(
    api: &Api<Pod>,
    pod: &Pod,
    name: &str,
    node: &str,
) -> Result<Vec<JoinHandle<()>>> {
    let bound = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let image_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    if image_name.contains("unschedulable") {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let status = json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "lastTransitionTime": now,
            "message": "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."}]});
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await?;
        return Ok(Vec::new());
    }
    if !bound {
        let binding = json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        let _: serde_json::Value = api
            .create_subresource("binding", name, &PostParams::default(), &binding)
            .await?;
    }
    let container = pod.spec.as_ref().and_then(|s| s.containers.first());
    let image = container.and_then(|c| c.image.clone()).unwrap_or_default();
    let ports: Vec<u16> = container
        .and_then(|c| c.ports.clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| u16::try_from(p.container_port).ok())
        .collect();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let cs = |state: serde_json::Value, ready: bool| {
        json!([{"name": "sandbox", "image": image, "imageID": "", "ready": ready,
                "restartCount": 0, "state": state}])
    };
    let mut responders = Vec::new();
    let status = if image.contains("unpullable") {
        json!({"phase": "Pending", "containerStatuses": cs(json!({"waiting": {
            "reason": "ErrImagePull",
            "message": format!("failed to pull image \"{image}\": pull access denied, repository does not exist")}}), false)})
    } else if image.contains("oom") {
        json!({"phase": "Failed", "startTime": now, "containerStatuses": cs(json!({"terminated": {
            "exitCode": 137, "reason": "OOMKilled", "startedAt": now, "finishedAt": now}}), false)})
    } else if image.contains("crashloop") {
        let mut c = cs(
            json!({"waiting": {"reason": "CrashLoopBackOff",
            "message": "back-off 40s restarting failed container=sandbox"}}),
            false,
        );
        c[0]["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}});
        c[0]["restartCount"] = json!(3);
        json!({"phase": "Running", "startTime": now, "containerStatuses": c})
    } else if image.contains("evicted") {
        json!({"phase": "Failed", "reason": "Evicted", "startTime": now,
               "message": "The node was low on resource: memory."})
    } else if let Some(code) = exit_code(&image) {
        json!({"phase": if code == 0 {"Succeeded"} else {"Failed"},
               "startTime": now,
               "containerStatuses": cs(json!({"terminated": {
                   "exitCode": code, "reason": if code == 0 {"Completed"} else {"Error"},
                   "startedAt": now, "finishedAt": now}}), false)})
    } else {
        let ip = next_ip();
        for port in ports {
            let listener = TcpListener::bind((ip, port)).await?;
            responders.push(tokio::spawn(serve(listener, name.to_string(), port)));
        }
        json!({"phase": "Running", "podIP": ip.to_string(), "podIPs": [{"ip": ip.to_string()}],
               "hostIP": "127.0.0.1", "startTime": now,
               "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now},
                              {"type": "PodScheduled", "status": "True", "lastTransitionTime": now}],
               "containerStatuses": cs(json!({"running": {"startedAt": now}}), true)})
    };
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await?;
    Ok(responders)
}

/// `N` from an image name containing `exit-N`.
fn exit_code(image: &str) -> Option<i32> {
    let rest = &image[image.find("exit-")? + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Serves one port of a pod.
async fn serve(listener: TcpListener, pod: String, port: u16) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(answer(stream, pod.clone(), port));
    }
}

/// One connection: an HTTP/1.1 request answered with who answered, or an upgrade after
/// which every byte is echoed.
async fn answer(mut s: TcpStream, pod: String, port: u16) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("/")
        .to_string();
    let key = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_string())
    });
    if let Some(key) = key {
        let resp = format!(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            ws_accept(&key)
        );
        if s.write_all(resp.as_bytes()).await.is_ok() {
            echo_frames(s, buf[head_end..].to_vec()).await;
        }
        return;
    }
    let body = format!("pod={pod} port={port} path={path}");
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// `Sec-WebSocket-Accept` for a client key (RFC 6455 §4.2.2).
pub fn ws_accept(key: &str) -> String {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    data_encoding::BASE64.encode(&h.finalize())
}

/// Reads one frame from `s` (after `pending` bytes already read): `(opcode, payload)`,
/// unmasked. `None` at end of stream.
pub async fn read_frame(s: &mut TcpStream, pending: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((op, payload, used)) = parse_frame(pending) {
            pending.drain(..used);
            return Some((op, payload));
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
        }
    }
}

/// One complete frame at the start of `b`: `(opcode, unmasked payload, bytes used)`.
fn parse_frame(b: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if b.len() < 2 {
        return None;
    }
    let op = b[0] & 0x0f;
    let masked = b[1] & 0x80 != 0;
    let (len, mut at) = match b[1] & 0x7f {
        126 => (usize::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?])), 4),
        127 => (
            usize::try_from(u64::from_be_bytes(b.get(2..10)?.try_into().ok()?)).ok()?,
            10,
        ),
        n => (usize::from(n), 2),
    };
    let mask = if masked {
        let m = b.get(at..at + 4)?.to_vec();
        at += 4;
        Some(m)
    } else {
        None
    };
    let data = b.get(at..at + len)?;
    let payload = match mask {
        Some(m) => data.iter().enumerate().map(|(i, x)| x ^ m[i % 4]).collect(),
        None => data.to_vec(),
    };
    Some((op, payload, at + len))
}

/// A frame with `opcode` and `payload`, masked with `mask` when given (clients must mask).
pub fn frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    let bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(bit | n as u8),
        n if n <= usize::from(u16::MAX) => {
            f.push(bit | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(bit | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(m) => {
            f.extend_from_slice(&m);
            f.extend(payload.iter().enumerate().map(|(i, x)| x ^ m[i % 4]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

/// Echoes text and binary frames, answers pings, closes on close.
async fn echo_frames(mut s: TcpStream, mut pending: Vec<u8>) {
    while let Some((op, payload)) = read_frame(&mut s, &mut pending).await {
        let reply = match op {
            0x1 | 0x2 => frame(op, &payload, None),
            0x9 => frame(0xA, &payload, None),
            0x8 => {
                let _ = s.write_all(&frame(0x8, &payload, None)).await;
                return;
            }
            _ => continue,
        };
        if s.write_all(&reply).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_accept_and_frames() {
        // The example of RFC 6455 §1.3.
        assert_eq!(
            ws_accept("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let f = frame(0x1, b"hello", Some([1, 2, 3, 4]));
        assert_eq!(parse_frame(&f), Some((0x1, b"hello".to_vec(), f.len())));
        let big = vec![7u8; 70_000];
        let f = frame(0x2, &big, None);
        assert_eq!(parse_frame(&f).map(|(_, p, _)| p.len()), Some(70_000));
        assert_eq!(parse_frame(&f[..100]), None);
    }

    #[test]
    fn exit_codes_from_image_names() {
        assert_eq!(exit_code("gatehouse/exit-3:latest"), Some(3));
        assert_eq!(exit_code("exit-0"), Some(0));
        assert_eq!(exit_code("busybox"), None);
    }
}
