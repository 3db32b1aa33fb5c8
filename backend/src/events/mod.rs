//! The lifecycle event feed: every state transition the backend makes or observes
//! (created, running, failed, paused, resumed, renewed, stopped, expired, deleted) is
//! published on the [`EventBus`]: a bounded in-memory ring for `Last-Event-ID` resume,
//! and a broadcast channel for live subscribers. The gateway follows it through
//! `GET /gatehouse/ext/v1/events` ([`crate::api`]), authenticated with the backend key.
//!
//! Each event carries the `X-Request-ID` of the API call that caused it (a task-local set
//! by the request middleware, [`REQUEST_ID`]), so the gateway can name the principal
//! behind it; events of the expiry scheduler and the reconciler carry none.
//!
//! Ids are `{boot}-{seq}`: `boot` changes with every start, so an id of an earlier
//! process (or one older than the ring) is answered with a `reset` event.

pub mod watch;

use chrono::{DateTime, Utc};
use gatehouse_lifecycle::events::{EventKind, FeedEvent};
use gatehouse_lifecycle::{time, SandboxState, StringMap};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

tokio::task_local! {
    /// The `X-Request-ID` of the API call being served (set by the request middleware).
    pub static REQUEST_ID: String;
}

/// Most events kept for resume.
pub const RING_CAPACITY: usize = 10_000;
/// How long events are kept for resume.
pub const RETENTION: Duration = Duration::from_secs(15 * 60);
/// Live events a subscriber may fall behind before it is dropped (it resumes from the
/// ring with `Last-Event-ID`).
const CHANNEL_CAPACITY: usize = 1024;

/// What a new event says; the bus adds the id, the time and the request id.
#[derive(Debug, Clone)]
pub struct Draft {
    /// What happened.
    pub kind: EventKind,
    /// The sandbox.
    pub sandbox_id: String,
    /// Its state after the event.
    pub state: Option<SandboxState>,
    /// Machine-readable reason.
    pub reason: Option<String>,
    /// Human-readable message.
    pub message: Option<String>,
    /// Expiry after the event.
    pub expires_at: Option<DateTime<Utc>>,
    /// The sandbox's metadata.
    pub metadata: StringMap,
}

struct Kept {
    seq: u64,
    at: Instant,
    event: Arc<FeedEvent>,
}

/// Where a subscriber starts.
#[derive(Debug)]
pub enum Resume {
    /// The events after the client's id (none when it sent none), then live.
    Replay(Vec<Arc<FeedEvent>>),
    /// The id is unknown or older than the ring: events were lost; live from now.
    Reset,
}

/// The ring and what it last said of each sandbox.
#[derive(Default)]
struct Ring {
    /// Last sequence number issued.
    seq: u64,
    kept: VecDeque<Kept>,
    /// The state each live sandbox's last status event published: two observers that
    /// see the same change at once (a read and the watcher) publish it once.
    states: HashMap<String, SandboxState>,
}

