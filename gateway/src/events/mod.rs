//! Lifecycle events at the gateway: one upstream source per gateway, a bounded ring for
//! `Last-Event-ID` resume, and a broadcast channel fanned out to every SSE client of
//! `GET /gatehouse/v1/events` ([`crate::routes::events`]).
//!
//! Sources ([`config::EventsSection::source`]):
//! - [`feed`]: our backend's extension feed (`/gatehouse/ext/v1/events`), followed with
//!   `Last-Event-ID` and reconnected with backoff;
//! - [`poll`]: in front of a server without the feed (the upstream `opensandbox-server`),
//!   a bounded poll of `GET /v1/sandboxes` diffed with the previous one, woken at once
//!   by every mutation made through the gateway.
//!
//! Each event names the principal behind it when the mutation went through the gateway:
//! the gateway remembers the principal of every mutation it forwards, by request id (the
//! backend's feed carries the `X-Request-ID` of the call that caused an event) and by
//! sandbox (for the poll).

pub mod config;
mod feed;
mod poll;
mod sse;

use crate::ctx::RequestCtx;
use bytes::Bytes;
use gatehouse_authz::Action;
use gatehouse_lifecycle::events::EventKind;
use gatehouse_lifecycle::StringMap;
use gatehouse_scope::{Scope, ScopeKeys};
use moka::sync::Cache;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, Notify};

pub use config::{EventSource, EventsSection};

/// How long the principal of a forwarded mutation is remembered.
const ACTOR_TTL: Duration = Duration::from_secs(120);

/// Who made a change through the gateway (never a credential).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// The principal's subject.
    pub subject: String,
    /// Their team, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Their role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// How they authenticated (`session`, `api_key`, ...).
    pub auth_method: &'static str,
    /// The API key's name, for keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
}

impl Actor {
    fn of(ctx: &RequestCtx) -> Self {
        let p = &ctx.principal;
        Self {
            subject: p.subject.clone(),
            team: p.team.clone(),
            role: ctx.role.clone(),
            auth_method: p.method.as_str(),
            key_name: p.key_name.clone(),
        }
    }
}

/// An event as a source reports it; the hub adds the id and the actor.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// What happened.
    pub kind: EventKind,
    /// The sandbox.
    pub sandbox_id: String,
    /// Its state after the event, as the API names it (`Running`).
    pub state: Option<String>,
    /// Machine-readable reason.
    pub reason: Option<String>,
    /// Human-readable message.
    pub message: Option<String>,
    /// When it happened (RFC 3339).
    pub time: String,
    /// Expiry after the event (RFC 3339).
    pub expires_at: Option<String>,
    /// The sandbox's metadata (only the scope keys are kept).
    pub metadata: StringMap,
    /// The request that caused it (backend feed).
    pub request_id: Option<String>,
}

/// The client-facing event (the `data:` JSON).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    sandbox_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    time: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<&'a str>,
    actor: Option<&'a Actor>,
    source: &'static str,
}

/// One event in the ring, with its SSE frame made once for every client.
#[derive(Debug)]
pub struct Event {
    /// Position in this gateway's sequence.
    pub seq: u64,
    /// What happened; `None` for a `reset` (events were lost upstream).
    pub kind: Option<EventKind>,
    /// The sandbox (empty for a `reset`).
    pub sandbox_id: String,
    /// The scope keys of the sandbox's metadata.
    scope: StringMap,
    /// `id:`, `event:`, `data:` and the blank line.
    pub frame: Bytes,
    at: Instant,
}

impl Event {
    /// Whether a caller with `scope` (`None`: unscoped, service_admin) may see it.
    pub fn visible_to(&self, scope: Option<&Scope>, keys: &ScopeKeys) -> bool {
        self.kind.is_none() || scope.is_none_or(|s| s.allows(&self.scope, keys))
    }
}

/// Where a client starts.
#[derive(Debug)]
pub enum Resume {
    /// The events after its `Last-Event-ID` (none when it sent none), then live.
    Replay(Vec<Arc<Event>>),
    /// Its id is unknown (another gateway process) or older than the ring.
    Reset,
}

/// The hub: ring, broadcast channel and the principals of recent mutations.
pub struct EventHub {
    boot: String,
    cfg: EventsSection,
    keys: ScopeKeys,
    ring: Mutex<(u64, VecDeque<Arc<Event>>)>,
    tx: broadcast::Sender<Arc<Event>>,
    by_request: Cache<String, Arc<Actor>>,
    by_sandbox: Cache<(String, EventKind), Arc<Actor>>,
    poke: Notify,
    polling: AtomicBool,
    clients: AtomicUsize,
    /// Creates forwarded and not answered yet (request id → when), while polling: the
    /// poll holds back sandboxes it has not seen before until they are answered, so a
    /// create is reported once, with its principal.
    creating: Mutex<HashMap<String, Instant>>,
    /// Sandboxes with a delete through this gateway in flight or done (id → when), while
    /// polling: the poll does not report their passing states (a server may list a
    /// deleted sandbox as `Failed` while it kills it), only the `deleted` that follows.
    deleting: Mutex<HashMap<String, (Instant, bool)>>,
}

