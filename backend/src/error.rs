//! Backend errors and the one function that turns any of them into an HTTP response.
//!
//! Client errors carry their message to the caller. Server errors (5xx) answer with a
//! generic message; their details go to the log with the request id.

use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_lifecycle::{codes, ApiError, RuntimeError};

/// Anything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// An error already in the API's shape (validation, not found, conflict).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The sandbox engine failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BackendError {
    /// The API error a client sees. 5xx details are logged here, never returned.
    pub fn to_api(&self) -> ApiError {
        match self {
            Self::Api(e) => e.clone(),
            Self::Store(e) => {
                tracing::error!(error = %e, "store failure");
                ApiError::internal()
            }
            Self::Runtime(e) => runtime_to_api(e),
        }
    }
}

fn runtime_to_api(e: &RuntimeError) -> ApiError {
    match e {
        RuntimeError::Unavailable {
            runtime,
            code,
            detail,
        } => {
            tracing::warn!(runtime, detail = %detail, "engine unavailable");
            ApiError::new(
                503,
                *code,
                "The sandbox engine is unreachable. Reads are served from the last observed state; \
                 retry the operation once the engine is back.",
            )
        }
        RuntimeError::NotFound(id) => ApiError::sandbox_not_found(id),
        RuntimeError::Timeout { code, op, seconds } => {
            tracing::warn!(code, op, seconds, "engine call timed out");
            ApiError::new(
                503,
                *code,
                "The sandbox engine did not answer in time; retry the operation.",
            )
        }
        RuntimeError::Image {
            code,
            image,
            detail,
        } => ApiError::new(
            400,
            *code,
            format!("Image '{image}' is not available: {detail}"),
        ),
        RuntimeError::Conflict { code, message } => ApiError::conflict(*code, message.clone()),
        RuntimeError::Invalid {
            status,
            code,
            message,
        } => ApiError::new(*status, *code, message.clone()),
        RuntimeError::Failed { code, op, detail } => {
            tracing::error!(code, op, detail = %detail, "engine operation failed");
            ApiError::new(
                500,
                *code,
                format!("The engine failed to {op}; see the server logs."),
            )
        }
    }
}

/// Renders an API error as `{"code","message"}` with its status.
pub fn error_response(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(e.body())).into_response()
}

impl IntoResponse for BackendError {
    fn into_response(self) -> Response {
        error_response(&self.to_api())
    }
}

impl IntoResponse for ApiErrorResponse {
    fn into_response(self) -> Response {
        error_response(&self.0)
    }
}

/// Wrapper so extractors can reject with an [`ApiError`].
#[derive(Debug)]
pub struct ApiErrorResponse(pub ApiError);

/// 404 for a path no route serves.
pub fn route_not_found(path: &str) -> ApiError {
    ApiError::new(
        404,
        codes::ROUTE_NOT_FOUND,
        format!("No route for path '{path}'."),
    )
}
