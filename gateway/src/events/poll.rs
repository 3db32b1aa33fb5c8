//! Events in front of a server without a feed (the upstream `opensandbox-server`): the
//! gateway lists `GET /v1/sandboxes` every `poll_interval_ms`, at most `poll_max_pages`
//! pages of 100, and diffs each listing with the previous one:
//!
//! - a new id is `created` (then `running`/`failed`/... for its state);
//! - a changed state is the transition's event ([`EventKind::for_transition`]);
//! - a later `expiresAt` is `renewed`;
//! - a missing id is `expired` when its expiry had passed, else `deleted` (only when the
//!   listing was complete: a truncated one cannot tell a missing sandbox from a later
//!   page).
//!
//! Limits: an outside change is seen up to one interval late, and transitions between
//! two polls collapse (a sandbox created and deleted in between is never seen). A
//! mutation made through the gateway wakes the poll at once (at most once per 200 ms, so
//! a burst of creates costs one listing, not one per create), so those are reported
//! within one list call, with their principal; while a create through the gateway awaits
//! its answer, sandboxes not seen before are held back (at most 30 s) so that create is
//! reported once it is answered, with its principal; and a sandbox deleted through the
//! gateway keeps its last state until it leaves the listing (a server may list it as
//! `Failed` while it kills it). The first listing is the baseline and publishes nothing.

use super::feed::Client;
use super::{EventHub, Incoming};
use gatehouse_lifecycle::events::EventKind;
use gatehouse_lifecycle::{time, SandboxState, StringMap};
use http_body_util::BodyExt;
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;

/// Items per listed page.
const PAGE_SIZE: u32 = 100;

/// The least time between the starts of two listings woken by mutations through the
/// gateway (a poke), so a burst of creates costs one listing per gap, not one per create.
const POKE_GAP: Duration = Duration::from_millis(200);

/// The parts of a listed sandbox the diff needs (unknown fields ignored: any server).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    /// Sandbox id.
    pub id: String,
    /// Status.
    #[serde(default)]
    pub status: ListedStatus,
    /// Metadata.
    #[serde(default)]
    pub metadata: StringMap,
    /// Expiry.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// A listed status.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListedStatus {
    /// State name, e.g. `Running`.
    #[serde(default)]
    pub state: String,
    /// Reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// Message.
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    items: Vec<Listed>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pagination {
    #[serde(default)]
    has_next_page: bool,
}

/// Runs until the process exits.
pub async fn run(hub: &EventHub, client: &Client) {
    let every = Duration::from_millis(hub.cfg.poll_interval_ms);
    let mut known: Option<HashMap<String, Listed>> = None;
    let mut failing = false;
    loop {
        let started = tokio::time::Instant::now();
        match list(client, hub.cfg.poll_max_pages).await {
            Ok((mut items, complete)) => {
                if let Some(prev) = &known {
                    if hub.creates_in_flight() {
                        // A new id may be a create not answered yet: report it once it
                        // is, with its principal (the answer wakes the poll).
                        items.retain(|i| prev.contains_key(&i.id));
                    }
                    // A sandbox deleted through the gateway keeps its last state until
                    // it is gone: its `deleted` follows, not the states it passes on the
                    // way out.
                    let deletes = hub.deletes();
                    if !deletes.is_empty() {
                        for i in &mut items {
                            if let Some(p) = prev.get(&i.id).filter(|_| deletes.contains_key(&i.id))
                            {
                                *i = p.clone();
                            }
                        }
                        // Gone before its delete was answered: reported once it is, with
                        // its principal.
                        for (id, _) in deletes.iter().filter(|(_, answered)| !**answered) {
                            if let (Some(p), false) =
                                (prev.get(id), items.iter().any(|i| &i.id == id))
                            {
                                items.push(p.clone());
                            }
                        }
                    }
                }
                if failing {
                    tracing::info!("sandbox poll for lifecycle events answers again");
                }
                failing = false;
                let now = time::format(&time::now());
                if let Some(prev) = &known {
                    for e in diff(prev, &items, complete, &now) {
                        hub.publish(e, "poll");
                    }
                }
                let mut next: HashMap<String, Listed> =
                    items.into_iter().map(|i| (i.id.clone(), i)).collect();
                if !complete {
                    // Keep what a truncated listing could not see.
                    for (id, l) in known.take().unwrap_or_default() {
                        next.entry(id).or_insert(l);
                    }
                }
                known = Some(next);
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "sandbox poll for lifecycle events failed; retrying");
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = hub.poke.notified() => {
                // A burst of mutations (creates under load) pokes on every request: list
                // at most once per `POKE_GAP`, not back to back.
                tokio::time::sleep_until(started + POKE_GAP).await;
            }
        }
    }
}

/// Every sandbox (up to `max_pages` pages) and whether that was all of them.
async fn list(client: &Client, max_pages: u32) -> Result<(Vec<Listed>, bool), String> {
    let mut all = Vec::new();
    for page in 1..=max_pages {
        let path = format!("/v1/sandboxes?page={page}&pageSize={PAGE_SIZE}");
        let resp = client.get(&path, None).await?;
        let status = resp.status();
        let body = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect())
            .await
            .map_err(|_| "list body not read within 10 s".to_string())?
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("the backend answered {status} to a list"));
        }
        let p: Page = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let more = p.pagination.is_some_and(|p| p.has_next_page) && !p.items.is_empty();
        all.extend(p.items);
        if !more {
            return Ok((all, true));
        }
    }
    Ok((all, false))
}

fn state_of(s: &str) -> Option<SandboxState> {
    s.parse().ok()
}

fn event(kind: EventKind, l: &Listed, now: &str) -> Incoming {
    Incoming {
        kind,
        sandbox_id: l.id.clone(),
        state: (!l.status.state.is_empty()).then(|| l.status.state.clone()),
        reason: l.status.reason.clone(),
        message: l.status.message.clone(),
        time: now.to_owned(),
        expires_at: l.expires_at.clone(),
        metadata: l.metadata.clone(),
        request_id: None,
    }
}

/// The events between two listings.
pub fn diff(
    prev: &HashMap<String, Listed>,
    items: &[Listed],
    complete: bool,
    now: &str,
) -> Vec<Incoming> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for l in items {
        seen.insert(l.id.as_str());
        let now_state = state_of(&l.status.state);
        match prev.get(&l.id) {
            None => {
                out.push(event(EventKind::Created, l, now));
                if let Some(k) = now_state.and_then(|s| EventKind::for_transition(None, s)) {
                    out.push(event(k, l, now));
                }
            }
            Some(p) => {
                let before = state_of(&p.status.state);
                if let Some(k) = now_state.and_then(|s| EventKind::for_transition(before, s)) {
                    out.push(event(k, l, now));
                }
                if l.expires_at.is_some() && l.expires_at != p.expires_at {
                    out.push(event(EventKind::Renewed, l, now));
                }
            }
        }
    }
    if complete {
        for (id, p) in prev {
            if seen.contains(id.as_str()) {
                continue;
            }
            let expired = p
                .expires_at
                .as_deref()
                .and_then(|t| time::parse(t).ok())
                .is_some_and(|t| t <= time::now());
            let kind = if expired {
                EventKind::Expired
            } else {
                EventKind::Deleted
            };
            let mut e = event(kind, p, now);
            e.state = None;
            out.push(e);
        }
    }
    out
}