/// How long an unanswered create or delete holds the poll back at most.
const CREATE_HOLD: Duration = Duration::from_secs(30);

/// The event a successful mutation of `action` makes.
fn kind_of(action: Action) -> Option<EventKind> {
    Some(match action {
        Action::SandboxCreate => EventKind::Created,
        Action::SandboxDelete => EventKind::Deleted,
        Action::SandboxPause => EventKind::Paused,
        Action::SandboxResume => EventKind::Resumed,
        Action::SandboxRenew => EventKind::Renewed,
        _ => return None,
    })
}

impl EventHub {
    /// A hub with no source yet (see [`start`]).
    pub fn new(cfg: EventsSection, keys: ScopeKeys) -> Self {
        let (tx, _) = broadcast::channel(cfg.channel_capacity);
        Self {
            boot: chrono::Utc::now().timestamp_millis().to_string(),
            cfg,
            keys,
            ring: Mutex::new((0, VecDeque::new())),
            tx,
            by_request: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ACTOR_TTL)
                .build(),
            by_sandbox: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ACTOR_TTL)
                .build(),
            poke: Notify::new(),
            polling: AtomicBool::new(false),
            clients: AtomicUsize::new(0),
            creating: Mutex::new(HashMap::new()),
            deleting: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EventsSection {
        &self.cfg
    }

    /// The scope keys.
    pub fn keys(&self) -> &ScopeKeys {
        &self.keys
    }

    /// Before a mutation is forwarded: remember who makes it, by request id.
    pub fn before_forward(&self, ctx: &RequestCtx) {
        let Some(action) = ctx.permit.as_ref().map(gatehouse_authz::Permit::action) else {
            return;
        };
        if kind_of(action).is_some() {
            self.by_request
                .insert(ctx.request_id.clone(), Arc::new(Actor::of(ctx)));
        }
        if !self.polling.load(Ordering::Relaxed) {
            return;
        }
        match (action, ctx.sandbox_id()) {
            (Action::SandboxCreate, _) => {
                if let Ok(mut c) = self.creating.lock() {
                    c.insert(ctx.request_id.clone(), Instant::now());
                }
            }
            (Action::SandboxDelete, Some(id)) => {
                if let Ok(mut d) = self.deleting.lock() {
                    d.insert(id.to_owned(), (Instant::now(), false));
                }
            }
            _ => {}
        }
    }

    /// The sandboxes being deleted (or deleted within 30 s) through this gateway, each
    /// with whether its delete has been answered.
    pub fn deletes(&self) -> HashMap<String, bool> {
        self.deleting.lock().map_or_else(
            |_| HashMap::new(),
            |mut d| {
                d.retain(|_, (at, _)| at.elapsed() < CREATE_HOLD);
                d.iter()
                    .map(|(id, (_, done))| (id.clone(), *done))
                    .collect()
            },
        )
    }

    /// Whether a create through this gateway awaits its answer (the poll then holds back
    /// sandboxes it has not seen before).
    pub fn creates_in_flight(&self) -> bool {
        self.creating.lock().is_ok_and(|mut c| {
            c.retain(|_, at| at.elapsed() < CREATE_HOLD);
            !c.is_empty()
        })
    }

    /// After a response: a successful mutation is remembered by sandbox (for the poll),
    /// and the poll is woken to report it now.
    pub fn after_response(&self, ctx: &RequestCtx, status: u16) {
        self.remember(ctx, status);
        if !self.polling.load(Ordering::Relaxed) {
            return;
        }
        match ctx.action() {
            Some(Action::SandboxCreate) => {
                if let Ok(mut c) = self.creating.lock() {
                    c.remove(&ctx.request_id);
                }
                self.poke.notify_one();
            }
            Some(Action::SandboxDelete) => {
                // Deleted: a server may still list it (killed, `Failed`) for a moment; it
                // stays held until it is gone from the listing (at most 30 s). Refused:
                // its states are reported again.
                if let (Ok(mut d), Some(id)) = (self.deleting.lock(), ctx.sandbox_id()) {
                    if (200..300).contains(&status) {
                        d.insert(id.to_owned(), (Instant::now(), true));
                    } else {
                        d.remove(id);
                    }
                }
                self.poke.notify_one();
            }
            _ => {}
        }
    }

    fn remember(&self, ctx: &RequestCtx, status: u16) {
        if !(200..300).contains(&status) {
            return;
        }
        let (Some(kind), Some(id)) = (ctx.action().and_then(kind_of), ctx.sandbox_id()) else {
            return;
        };
        if !self.polling.load(Ordering::Relaxed) {
            return;
        }
        let actor = self
            .by_request
            .get(&ctx.request_id)
            .unwrap_or_else(|| Arc::new(Actor::of(ctx)));
        // A create is seen as `created` and then its state; a resume as `resumed` or
        // `running`, depending on what the poll saw.
        let kinds: &[EventKind] = match kind {
            EventKind::Created => &[EventKind::Created, EventKind::Running, EventKind::Failed],
            EventKind::Resumed => &[EventKind::Resumed, EventKind::Running],
            _ => std::slice::from_ref(&kind),
        };
        for k in kinds {
            self.by_sandbox.insert((id.to_owned(), *k), actor.clone());
        }
        self.poke.notify_one();
    }

