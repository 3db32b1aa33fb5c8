//! `/command` routes: run (SSE), interrupt, status, background logs.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{query_one, query_required, JsonBody};
use crate::commands::{self, RunCommandRequest};
use crate::error::{code, ApiError, ApiResult};
use crate::sse;
use crate::state::Shared;

/// Response header carrying the next log cursor (a byte offset into the command's output).
pub const TAIL_CURSOR_HEADER: &str = "EXECD-COMMANDS-TAIL-CURSOR";

/// `POST /command`: stream `init`, output, then `execution_complete` or `error`.
pub async fn run(
    State(state): State<Shared>,
    JsonBody(req): JsonBody<RunCommandRequest>,
) -> ApiResult<Response> {
    req.validate()?;
    let (sink, resp) = sse::channel();
    if req.background {
        tokio::spawn(commands::run_background(state, req, sink));
    } else {
        tokio::spawn(commands::run_foreground(state, req, sink));
    }
    Ok(resp)
}

/// `DELETE /command?id=`: interrupt a command (or the current run of a session).
pub async fn interrupt(State(state): State<Shared>, uri: Uri) -> ApiResult<StatusCode> {
    let id = query_required(&uri, "id")?;
    if let Some(rec) = state.commands.get(&id) {
        commands::interrupt(&rec).await?;
        return Ok(StatusCode::OK);
    }
    if let Ok(session) = state.sessions.get(&id) {
        session.interrupt().await;
        return Ok(StatusCode::OK);
    }
    Err(ApiError::not_found(
        code::COMMAND_NOT_FOUND,
        format!("command {id} not found"),
    ))
}

/// `GET /command/status/{id}`.
pub async fn status(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> ApiResult<Json<commands::registry::StatusBody>> {
    let rec = state.commands.get(&id).ok_or_else(|| {
        ApiError::not_found(code::COMMAND_NOT_FOUND, format!("command {id} not found"))
    })?;
    Ok(Json(rec.status()))
}

/// `GET /command/{id}/logs?cursor=N`: plain-text output of a background command from byte
/// offset N (all of it without a cursor); the next cursor is in the tail-cursor header.
pub async fn logs(
    State(state): State<Shared>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let rec = state.commands.get(&id).ok_or_else(|| {
        ApiError::not_found(code::COMMAND_NOT_FOUND, format!("command {id} not found"))
    })?;
    if !rec.background {
        return Err(ApiError::bad_request(format!(
            "command {id} is not a background command; its output was streamed"
        )));
    }
    let cursor = match query_one(&uri, "cursor") {
        None => 0,
        Some(c) => c.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid cursor '{c}': expected a non-negative integer"
            ))
        })?,
    };
    let (data, next) = rec.read_log(cursor);
    let mut resp = data.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(TAIL_CURSOR_HEADER, HeaderValue::from(next));
    Ok(resp)
}
