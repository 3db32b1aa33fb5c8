//! The lifecycle service: validation, the store and the runtime, behind one API-shaped
//! interface. Handlers are thin; everything a request means happens here.

use crate::error::BackendError;
use crate::events::{Draft, EventBus};
use crate::store::{AgentToken, Record, Store};
use chrono::{DateTime, Utc};
use gatehouse_lifecycle::events::EventKind;
use gatehouse_lifecycle::query::ListQuery;
use gatehouse_lifecycle::validate::{self, TimeoutLimits};
use gatehouse_lifecycle::wire;
use gatehouse_lifecycle::{
    codes, time, ApiError, CreateSandboxRequest, CreateSandboxResponse, ListSandboxesResponse,
    Observed, RenewResponse, Runtime, RuntimeError, Sandbox, SandboxSpec, SandboxState,
    SandboxStatus,
};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Result type of service calls.
pub type Result<T> = std::result::Result<T, BackendError>;

/// The lifecycle service shared by every handler and background task.
pub struct Service {
    store: Store,
    runtime: Arc<dyn Runtime>,
    limits: TimeoutLimits,
    expiry_changed: Notify,
    events: EventBus,
    /// Sandboxes being deleted now: a listing that misses them meanwhile is not a
    /// vanished container (no second `deleted` event).
    deleting: Mutex<HashSet<String>>,
    /// Sandboxes being created now (the engine has them, the store may not yet): the
    /// reconcile does not adopt them (no second `created` event).
    creating: Mutex<HashSet<String>>,
}

/// Marks a sandbox as being created until dropped (every return path of a create).
struct Creating<'a> {
    set: &'a Mutex<HashSet<String>>,
    id: String,
}

impl Drop for Creating<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.set.lock() {
            s.remove(&self.id);
        }
    }
}

/// Applies an observation to a record; returns whether the status changed.
fn merge(rec: &mut Record, obs: &Observed) -> bool {
    let same =
        rec.status.state == obs.state && rec.status.reason.as_deref() == Some(obs.reason.as_str());
    if same {
        return false;
    }
    rec.status = SandboxStatus {
        state: obs.state,
        reason: Some(obs.reason.clone()),
        message: Some(obs.message.clone()),
        last_transition_at: Some(obs.since.unwrap_or_else(time::now)),
    };
    true
}

fn unsupported(what: &str) -> BackendError {
    ApiError::bad_request(
        codes::API_NOT_SUPPORTED,
        format!("{what} is not supported by this backend."),
    )
    .into()
}

fn is_set(v: &Option<serde_json::Value>) -> bool {
    match v {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Object(m)) => !m.is_empty(),
        Some(_) => true,
    }
}

impl Service {
    /// A service over a store and a runtime.
    pub fn new(store: Store, runtime: Arc<dyn Runtime>, limits: TimeoutLimits) -> Self {
        Self {
            store,
            runtime,
            limits,
            expiry_changed: Notify::new(),
            events: EventBus::new(),
            deleting: Mutex::new(HashSet::new()),
            creating: Mutex::new(HashSet::new()),
        }
    }

    /// The lifecycle event feed.
    pub fn feed(&self) -> &EventBus {
        &self.events
    }

    /// Publishes `kind` for a sandbox as its record stands.
    fn publish(&self, kind: EventKind, rec: &Record) {
        self.events.publish(Draft {
            kind,
            sandbox_id: rec.id.clone(),
            state: Some(rec.status.state),
            reason: rec.status.reason.clone(),
            message: rec.status.message.clone(),
            expires_at: rec.expires_at,
            metadata: rec.metadata.clone(),
        });
    }

    /// Publishes the end of a sandbox (`deleted`, `expired`) with `reason`.
    fn publish_gone(&self, kind: EventKind, rec: &Record, reason: &str) {
        self.events.publish(Draft {
            kind,
            sandbox_id: rec.id.clone(),
            state: None,
            reason: Some(reason.to_owned()),
            message: None,
            expires_at: rec.expires_at,
            metadata: rec.metadata.clone(),
        });
    }