    /// Publishes an event from a source.
    pub fn publish(&self, e: Incoming, source: &'static str) {
        let actor = e
            .request_id
            .as_ref()
            .and_then(|r| self.by_request.get(r))
            .or_else(|| self.by_sandbox.remove(&(e.sandbox_id.clone(), e.kind)));
        let scope: StringMap = e
            .metadata
            .into_iter()
            .filter(|(k, _)| self.keys.is_reserved(k))
            .collect();
        self.push(|id| {
            let wire = Wire {
                id,
                kind: e.kind.as_str(),
                sandbox_id: &e.sandbox_id,
                state: e.state.as_deref(),
                reason: e.reason.as_deref(),
                message: e.message.as_deref(),
                time: &e.time,
                expires_at: e.expires_at.as_deref(),
                actor: actor.as_deref(),
                source,
            };
            let data = serde_json::to_string(&wire).unwrap_or_else(|_| "{}".into());
            (
                Some(e.kind),
                e.sandbox_id.clone(),
                scope,
                e.kind.as_str(),
                data,
            )
        });
    }

    /// Publishes a `reset`: events may have been lost upstream; clients should re-list.
    pub fn publish_reset(&self, reason: &str) {
        let data = serde_json::json!({ "reason": reason }).to_string();
        self.push(|_| (None, String::new(), StringMap::new(), "reset", data));
    }

    fn push(
        &self,
        make: impl FnOnce(&str) -> (Option<EventKind>, String, StringMap, &'static str, String),
    ) {
        let Ok(mut ring) = self.ring.lock() else {
            return;
        };
        ring.0 += 1;
        let seq = ring.0;
        let id = format!("{}-{seq}", self.boot);
        let (kind, sandbox_id, scope, name, data) = make(&id);
        let frame = Bytes::from(format!("id: {id}\nevent: {name}\ndata: {data}\n\n"));
        let now = Instant::now();
        let keep = Duration::from_secs(self.cfg.retention_seconds);
        while ring.1.len() >= self.cfg.max_events
            || ring
                .1
                .front()
                .is_some_and(|e| now.duration_since(e.at) > keep)
        {
            ring.1.pop_front();
        }
        let event = Arc::new(Event {
            seq,
            kind,
            sandbox_id,
            scope,
            frame,
            at: now,
        });
        ring.1.push_back(event.clone());
        // Under the lock: live order is ring order. No client is fine.
        let _ = self.tx.send(event);
    }

    /// A live subscription and where the client starts.
    pub fn subscribe(&self, last_id: Option<&str>) -> (broadcast::Receiver<Arc<Event>>, Resume) {
        let Ok(ring) = self.ring.lock() else {
            return (self.tx.subscribe(), Resume::Reset);
        };
        let rx = self.tx.subscribe();
        let Some(last) = last_id else {
            return (rx, Resume::Replay(Vec::new()));
        };
        let seq = last
            .split_once('-')
            .filter(|(boot, _)| *boot == self.boot)
            .and_then(|(_, n)| n.parse::<u64>().ok())
            .filter(|n| *n <= ring.0);
        let Some(seq) = seq else {
            return (rx, Resume::Reset);
        };
        let oldest = ring.1.front().map_or(ring.0 + 1, |e| e.seq);
        if seq + 1 < oldest {
            return (rx, Resume::Reset);
        }
        let replay = ring.1.iter().filter(|e| e.seq > seq).cloned().collect();
        (rx, Resume::Replay(replay))
    }

    /// A client started following the stream.
    pub fn client_joined(&self) {
        self.clients.fetch_add(1, Ordering::Relaxed);
    }

    /// A client stopped following the stream.
    pub fn client_left(&self) {
        self.clients.fetch_sub(1, Ordering::Relaxed);
    }

    /// Clients following the stream now.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }
}

/// Starts the hub's source on `rt` (nothing when `source = "off"`).
pub fn start(
    cfg: &EventsSection,
    upstream: &crate::config::Upstream,
    keys: ScopeKeys,
    rt: &tokio::runtime::Runtime,
) -> Option<Arc<EventHub>> {
    if cfg.source == EventSource::Off {
        tracing::info!("lifecycle events are off ([events] source = \"off\")");
        return None;
    }
    let hub = Arc::new(EventHub::new(cfg.clone(), keys));
    let client = feed::Client::new(upstream.clone());
    let h = hub.clone();
    rt.spawn(async move {
        if h.cfg.source != EventSource::Poll {
            let auto = h.cfg.source == EventSource::Auto;
            match feed::follow(&h, &client, auto).await {
                feed::Ended::Unsupported => tracing::info!(
                    "the backend has no event feed; deriving lifecycle events from a poll of GET /v1/sandboxes"
                ),
            }
        }
        h.polling.store(true, Ordering::Relaxed);
        poll::run(&h, &client).await;
    });
    Some(hub)
}

#[cfg(test)]
mod tests;
