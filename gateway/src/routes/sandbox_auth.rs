//! `POST /auth/sandbox/refresh` and `POST /auth/sandbox/token`: sandbox tokens for code
//! inside a sandbox (see [`crate::sandbox_identity`]). Both answer
//! `{"token", "expiresAt", "sandboxId"}` with `Cache-Control: no-store`; both are 404
//! when `[sandbox_identity]` (or its `kubernetes` part, for the pull) is not configured.

use crate::backend_client::Found;
use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::http::inbound::Inbound;
use crate::reply::Reply;
use crate::sandbox_identity::{Minted, SandboxIdentity};
use crate::state::Gateway;
use gatehouse_authn::kubernetes::{bound_pod, ReviewError};
use gatehouse_authn::PrincipalKind;

/// The pod label holding the sandbox id (set by the Kubernetes driver).
const SANDBOX_ID_LABEL: &str = gatehouse_lifecycle::wire::labels::ID;

fn not_configured(req: &Inbound, ctx: &RequestCtx) -> GatewayError {
    GatewayError::new(
        404,
        "GATEWAY::UNKNOWN_ROUTE",
        format!("No route {} {}.", req.method(), ctx.path),
    )
}

fn answer(id: &str, m: &Minted) -> Reply {
    Reply::json_value(
        200,
        &serde_json::json!({
            "token": m.token,
            "expiresAt": m.expires_rfc3339(),
            "sandboxId": id,
        }),
    )
}

fn mint(si: &SandboxIdentity, id: &str, via: &'static str) -> Result<Reply, GatewayError> {
    let m = si.mint(id, via).map_err(|e| {
        tracing::error!(error = %e, "sandbox token not minted");
        GatewayError::internal()
    })?;
    Ok(answer(id, &m))
}

/// `POST /auth/sandbox/refresh` (after the chain): a sandbox principal gets a new token
/// while its sandbox exists (asked of the backend, not the cache).
pub async fn refresh(
    gw: &Gateway,
    req: &Inbound,
    ctx: &mut RequestCtx,
) -> Result<Reply, GatewayError> {
    let Some(si) = gw.sandbox_identity.as_deref() else {
        return Err(not_configured(req, ctx));
    };
    let p = &ctx.principal;
    if p.kind == PrincipalKind::Anonymous {
        return Err(GatewayError::new(
            401,
            gatehouse_authn::INVALID_SANDBOX_TOKEN,
            "A sandbox token (Authorization: Bearer) is required.",
        ));
    }
    let Some(id) = p.sandbox_id().map(str::to_owned) else {
        ctx.denied = true;
        return Err(GatewayError::new(
            403,
            "GATEWAY::FORBIDDEN",
            "Only a sandbox can refresh a sandbox token.",
        ));
    };
    gw.backend.forget(&id);
    match gw.backend.sandbox(&id, &ctx.request_id).await {
        Ok(Found::Sandbox(_)) => mint(si, &id, "refresh"),
        Ok(Found::Missing) => {
            ctx.denied = true;
            Err(GatewayError::new(
                401,
                "GATEWAY::SANDBOX_GONE",
                "The sandbox no longer exists; its token cannot be refreshed.",
            ))
        }
        Err(e) => {
            tracing::warn!(error = %e, "sandbox lookup for a token refresh failed");
            Err(GatewayError::upstream_unavailable())
        }
    }
}

/// `POST /auth/sandbox/token` with `Authorization: Bearer <projected ServiceAccount
/// token>`: TokenReview, then the bound pod, then a sandbox token for the pod's sandbox.
pub async fn exchange(
    gw: &Gateway,
    req: &Inbound,
    ctx: &mut RequestCtx,
) -> Result<Reply, GatewayError> {
    let Some(si) = gw.sandbox_identity.as_deref() else {
        return Err(not_configured(req, ctx));
    };
    let (Some(k), Some(reviewer)) = (&si.cfg.kubernetes, &si.reviewer) else {
        return Err(not_configured(req, ctx));
    };
    let refused = |status: u16, code: &'static str, message: &str| {
        GatewayError::new(status, code, message.to_owned())
    };
    let Some(token) = gatehouse_authn::bearer(req.headers()) else {
        return Err(refused(
            401,
            "GATEWAY::MISSING_SERVICE_ACCOUNT_TOKEN",
            "Send the pod's projected ServiceAccount token as Authorization: Bearer.",
        ));
    };
    let invalid = |e: &ReviewError| {
        tracing::info!(error = %e, "ServiceAccount token refused");
        refused(
            401,
            "GATEWAY::INVALID_SERVICE_ACCOUNT_TOKEN",
            "The ServiceAccount token is not valid for this gateway.",
        )
    };
    let account = match reviewer
        .review(token, std::slice::from_ref(&k.audience))
        .await
    {
        Ok(a) => a,
        Err(e @ ReviewError::Unavailable(_)) | Err(e @ ReviewError::Config(_)) => {
            tracing::warn!(error = %e, "TokenReview failed");
            return Err(GatewayError::new(
                503,
                "GATEWAY::KUBERNETES_UNAVAILABLE",
                "The Kubernetes API server could not be asked; retry later.",
            ));
        }
        Err(e) => return Err(invalid(&e)),
    };
    if !k.namespaces.iter().any(|n| n == &account.namespace) {
        tracing::info!(namespace = %account.namespace, "ServiceAccount token from a namespace not allowed");
        return Err(refused(
            403,
            "GATEWAY::NAMESPACE_NOT_ALLOWED",
            "Sandbox pods may not run in this namespace.",
        ));
    }
    if account.service_account != k.service_account {
        tracing::info!(service_account = %account.service_account, "ServiceAccount is not the sandbox ServiceAccount");
        return Err(refused(
            403,
            "GATEWAY::WRONG_SERVICE_ACCOUNT",
            "The token does not belong to the sandbox ServiceAccount.",
        ));
    }
    let pod = match bound_pod(reviewer, &account).await {
        Ok(p) => p,
        Err(e @ ReviewError::Unavailable(_)) => {
            tracing::warn!(error = %e, "bound pod lookup failed");
            return Err(GatewayError::new(
                503,
                "GATEWAY::KUBERNETES_UNAVAILABLE",
                "The Kubernetes API server could not be asked; retry later.",
            ));
        }
        Err(e) => return Err(invalid(&e)),
    };
    let Some(id) = pod.labels.get(SANDBOX_ID_LABEL).filter(|v| !v.is_empty()) else {
        tracing::info!(pod = %pod.name, "bound pod carries no sandbox id label");
        return Err(refused(
            403,
            "GATEWAY::NOT_A_SANDBOX_POD",
            "The pod the token is bound to is not a sandbox.",
        ));
    };
    mint(si, id, "kubernetes")
}
