//! API errors and the single function that turns them into HTTP responses.
//!
//! Every error body has the execd contract's shape `{"code": "...", "message": "..."}`.
//! 5xx bodies are generic; the detail is only logged.

use std::io;
use std::path::Path;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Error codes used in `ErrorResponse.code` (upstream execd's vocabulary plus a few of ours).
pub mod code {
    /// Malformed or invalid request body or parameter.
    pub const INVALID_REQUEST: &str = "INVALID_REQUEST_BODY";
    /// A required query parameter is missing.
    pub const MISSING_QUERY: &str = "MISSING_QUERY";
    /// Missing or wrong access token.
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    /// The operating system refused the operation.
    pub const PERMISSION_DENIED: &str = "PERMISSION_DENIED";
    /// A file or directory does not exist.
    pub const FILE_NOT_FOUND: &str = "FILE_NOT_FOUND";
    /// A command id is unknown.
    pub const COMMAND_NOT_FOUND: &str = "COMMAND_NOT_FOUND";
    /// A session id is unknown.
    pub const SESSION_NOT_FOUND: &str = "SESSION_NOT_FOUND";
    /// Route does not exist.
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// Route exists, method does not.
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    /// Target already exists / state conflict.
    pub const CONFLICT: &str = "CONFLICT";
    /// Upload larger than the configured maximum.
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    /// Range header cannot be satisfied.
    pub const RANGE_NOT_SATISFIABLE: &str = "RANGE_NOT_SATISFIABLE";
    /// Feature not available in this agent / image.
    pub const NOT_SUPPORTED: &str = "NOT_SUPPORTED";
    /// Upstream (proxied) service unreachable.
    pub const BAD_GATEWAY: &str = "BAD_GATEWAY";
    /// Anything unexpected.
    pub const RUNTIME_ERROR: &str = "RUNTIME_ERROR";
}

/// Every failure a route can report.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or wrong `X-EXECD-ACCESS-TOKEN`.
    #[error("unauthorized: missing or invalid header X-EXECD-ACCESS-TOKEN")]
    Unauthorized,
    /// The request is malformed (bad JSON, bad parameter...).
    #[error("{message}")]
    BadRequest {
        /// Error code.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
    /// The OS denied access to a path.
    #[error("{0}")]
    Forbidden(String),
    /// A resource does not exist.
    #[error("{message}")]
    NotFound {
        /// Error code.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
    /// The route exists but not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The target already exists or the state does not allow the operation.
    #[error("{0}")]
    Conflict(String),
    /// Body larger than the configured limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit in bytes.
        limit: u64,
    },
    /// Range header cannot be satisfied.
    #[error("{0}")]
    RangeNotSatisfiable(String),
    /// The feature is not available in this agent or image.
    #[error("{0}")]
    NotSupported(String),
    /// A proxied in-sandbox service could not be reached.
    #[error("{0}")]
    BadGateway(String),
    /// Unexpected failure; details are logged, never returned.
    #[error("internal error: {context}: {source}")]
    Internal {
        /// What was being done.
        context: String,
        /// Underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ApiError {
    /// A 400 with the generic invalid-request code.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            code: code::INVALID_REQUEST,
            message: message.into(),
        }
    }

    /// A 400 for a missing query parameter.
    pub fn missing_query(name: &str) -> Self {
        Self::BadRequest {
            code: code::MISSING_QUERY,
            message: format!("missing query parameter '{name}'"),
        }
    }

    /// A 404 with the given code.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            message: message.into(),
        }
    }

    /// A 500 wrapping any error.
    pub fn internal(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Internal {
            context: context.into(),
            source: source.into(),
        }
    }

    /// Classify an I/O error on `path` into a client or server error.
    pub fn io(op: &str, path: &Path, err: io::Error) -> Self {
        let shown = path.display();
        match err.kind() {
            io::ErrorKind::NotFound => {
                Self::not_found(code::FILE_NOT_FOUND, format!("{op}: {shown}: not found"))
            }
            io::ErrorKind::PermissionDenied => {
                Self::Forbidden(format!("{op}: {shown}: permission denied"))
            }
            io::ErrorKind::AlreadyExists => {
                Self::Conflict(format!("{op}: {shown}: already exists"))
            }
            io::ErrorKind::NotADirectory
            | io::ErrorKind::IsADirectory
            | io::ErrorKind::DirectoryNotEmpty
            | io::ErrorKind::InvalidInput
            | io::ErrorKind::InvalidFilename
            | io::ErrorKind::ReadOnlyFilesystem
            | io::ErrorKind::CrossesDevices => Self::bad_request(format!("{op}: {shown}: {err}")),
            _ => Self::internal(format!("{op} {shown}"), err),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, code::UNAUTHORIZED),
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, code::PERMISSION_DENIED),
            Self::NotFound { code, .. } => (StatusCode::NOT_FOUND, code),
            Self::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, code::METHOD_NOT_ALLOWED),
            Self::Conflict(_) => (StatusCode::CONFLICT, code::CONFLICT),
            Self::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, code::PAYLOAD_TOO_LARGE)
            }
            Self::RangeNotSatisfiable(_) => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                code::RANGE_NOT_SATISFIABLE,
            ),
            Self::NotSupported(_) => (StatusCode::NOT_IMPLEMENTED, code::NOT_SUPPORTED),
            Self::BadGateway(_) => (StatusCode::BAD_GATEWAY, code::BAD_GATEWAY),
            Self::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, code::RUNTIME_ERROR),
        }
    }
}

/// Wire shape of every error body (`ErrorResponse` in the execd contract).
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl IntoResponse for ApiError {
    /// The one place where errors become responses.
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = if status.is_server_error() && !matches!(self, Self::NotSupported(_)) {
            tracing::error!(error = %self, "request failed");
            match self {
                Self::BadGateway(_) => "in-sandbox service unreachable".to_owned(),
                _ => "internal error (see agent log)".to_owned(),
            }
        } else {
            self.to_string()
        };
        (status, axum::Json(ErrorBody { code, message })).into_response()
    }
}

/// Result alias for route handlers.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_classified() {
        let p = Path::new("/x");
        let nf = ApiError::io("read", p, io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(nf.parts().0, StatusCode::NOT_FOUND);
        let pd = ApiError::io("read", p, io::Error::from(io::ErrorKind::PermissionDenied));
        assert_eq!(pd.parts().0, StatusCode::FORBIDDEN);
        let other = ApiError::io("read", p, io::Error::other("disk on fire"));
        assert_eq!(other.parts().0, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn server_errors_have_generic_bodies() {
        let resp = ApiError::internal("ctx", io::Error::other("secret detail")).into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("secret detail"));
        assert!(text.contains("\"code\":\"RUNTIME_ERROR\""));
    }
}
