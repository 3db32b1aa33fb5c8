//! Gateway errors and the one function that writes any of them to the client in the API's
//! `{"code","message"}` shape. 5xx bodies are generic; details go to the log.

use crate::ctx::RequestCtx;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

/// A response the gateway answers itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct GatewayError {
    /// HTTP status.
    pub status: u16,
    /// Machine-readable code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl GatewayError {
    /// Any error.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 for a path the gateway refuses to interpret.
    pub fn bad_path(message: impl Into<String>) -> Self {
        Self::new(400, "GATEWAY::INVALID_PATH", message)
    }

    /// 401 without credentials.
    pub fn unauthenticated() -> Self {
        Self::new(
            401,
            "GATEWAY::UNAUTHENTICATED",
            "Authentication required: send an API key in OPEN-SANDBOX-API-KEY or sign in.",
        )
    }

    /// 404 for a sandbox that does not exist or is outside the caller's scope (the two are
    /// indistinguishable on purpose).
    pub fn sandbox_not_found(id: &str) -> Self {
        Self::new(
            404,
            "SANDBOX::NOT_FOUND",
            format!("Sandbox '{id}' not found."),
        )
    }

    /// 502 when the backend cannot be reached.
    pub fn upstream_unavailable() -> Self {
        Self::new(
            502,
            "GATEWAY::UPSTREAM_UNAVAILABLE",
            "The lifecycle backend is unreachable; retry later.",
        )
    }

    /// 500 with a generic message.
    pub fn internal() -> Self {
        Self::new(
            500,
            "GATEWAY::INTERNAL_ERROR",
            "Internal gateway error; see the gateway logs.",
        )
    }

    /// The JSON body.
    pub fn body(&self) -> Bytes {
        let v = serde_json::json!({ "code": self.code, "message": self.message });
        Bytes::from(v.to_string())
    }
}

/// Writes `err` as the response and records it in the context. Returns `Ok(true)` so a
/// `request_filter` can `return respond(...)`.
pub async fn respond(
    session: &mut Session,
    ctx: &mut RequestCtx,
    err: GatewayError,
) -> pingora::Result<bool> {
    ctx.status = Some(err.status);
    ctx.reason.get_or_insert_with(|| err.code.to_string());
    write_json(session, ctx, err.status, err.body()).await?;
    Ok(true)
}

/// Writes a JSON response with the request id.
pub async fn write_json(
    session: &mut Session,
    ctx: &RequestCtx,
    status: u16,
    body: Bytes,
) -> pingora::Result<()> {
    let mut h = ResponseHeader::build(status, Some(4))?;
    h.insert_header("content-type", "application/json")?;
    h.insert_header("content-length", body.len().to_string())?;
    h.insert_header("cache-control", "no-store")?;
    if !ctx.request_id.is_empty() {
        h.insert_header("x-request-id", &ctx.request_id)?;
    }
    session.write_response_header(Box::new(h), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(())
}
