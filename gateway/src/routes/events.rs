//! `GET /gatehouse/v1/events`: lifecycle events as Server-Sent Events.
//!
//! The role table decides who may follow it (`events:read`, read_only and up). A scoped
//! caller only ever receives events of sandboxes in their scope (the owner/team metadata
//! the gateway stamps at create, as lists are scoped); service_admin receives all.
//!
//! - `Last-Event-ID` (header, or `lastEventId` in the query for clients that cannot set
//!   headers) resumes after that event while the gateway still keeps it
//!   (`events.retention_seconds`); an id it no longer knows gets one `reset` event first:
//!   events were lost, re-list.
//! - `?sandbox=ID[,ID...]` and `?type=created,deleted` filter; bad values are 400
//!   `GATEWAY::INVALID_QUERY`.
//! - A comment line every `events.heartbeat_seconds` keeps proxies from closing an idle
//!   stream. A client that does not keep up (`events.client_buffer` events unsent) is
//!   dropped; it reconnects with `Last-Event-ID`.
//! - A session caller's stream ends (`event: end`) when the session is revoked or
//!   expires, checked at every heartbeat.

use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::events::{Event, EventHub, Resume};
use crate::http::body::Body;
use crate::http::inbound::Inbound;
use crate::reply::Reply;
use crate::state::Gateway;
use bytes::{Bytes, BytesMut};
use gatehouse_authn::AuthMethod;
use gatehouse_lifecycle::events::EventKind;
use gatehouse_scope::Scope;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

/// Most sandbox ids in one `sandbox` filter.
const MAX_IDS: usize = 100;

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::new(400, "GATEWAY::INVALID_QUERY", message)
}

/// What a client asked to receive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only these sandboxes (empty: all in scope).
    pub sandboxes: Vec<String>,
    /// Only these kinds (0: all).
    pub kinds: u16,
    /// `lastEventId` from the query.
    pub last_id: Option<String>,
}

impl Filter {
    /// Parses the query string; unknown or repeated parameters and bad values are 400.
    pub fn parse(query: Option<&str>) -> Result<Self, GatewayError> {
        let mut f = Filter::default();
        let mut seen: Vec<String> = Vec::new();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if seen.iter().any(|s| *s == k) {
                return Err(bad(format!("'{k}' is given more than once")));
            }
            seen.push(k.to_string());
            match &*k {
                "sandbox" => {
                    for id in v.split(',') {
                        let ok = !id.is_empty()
                            && id.len() <= 128
                            && id
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                        if !ok {
                            return Err(bad(format!(
                                "'sandbox' must be sandbox ids separated by commas, got '{v}'"
                            )));
                        }
                        f.sandboxes.push(id.to_owned());
                    }
                    if f.sandboxes.len() > MAX_IDS {
                        return Err(bad(format!(
                            "'sandbox' names more than {MAX_IDS} sandboxes"
                        )));
                    }
                }
                "type" => {
                    for t in v.split(',') {
                        let kind = EventKind::parse(t).ok_or_else(|| {
                            let all: Vec<&str> =
                                EventKind::ALL.iter().map(|k| k.as_str()).collect();
                            bad(format!(
                                "unknown event type '{t}'; expected some of {}",
                                all.join(", ")
                            ))
                        })?;
                        f.kinds |= kind.bit();
                    }
                }
                "lastEventId" => f.last_id = Some(v.into_owned()).filter(|v| !v.is_empty()),
                other => {
                    return Err(bad(format!(
                        "unknown parameter '{other}'; expected sandbox, type or lastEventId"
                    )))
                }
            }
        }
        Ok(f)
    }

    fn wants(&self, e: &Event) -> bool {
        let Some(kind) = e.kind else {
            return true;
        };
        (self.kinds == 0 || self.kinds & kind.bit() != 0)
            && (self.sandboxes.is_empty() || self.sandboxes.contains(&e.sandbox_id))
    }
}

/// What one client receives: its scope and filter.
struct Audience {
    hub: Arc<EventHub>,
    scope: Option<Scope>,
    filter: Filter,
}

impl Audience {
    fn wants(&self, e: &Event) -> bool {
        self.filter.wants(e) && e.visible_to(self.scope.as_ref(), self.hub.keys())
    }
}

/// A session to watch: the stream ends with it.
struct SessionWatch {
    sessions: Arc<gatehouse_authn::oidc::SessionStore>,
    cookie: String,
}

impl SessionWatch {
    async fn alive(&self) -> bool {
        self.sessions.get(&self.cookie).await.is_some()
    }
}

const RESET: &[u8] =
    b"event: reset\ndata: {\"reason\":\"the given Last-Event-ID is no longer kept; re-list\"}\n\n";