    /// Publishes what a status change from `prev` means, if anything.
    fn status_changed(&self, prev: SandboxState, rec: &Record) {
        if let Some(kind) = EventKind::for_transition(Some(prev), rec.status.state) {
            self.publish(kind, rec);
        }
    }

    fn being_created(&self, id: &str) -> bool {
        self.creating.lock().is_ok_and(|c| c.contains(id))
    }

    fn mark_creating(&self, id: &str) -> Creating<'_> {
        if let Ok(mut c) = self.creating.lock() {
            c.insert(id.to_owned());
        }
        Creating {
            set: &self.creating,
            id: id.to_owned(),
        }
    }

    fn being_deleted(&self, id: &str) -> bool {
        self.deleting.lock().is_ok_and(|d| d.contains(id))
    }

    fn mark_deleting(&self, id: &str, on: bool) {
        if let Ok(mut d) = self.deleting.lock() {
            if on {
                d.insert(id.to_owned());
            } else {
                d.remove(id);
            }
        }
    }

    /// Removes a sandbox (runtime, then record) while it is marked as being deleted;
    /// whether the record was still there.
    async fn remove(&self, id: &str) -> Result<bool> {
        self.mark_deleting(id, true);
        let done: Result<bool> = async {
            self.runtime.delete(id).await?;
            Ok(self.store.delete(id).await?)
        }
        .await;
        self.mark_deleting(id, false);
        done
    }

    /// The engine's short name, e.g. `DOCKER`.
    pub fn runtime_name(&self) -> &'static str {
        self.runtime.name()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Wakes the expiry scheduler after an expiry changed.
    pub fn expiry_changed(&self) -> &Notify {
        &self.expiry_changed
    }

    fn code(&self, suffix: &str) -> String {
        format!("{}::{suffix}", self.runtime.name())
    }

    async fn record(&self, id: &str) -> Result<Record> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| ApiError::sandbox_not_found(id).into())
    }

    /// Handles a sandbox the engine no longer has: the record goes too.
    async fn vanished(&self, id: &str) -> Result<BackendError> {
        tracing::warn!(
            sandbox.id = id,
            "sandbox vanished from the engine; removing its record"
        );
        let rec = self.store.get(id).await?;
        self.forget_leftovers(id).await;
        if self.store.delete(id).await? && !self.being_deleted(id) {
            if let Some(rec) = rec {
                self.publish_gone(EventKind::Deleted, &rec, "SANDBOX_VANISHED");
            }
        }
        self.expiry_changed.notify_one();
        Ok(ApiError::sandbox_not_found(id).into())
    }

    /// Lets the runtime clean what it keeps beside a container that vanished (the
    /// agent's token directory); the delete is idempotent, so a gone container is fine.
    async fn forget_leftovers(&self, id: &str) {
        if let Err(e) = self.runtime.delete(id).await {
            tracing::debug!(sandbox.id = id, error = %e, "cleanup after a vanished sandbox failed");
        }
    }

    /// Refreshes a record's status from the engine. When the engine is unreachable the
    /// stored status is served as it is.
    async fn observe(&self, mut rec: Record) -> Result<Record> {
        match self.runtime.inspect(&rec.id).await {
            Ok(Some(obs)) => {
                let prev = rec.status.state;
                if merge(&mut rec, &obs) {
                    self.store.set_status(&rec.id, &rec.status).await?;
                    self.status_changed(prev, &rec);
                }
                Ok(rec)
            }
            Ok(None) => Err(self.vanished(&rec.id).await?),
            Err(e @ RuntimeError::Unavailable { .. }) => {
                tracing::debug!(sandbox.id = %rec.id, error = %e, "serving stored status");
                Ok(rec)
            }
            Err(e) => {
                tracing::warn!(sandbox.id = %rec.id, error = %e, "inspect failed; serving stored status");
                Ok(rec)
            }
        }
    }

    /// `POST /sandboxes`.
    pub async fn create(&self, req: CreateSandboxRequest) -> Result<CreateSandboxResponse> {
        let image = match (&req.image, &req.snapshot_id) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "Provide exactly one of 'image' or 'snapshotId', not both.",
                )
                .into())
            }
            (None, Some(_)) => return Err(unsupported("Restoring from a snapshot ('snapshotId')")),
            (None, None) => {
                return Err(ApiError::invalid(
                    "Exactly one of 'image' or 'snapshotId' must be provided.",
                )
                .into())
            }
            (Some(img), None) => img,
        };
        if image.uri.trim().is_empty() {
            return Err(ApiError::invalid("'image.uri' must not be empty.").into());
        }
        let entrypoint = req.entrypoint.clone().unwrap_or_default();
        validate::entrypoint(&entrypoint)?;
        let metadata = req.metadata.clone().unwrap_or_default();
        validate::metadata(&metadata)?;
        validate::timeout(req.timeout, self.limits)?;
        let platform = req.platform.as_ref().map(validate::platform).transpose()?;
        let env_in = req.env.clone().unwrap_or_default();
        validate::env(&env_in)?;
        let resources = validate::resources(&req.resource_limits.clone().unwrap_or_default())?;
        if is_set(&req.network_policy) {
            return Err(unsupported(
                "'networkPolicy' (egress control needs a sidecar this backend does not run)",
            ));
        }
        if is_set(&req.credential_proxy) {
            return Err(unsupported("'credentialProxy'"));
        }
        if req.volumes.as_ref().is_some_and(|v| !v.is_empty()) {
            return Err(unsupported("'volumes'"));
        }
        if req.secure_access == Some(true) {
            return Err(unsupported("'secureAccess' (Kubernetes gateway mode only)"));
        }
        if req
            .extensions
            .as_ref()
            .is_some_and(|e| e.contains_key("poolRef"))
        {
            return Err(unsupported("'extensions.poolRef' (Kubernetes pools only)"));
        }

        let created_at = time::now();
        let expires_at = req
            .timeout
            .map(|t| created_at + chrono::Duration::seconds(t));
        let spec = SandboxSpec {
            id: uuid::Uuid::new_v4().to_string(),
            image: image.uri.trim().to_string(),
            image_auth: image.auth.clone(),
            entrypoint,
            env: env_in
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect(),
            metadata,
            resources,
            expires_at,
            created_at,
            platform,
            extensions: req.extensions.clone().unwrap_or_default(),
            execd_token: None,
        };
        let token = if self.runtime.execd_enabled() {
            Some(AgentToken::generate().map_err(|e| {
                BackendError::from(RuntimeError::Failed {
                    code: codes::INTERNAL_ERROR,
                    op: "create",
                    detail: format!("generating the execd token: {e}"),
                })
            })?)
        } else {
            None
        };
        let spec = SandboxSpec {
            execd_token: token.as_ref().map(|t| t.expose().to_string()),
            ..spec
        };
        let _creating = self.mark_creating(&spec.id);
        let obs = self.runtime.create(&spec).await?;
        let mut rec = Record {
            id: spec.id.clone(),
            image: spec.image.clone(),
            entrypoint: spec.entrypoint.clone(),
            metadata: spec.metadata.clone(),
            extensions: req.extensions.clone(),
            platform: spec.platform.clone(),
            created_at,
            expires_at,
            status: SandboxStatus {
                state: obs.state,
                reason: Some(obs.reason.clone()),
                message: Some(obs.message.clone()),
                last_transition_at: Some(created_at),
            },
            execd_token: token,
        };
        merge(&mut rec, &obs);
        if let Err(e) = self.store.upsert(&rec).await {
            // Nothing may be left behind when the create fails.
            if let Err(del) = self.runtime.delete(&rec.id).await {
                tracing::error!(sandbox.id = %rec.id, error = %del, "cleanup after store failure failed");
            }
            return Err(e.into());
        }
        self.expiry_changed.notify_one();
        self.publish(EventKind::Created, &rec);
        if let Some(kind) = EventKind::for_transition(None, rec.status.state) {
            self.publish(kind, &rec);
        }
        tracing::info!(sandbox.id = %rec.id, image = %rec.image, state = %rec.status.state, "sandbox created");
        Ok(rec.to_sandbox().into())
    }

    /// `GET /sandboxes/{id}`.
    pub async fn get(&self, id: &str) -> Result<Sandbox> {
        let rec = self.record(id).await?;
        Ok(self.observe(rec).await?.to_sandbox())
    }

    /// `GET /sandboxes`.
    pub async fn list(&self, q: &ListQuery) -> Result<ListSandboxesResponse> {
        // Records first, engine second: a record is written only after its container
        // exists, so a record missing from a later engine listing really vanished.
        let records = self.store.all().await?;
        let observed: Option<HashMap<String, Observed>> = match self.runtime.list().await {
            Ok(found) => Some(
                found
                    .into_iter()
                    .map(|d| (d.observed.id.clone(), d.observed))
                    .collect(),
            ),
            Err(e) => {
                tracing::debug!(error = %e, "engine listing failed; serving stored status");
                None
            }
        };
        let mut out = Vec::with_capacity(records.len());
        for mut rec in records {
            if let Some(seen) = &observed {
                match seen.get(&rec.id) {
                    Some(obs) => {
                        let prev = rec.status.state;
                        if merge(&mut rec, obs) {
                            self.store.set_status(&rec.id, &rec.status).await?;
                            self.status_changed(prev, &rec);
                        }
                    }
                    // Being deleted right now: not a vanished container.
                    None if self.being_deleted(&rec.id) => continue,
                    None => {
                        self.vanished(&rec.id).await?;
                        continue;
                    }
                }
            }
            out.push(rec.to_sandbox());
        }
        Ok(q.apply(out))
    }

    /// `DELETE /sandboxes/{id}`: idempotent, concurrent deletes all succeed.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let rec = self.record(id).await?;
        let removed = self.remove(id).await?;
        self.expiry_changed.notify_one();
        if removed {
            self.publish_gone(EventKind::Deleted, &rec, "user_delete");
        }
        tracing::info!(sandbox.id = id, reason = "user_delete", "sandbox deleted");
        Ok(())
    }

    /// Deletes a sandbox whose expiry has passed.
    pub async fn expire(&self, id: &str) -> Result<()> {
        let rec = match self.store.get(id).await? {
            Some(rec) if rec.expires_at.is_some_and(|t| t <= time::now()) => rec,
            // Renewed or deleted meanwhile.
            _ => return Ok(()),
        };
        if self.remove(id).await? {
            self.publish_gone(EventKind::Expired, &rec, "ttl_expiry");
        }
        tracing::info!(
            sandbox.id = id,
            reason = "ttl_expiry",
            "sandbox expired and deleted"
        );
        Ok(())
    }

    async fn transition(&self, id: &str, pause: bool) -> Result<()> {
        let rec = self.record(id).await?;
        let r = if pause {
            self.runtime.pause(id).await
        } else {
            self.runtime.resume(id).await
        };
        match r {
            Ok(()) => {}
            Err(RuntimeError::NotFound(_)) => return Err(self.vanished(id).await?),
            Err(e) => return Err(e.into()),
        }
        self.observe(rec).await?;
        Ok(())
    }

    /// `POST /sandboxes/{id}/pause`.
    pub async fn pause(&self, id: &str) -> Result<()> {
        self.transition(id, true).await
    }

    /// `POST /sandboxes/{id}/resume`.
    pub async fn resume(&self, id: &str) -> Result<()> {
        self.transition(id, false).await
    }

    /// `POST /sandboxes/{id}/renew-expiration`.
    pub async fn renew(&self, id: &str, expires_at: &str) -> Result<RenewResponse> {
        let rec = self.record(id).await?;
        let at: DateTime<Utc> = time::parse(expires_at).map_err(|e| {
            ApiError::invalid(format!(
                "'expiresAt' must be an RFC 3339 date-time, got '{expires_at}': {e}."
            ))
        })?;
        if at <= Utc::now() {
            return Err(ApiError::bad_request(
                self.code("INVALID_EXPIRATION"),
                "New expiration time must be in the future.",
            )
            .into());
        }
        if rec.expires_at.is_none() {
            return Err(ApiError::conflict(
                self.code("INVALID_EXPIRATION"),
                format!("Sandbox {id} does not have automatic expiration enabled."),
            )
            .into());
        }
        if !self.store.set_expiry(id, at).await? {
            return Err(ApiError::sandbox_not_found(id).into());
        }
        self.expiry_changed.notify_one();
        let mut rec = rec;
        rec.expires_at = Some(at);
        self.publish(EventKind::Renewed, &rec);
        tracing::info!(sandbox.id = id, expires_at = %time::format(&at), "expiry renewed");
        Ok(RenewResponse { expires_at: at })
    }

    /// `PATCH /sandboxes/{id}/metadata` (JSON merge patch, RFC 7396).
    pub async fn patch_metadata(&self, id: &str, patch: serde_json::Value) -> Result<Sandbox> {
        let serde_json::Value::Object(patch) = patch else {
            return Err(ApiError::invalid("The metadata patch must be a JSON object.").into());
        };
        let rec = self.record(id).await?;
        let mut md = rec.metadata.clone();
        for (k, v) in patch {
            match v {
                serde_json::Value::Null => {
                    validate::metadata_entry(&k, "")?;
                    md.remove(&k);
                }
                serde_json::Value::String(s) => {
                    validate::metadata_entry(&k, &s)?;
                    md.insert(k, s);
                }
                other => {
                    return Err(ApiError::bad_request(
                        codes::INVALID_METADATA_LABEL,
                        format!(
                            "Metadata value for key '{k}' must be a string or null, got {other}."
                        ),
                    )
                    .into())
                }
            }
        }
        if !self.store.set_metadata(id, &md).await? {
            return Err(ApiError::sandbox_not_found(id).into());
        }
        let mut rec = rec;
        rec.metadata = md;
        Ok(self.observe(rec).await?.to_sandbox())
    }

    /// Where this process reaches `port` of a sandbox: a published port directly (with
    /// the agent's token for the agent's own ports), any other port through the agent's
    /// proxy (`<execd>/proxy/<port>`, with the token), as upstream does.
    pub async fn endpoint(&self, id: &str, port: u16) -> Result<ResolvedEndpoint> {
        let rec = self.record(id).await?;
        let paused = matches!(
            rec.status.state,
            SandboxState::Paused | SandboxState::Pausing
        );
        let agent_port = port == wire::EXECD_PORT || port == wire::EGRESS_PORT;
        match self.runtime.endpoint(id, port).await {
            Ok(addr) => Ok(ResolvedEndpoint {
                addr,
                prefix: String::new(),
                token: rec.execd_token.filter(|_| agent_port),
                paused,
            }),
            Err(RuntimeError::NotFound(_)) => Err(self.vanished(id).await?),
            Err(RuntimeError::Invalid { status: 404, .. })
                if rec.execd_token.is_some() && port != wire::EXECD_PORT =>
            {
                let addr = match self.runtime.endpoint(id, wire::EXECD_PORT).await {
                    Ok(a) => a,
                    Err(RuntimeError::NotFound(_)) => return Err(self.vanished(id).await?),
                    Err(e) => return Err(e.into()),
                };
                Ok(ResolvedEndpoint {
                    addr,
                    prefix: format!("/proxy/{port}"),
                    token: rec.execd_token,
                    paused,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `PUT /gatehouse/ext/v1/sandboxes/{id}/identity`: hands the sandbox its gateway
    /// token through the runtime (never stored or logged here).
    pub async fn deliver_identity(&self, id: &str, token: &str) -> Result<()> {
        self.record(id).await?;
        match self.runtime.deliver_identity(id, token).await {
            Err(RuntimeError::NotFound(_)) => Err(self.vanished(id).await?),
            r => {
                r?;
                tracing::info!(sandbox.id = id, "sandbox identity token delivered");
                Ok(())
            }
        }
    }

    /// `GET /sandboxes/{id}/diagnostics/logs`: the sandbox's own output.
    pub async fn logs(&self, id: &str, tail: usize) -> Result<String> {
        self.record(id).await?;
        match self.runtime.logs(id, tail).await {
            Err(RuntimeError::NotFound(_)) => Err(self.vanished(id).await?),
            r => Ok(r?),
        }
    }

    /// `GET /sandboxes/{id}/diagnostics/events`: the engine's events and the backend's
    /// view of the sandbox.
    pub async fn events(&self, id: &str) -> Result<String> {
        let rec = self.record(id).await?;
        let mut out = format!(
            "{} sandbox created (image {})\n",
            time::format(&rec.created_at),
            rec.image
        );
        match self.runtime.events(id).await {
            Ok(text) => out.push_str(&text),
            Err(RuntimeError::NotFound(_)) => return Err(self.vanished(id).await?),
            Err(e) => return Err(e.into()),
        }
        Ok(out)
    }

    /// Brings the store in line with the engine: adopts sandboxes the store does not know,
    /// drops records whose container vanished, refreshes statuses. Skipped (with an error)
    /// when the engine is unreachable, so nothing is dropped on a mere outage.
    pub async fn reconcile(&self) -> Result<ReconcileReport> {
        let records = self.store.all().await?;
        let found = self.runtime.list().await?;
        let mut report = ReconcileReport::default();
        let mut known: HashMap<String, Record> =
            records.into_iter().map(|r| (r.id.clone(), r)).collect();
        for d in found {
            match known.remove(&d.observed.id) {
                Some(mut rec) => {
                    let prev = rec.status.state;
                    if merge(&mut rec, &d.observed) {
                        self.store.set_status(&rec.id, &rec.status).await?;
                        self.status_changed(prev, &rec);
                        report.refreshed += 1;
                    }
                }
                None if self.being_created(&d.observed.id) => continue,
                None => {
                    let mut rec = Record {
                        id: d.observed.id.clone(),
                        image: d.image,
                        entrypoint: d.entrypoint,
                        metadata: d.metadata,
                        extensions: None,
                        platform: None,
                        created_at: d.created_at,
                        expires_at: d.expires_at,
                        status: SandboxStatus {
                            state: d.observed.state,
                            reason: None,
                            message: None,
                            last_transition_at: None,
                        },
                        // The token lives only in the store: an adopted sandbox's agent
                        // cannot be reached through endpoints any more.
                        execd_token: None,
                    };
                    merge(&mut rec, &d.observed);
                    // A create that finished since the store was read is not adopted.
                    if !self.store.insert_if_absent(&rec).await? {
                        continue;
                    }
                    self.publish(EventKind::Created, &rec);
                    tracing::info!(sandbox.id = %rec.id, "adopted a sandbox the store did not know");
                    report.adopted += 1;
                }
            }
        }
        for (id, rec) in known {
            if self.being_deleted(&id) {
                continue;
            }
            tracing::warn!(sandbox.id = %id, "container vanished while the backend was away; record removed");
            self.forget_leftovers(&id).await;
            if self.store.delete(&id).await? {
                self.publish_gone(EventKind::Deleted, &rec, "SANDBOX_VANISHED");
            }
            report.removed += 1;
        }
        self.expiry_changed.notify_one();
        Ok(report)
    }

    /// Whether the engine answers.
    pub async fn engine_ok(&self) -> bool {
        self.runtime.ping().await.is_ok()
    }
}

/// Where a sandbox port is reached.
#[derive(Debug, Clone)]
pub struct ResolvedEndpoint {
    /// Address this process dials (a published host port).
    pub addr: SocketAddr,
    /// Path prefix on `addr`: empty, or `/proxy/<port>` through the agent's proxy.
    pub prefix: String,
    /// Token to send in `X-EXECD-ACCESS-TOKEN`, when the endpoint is the agent's.
    pub token: Option<AgentToken>,
    /// The sandbox was last seen paused (or pausing): its ports accept and never answer.
    pub paused: bool,
}

/// What a reconciliation changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Sandboxes adopted from the engine.
    pub adopted: usize,
    /// Records removed because their container vanished.
    pub removed: usize,
    /// Records whose status changed.
    pub refreshed: usize,
}
