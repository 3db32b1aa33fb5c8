//! `/session` routes: create, run (SSE), delete.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{read_body, JsonBody};
use crate::error::{ApiError, ApiResult};
use crate::sessions::RunInSessionRequest;
use crate::sse;
use crate::state::Shared;

#[derive(Debug, Default, Deserialize)]
struct CreateSessionRequest {
    #[serde(default)]
    cwd: Option<String>,
}

/// `CreateSessionResponse`.
#[derive(Debug, Serialize)]
pub struct CreateSessionResponse {
    /// The new session's id.
    pub session_id: String,
}

/// `POST /session` (the body is optional).
pub async fn create(
    State(state): State<Shared>,
    req: Request,
) -> ApiResult<Json<CreateSessionResponse>> {
    let body = read_body(req, state.max_json_bytes).await?;
    let parsed: CreateSessionRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CreateSessionRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let session_id = state.sessions.create(&state, parsed.cwd).await?;
    Ok(Json(CreateSessionResponse { session_id }))
}

/// `POST /session/{id}/run`.
pub async fn run(
    State(state): State<Shared>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<RunInSessionRequest>,
) -> ApiResult<Response> {
    if req.command.trim().is_empty() {
        return Err(ApiError::bad_request(
            "'command' must be a non-empty string",
        ));
    }
    let session = state.sessions.get(&id)?;
    let (sink, resp) = sse::channel();
    tokio::spawn(session.run(state, req, sink));
    Ok(resp)
}

/// `DELETE /session/{id}`.
pub async fn delete(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.sessions.delete(&id)?;
    Ok(StatusCode::OK)
}
