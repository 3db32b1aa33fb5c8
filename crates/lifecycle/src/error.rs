//! The API's error shape, `{"code","message"}`, and the codes the backend answers with.
//!
//! Codes follow the upstream server's style (`SANDBOX::...`, `DOCKER::...`) so clients
//! that switch on them keep working.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Error codes, named as the upstream OpenSandbox server names them.
pub mod codes {
    /// A request parameter or body field is invalid.
    pub const INVALID_PARAMETER: &str = "SANDBOX::INVALID_PARAMETER";
    /// The request body is not valid JSON or does not match the schema.
    pub const INVALID_REQUEST_BODY: &str = "SANDBOX::INVALID_REQUEST_BODY";
    /// A metadata key or value breaks the Kubernetes label rules or is reserved.
    pub const INVALID_METADATA_LABEL: &str = "SANDBOX::INVALID_METADATA_LABEL";
    /// The `metadata` list filter is not a well-formed query string.
    pub const INVALID_METADATA_FORMAT: &str = "INVALID_METADATA_FORMAT";
    /// The entrypoint is missing or empty.
    pub const INVALID_ENTRYPOINT: &str = "SANDBOX::INVALID_ENTRYPOINT";
    /// A port is out of range.
    pub const INVALID_PORT: &str = "SANDBOX::INVALID_PORT";
    /// The new expiry is not in the future.
    pub const INVALID_EXPIRATION: &str = "SANDBOX::INVALID_EXPIRATION";
    /// The sandbox has no expiry to renew (it was created with `timeout: null`).
    pub const EXPIRATION_NOT_SET: &str = "SANDBOX::EXPIRATION_NOT_SET";
    /// No sandbox has this id.
    pub const SANDBOX_NOT_FOUND: &str = "SANDBOX::NOT_FOUND";
    /// The route exists in the API but this server does not implement it.
    pub const API_NOT_SUPPORTED: &str = "SANDBOX::API_NOT_SUPPORTED";
    /// The sandbox is not in a state that allows the operation.
    pub const INVALID_STATE: &str = "SANDBOX::INVALID_STATE";
    /// No route matches the path.
    pub const ROUTE_NOT_FOUND: &str = "SANDBOX::ROUTE_NOT_FOUND";
    /// The method is not allowed on this path.
    pub const METHOD_NOT_ALLOWED: &str = "SANDBOX::METHOD_NOT_ALLOWED";
    /// The request body is larger than the server accepts.
    pub const PAYLOAD_TOO_LARGE: &str = "SANDBOX::PAYLOAD_TOO_LARGE";
    /// Something failed inside the server; details are in its logs.
    pub const INTERNAL_ERROR: &str = "SANDBOX::INTERNAL_ERROR";
    /// No API key was sent.
    pub const MISSING_API_KEY: &str = "MISSING_API_KEY";
    /// The API key does not match.
    pub const INVALID_API_KEY: &str = "INVALID_API_KEY";
    /// The sandbox's port answered with an error or not at all (server proxy).
    pub const PROXY_UPSTREAM_ERROR: &str = "SANDBOX::PROXY_UPSTREAM_ERROR";
}

/// An error as the API returns it: an HTTP status and a `{"code","message"}` body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// Machine-readable code, e.g. `SANDBOX::INVALID_PARAMETER`.
    pub code: Cow<'static, str>,
    /// Human-readable explanation.
    pub message: String,
}

/// The wire form of an error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl ApiError {
    /// An error with any status and code.
    pub fn new(
        status: u16,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// 400 with the given code.
    pub fn bad_request(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    /// 400 `SANDBOX::INVALID_PARAMETER`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::bad_request(codes::INVALID_PARAMETER, message)
    }

    /// 404 for a sandbox id nobody knows.
    pub fn sandbox_not_found(id: &str) -> Self {
        Self::new(
            404,
            codes::SANDBOX_NOT_FOUND,
            format!("Sandbox '{id}' not found."),
        )
    }

    /// 409 with the given code.
    pub fn conflict(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    /// 500 with a generic message: the details belong in the logs, not the response.
    pub fn internal() -> Self {
        Self::new(
            500,
            codes::INTERNAL_ERROR,
            "Internal server error; see the server logs.",
        )
    }

    /// The serialized `{"code","message"}` body. The backend and the gateway both answer
    /// with these bytes, so a client cannot tell who refused (the not-found body for a
    /// missing and an out-of-scope sandbox is byte-identical).
    pub fn body_bytes(&self) -> Vec<u8> {
        let body = ErrorBody {
            code: self.code.to_string(),
            message: self.message.clone(),
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }

    /// The JSON body of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code.to_string(),
            message: self.message.clone(),
        }
    }
}