const END: &[u8] = b"event: end\ndata: {\"reason\":\"the session has ended\"}\n\n";
const HEARTBEAT: &[u8] = b": keep-alive\n\n";

/// `GET /gatehouse/v1/events`.
pub async fn stream(
    gw: &Gateway,
    req: &Inbound,
    ctx: &mut RequestCtx,
) -> Result<Reply, GatewayError> {
    let Some(hub) = gw.events.clone() else {
        return Err(GatewayError::new(
            404,
            "GATEWAY::EVENTS_OFF",
            "Lifecycle events are turned off on this gateway ([events] source = \"off\").",
        ));
    };
    let filter = Filter::parse(req.query())?;
    let last = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .or_else(|| filter.last_id.clone());
    let p = &ctx.principal;
    let scope = ctx
        .permit
        .as_ref()
        .and_then(|permit| Scope::for_permit(permit, &p.subject, p.team.as_deref()));
    let session = match (&gw.oidc, p.method) {
        (Some(o), AuthMethod::Session) => {
            gatehouse_authn::oidc::session::cookie_value(req.headers(), o.sessions.cookie_name())
                .map(|c| SessionWatch {
                    sessions: o.sessions.clone(),
                    cookie: c.to_owned(),
                })
        }
        _ => None,
    };
    let audience = Audience {
        hub: hub.clone(),
        scope,
        filter,
    };
    let (rx, resume) = hub.subscribe(last.as_deref());
    let cfg = hub.config();
    // The first chunk: the reconnect delay, then the replay (one chunk however long, so
    // the client buffer holds only live events).
    let mut first = BytesMut::from(&b"retry: 3000\n\n"[..]);
    let mut skip_upto = 0;
    match resume {
        Resume::Reset => first.extend_from_slice(RESET),
        Resume::Replay(events) => {
            for e in events {
                skip_upto = e.seq;
                if audience.wants(&e) {
                    first.extend_from_slice(&e.frame);
                }
            }
        }
    }
    let (tx, body) = mpsc::channel(cfg.client_buffer);
    let _ = tx.try_send(first.freeze());
    let beat = Duration::from_secs(cfg.heartbeat_seconds);
    tokio::spawn(pump(rx, tx, audience, skip_upto, beat, session));
    hub.client_joined();
    ctx.stream = Some(Body::Channel(body));
    Ok(Reply {
        status: 200,
        headers: vec![
            ("content-type", "text/event-stream".into()),
            ("cache-control", "no-store".into()),
            ("x-accel-buffering", "no".into()),
        ],
        body: Bytes::new(),
    })
}

/// Moves one client's events from the hub to its body until it leaves, falls behind, or
/// its session ends.
async fn pump(
    mut rx: tokio::sync::broadcast::Receiver<Arc<Event>>,
    tx: mpsc::Sender<Bytes>,
    audience: Audience,
    skip_upto: u64,
    beat: Duration,
    session: Option<SessionWatch>,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
    let why = loop {
        tokio::select! {
            got = rx.recv() => match got {
                Ok(e) => {
                    if e.seq <= skip_upto || !audience.wants(&e) {
                        continue;
                    }
                    if tx.try_send(e.frame.clone()).is_err() {
                        break "too slow (client buffer full)";
                    }
                }
                Err(RecvError::Lagged(_)) => break "too slow (fell behind the hub)",
                Err(RecvError::Closed) => break "hub closed",
            },
            _ = ticks.tick() => {
                if let Some(s) = &session {
                    if !s.alive().await {
                        let _ = tx.try_send(Bytes::from_static(END));
                        break "session ended";
                    }
                }
                if tx.try_send(Bytes::from_static(HEARTBEAT)).is_err() {
                    break "too slow (client buffer full)";
                }
            }
            () = tx.closed() => break "client left",
        }
    };
    tracing::debug!(reason = why, "event stream ended");
    audience.hub.client_left();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_bad_ones_are_400() {
        let f = Filter::parse(Some("sandbox=a,b&type=created,deleted&lastEventId=1-2")).unwrap();
        assert_eq!(f.sandboxes, vec!["a", "b"]);
        assert_eq!(f.kinds, EventKind::Created.bit() | EventKind::Deleted.bit());
        assert_eq!(f.last_id.as_deref(), Some("1-2"));
        assert_eq!(Filter::parse(None).unwrap(), Filter::default());
        for q in [
            "type=exploded",
            "type=",
            "sandbox=",
            "sandbox=a/b",
            "colour=red",
            "type=created&type=deleted",
        ] {
            let e = Filter::parse(Some(q)).unwrap_err();
            assert_eq!(
                (e.status(), e.code()),
                (400, "GATEWAY::INVALID_QUERY"),
                "{q}"
            );
        }
    }
}