/// The feed: a ring for resume and a broadcast channel for live subscribers.
pub struct EventBus {
    boot: String,
    ring: Mutex<Ring>,
    tx: broadcast::Sender<Arc<FeedEvent>>,
    closing: tokio::sync::watch::Sender<bool>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// An empty bus.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        Self {
            boot: Utc::now().timestamp_millis().to_string(),
            ring: Mutex::new(Ring::default()),
            tx,
            closing: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Ends every live subscription (the process is shutting down; subscribers resume
    /// elsewhere or later with `Last-Event-ID`).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`EventBus::close`] was called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            let _ = rx.wait_for(|c| *c).await;
        }
    }

    /// Whether anyone follows the feed live.
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Publishes an event, stamped now, with the current request id if any.
    pub fn publish(&self, d: Draft) {
        let request_id = REQUEST_ID.try_with(Clone::clone).ok();
        let Ok(mut ring) = self.ring.lock() else {
            return;
        };
        match (d.kind, d.state) {
            (EventKind::Deleted | EventKind::Expired, _) => {
                ring.states.remove(&d.sandbox_id);
            }
            (EventKind::Created | EventKind::Renewed, _) | (_, None) => {}
            (_, Some(state)) => {
                if ring.states.get(&d.sandbox_id) == Some(&state) {
                    return;
                }
                ring.states.insert(d.sandbox_id.clone(), state);
            }
        }
        ring.seq += 1;
        let seq = ring.seq;
        let event = Arc::new(FeedEvent {
            id: format!("{}-{seq}", self.boot),
            kind: d.kind,
            sandbox_id: d.sandbox_id,
            state: d.state,
            reason: d.reason,
            message: d.message,
            time: time::format(&time::now()),
            expires_at: d.expires_at.as_ref().map(time::format),
            metadata: d.metadata,
            request_id,
        });
        let now = Instant::now();
        while ring.kept.len() >= RING_CAPACITY
            || ring
                .kept
                .front()
                .is_some_and(|k| now.duration_since(k.at) > RETENTION)
        {
            ring.kept.pop_front();
        }
        ring.kept.push_back(Kept {
            seq,
            at: now,
            event: event.clone(),
        });
        tracing::debug!(sandbox.id = %event.sandbox_id, event = event.kind.as_str(), "lifecycle event");
        // Sent under the lock, so live order is ring order; no receiver is fine.
        let _ = self.tx.send(event);
    }

    /// A live subscription and where it starts: after `last_id` (the client's
    /// `Last-Event-ID`), or live only when it sent none.
    pub fn subscribe(
        &self,
        last_id: Option<&str>,
    ) -> (broadcast::Receiver<Arc<FeedEvent>>, Resume) {
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
            .filter(|n| *n <= ring.seq);
        let Some(seq) = seq else {
            return (rx, Resume::Reset);
        };
        // Events were lost when the oldest kept one is not the next after `seq`.
        let oldest = ring.kept.front().map_or(ring.seq + 1, |k| k.seq);
        if seq + 1 < oldest {
            return (rx, Resume::Reset);
        }
        let replay = ring
            .kept
            .iter()
            .filter(|k| k.seq > seq)
            .map(|k| k.event.clone())
            .collect();
        (rx, Resume::Replay(replay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(kind: EventKind, id: &str) -> Draft {
        Draft {
            kind,
            sandbox_id: id.into(),
            state: None,
            reason: None,
            message: None,
            expires_at: None,
            metadata: StringMap::new(),
        }
    }

    #[test]
    fn resume_replays_after_the_id_and_resets_on_unknown_ids() {
        let bus = EventBus::new();
        bus.publish(draft(EventKind::Created, "a"));
        bus.publish(draft(EventKind::Running, "a"));
        bus.publish(draft(EventKind::Deleted, "a"));
        let first = format!("{}-1", bus.boot);
        let Resume::Replay(got) = bus.subscribe(Some(&first)).1 else {
            panic!("replay expected")
        };
        let kinds: Vec<_> = got.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, vec![EventKind::Running, EventKind::Deleted]);
        assert!(matches!(bus.subscribe(Some("1-1")).1, Resume::Reset));
        let future = format!("{}-99", bus.boot);
        assert!(matches!(bus.subscribe(Some(&future)).1, Resume::Reset));
        let (mut rx, r) = bus.subscribe(None);
        assert!(matches!(r, Resume::Replay(v) if v.is_empty()));
        bus.publish(draft(EventKind::Created, "b"));
        assert_eq!(rx.try_recv().unwrap().sandbox_id, "b");
    }

    #[test]
    fn a_change_seen_twice_is_published_once() {
        let bus = EventBus::new();
        let (mut rx, _) = bus.subscribe(None);
        let running = || Draft {
            state: Some(SandboxState::Running),
            ..draft(EventKind::Running, "a")
        };
        bus.publish(draft(EventKind::Created, "a"));
        bus.publish(running());
        bus.publish(running());
        bus.publish(draft(EventKind::Deleted, "a"));
        let kinds: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            vec![EventKind::Created, EventKind::Running, EventKind::Deleted]
        );
    }

    #[tokio::test]
    async fn events_carry_the_request_id_of_the_call() {
        let bus = EventBus::new();
        let (mut rx, _) = bus.subscribe(None);
        REQUEST_ID
            .scope("req-1".to_string(), async {
                bus.publish(draft(EventKind::Created, "a"))
            })
            .await;
        bus.publish(draft(EventKind::Expired, "a"));
        assert_eq!(rx.try_recv().unwrap().request_id.as_deref(), Some("req-1"));
        assert_eq!(rx.try_recv().unwrap().request_id, None);
    }
}
