//! Probes. `/livez`: the process serves requests (always 200, never looks at anything
//! else, so a liveness probe never restarts a healthy gateway because its backend is
//! down). `/readyz`: every dependency a request needs answers; the body names each
//! check. The governance store is checked too, but an unreachable store does not make
//! the gateway unready: it fails static (cached bindings and keys, audit spooled), so the
//! body says `degraded` with 200. `/healthz`: kept for compatibility (200 when the
//! backend answers, else 503).

use crate::ctx::RequestCtx;
use crate::reply::Reply;
use crate::state::Gateway;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long `/readyz` waits for the governance store to answer a ping.
const STORE_PING: Duration = Duration::from_secs(1);

/// `/livez`: 200 while the process serves requests.
pub fn livez() -> Reply {
    Reply::json_value(200, &serde_json::json!({ "status": "alive" }))
}

/// `/readyz`: 200 when the backend answers `/health` and, with OIDC configured, the
/// OpenID provider's discovery has succeeded; otherwise 503. Each check is named with
/// `ok` or the reason it is not; `store` is informational (see the module docs).
pub async fn readyz(gw: &Gateway, ctx: &RequestCtx) -> Reply {
    let (backend, store) = tokio::join!(
        gw.backend.upstream_healthy(&ctx.request_id),
        tokio::time::timeout(STORE_PING, gw.store.ping())
    );
    let store_ok = matches!(store, Ok(Ok(())));
    let mut checks = serde_json::Map::new();
    checks.insert(
        "backend".into(),
        (if backend { "ok" } else { "unreachable" }).into(),
    );
    let mut ready = backend;
    if let Some(o) = &gw.oidc {
        let discovered = o.discovered.load(Ordering::Acquire);
        ready &= discovered;
        checks.insert(
            "idp_discovery".into(),
            (if discovered { "ok" } else { "pending" }).into(),
        );
    }
    checks.insert(
        "store".into(),
        (if store_ok {
            "ok"
        } else {
            "unreachable (fail-static: cached bindings and keys, audit spooled)"
        })
        .into(),
    );
    let status = match (ready, store_ok) {
        (false, _) => "not_ready",
        (true, false) => "degraded",
        (true, true) => "ready",
    };
    let body = serde_json::json!({
        "status": status,
        "checks": checks,
        "store": store_state(gw, store_ok),
    });
    Reply::json_value(if ready { 200 } else { 503 }, &body)
}

/// The governance store's state for `/readyz` (`reachable`: it answered the ping): the kind, whether
/// the RBAC bindings in memory are current and how old they are, and the durable audit
/// writer's backlog. The store does not decide readiness: without it the gateway keeps
/// serving (fail static), and the body says what that means.
fn store_state(gw: &Gateway, reachable: bool) -> serde_json::Value {
    let fresh = gw.bindings.is_fresh();
    let mut state = serde_json::json!({
        "kind": gw.store.kind(),
        "bindings": if fresh { "fresh" } else { "stale" },
        "bindingsAgeSeconds": gw.bindings.age().map(|a| a.as_secs()),
        "auditQueued": gw.durable.queue_depth(),
        "auditSpooled": gw.durable.spool_depth(),
    });
    if !reachable || !fresh {
        state["note"] = "The governance store cannot be read: the last bindings read still \
                         apply (fail static), audit events wait in the spool, and personal \
                         keys not seen in the last seconds are refused."
            .into();
    }
    state
}

/// `/healthz` (compatibility): 200 when the backend's `/health` answers, else 503
/// (`degraded`). Prefer `/livez` and `/readyz` for probes.
pub async fn healthz(gw: &Gateway, ctx: &RequestCtx) -> Reply {
    let up = gw.backend.upstream_healthy(&ctx.request_id).await;
    let body = serde_json::json!({
        "status": if up { "healthy" } else { "degraded" },
        "gateway": "healthy",
        "upstream": if up { "healthy" } else { "unreachable" },
    });
    Reply::json_value(if up { 200 } else { 503 }, &body)
}
