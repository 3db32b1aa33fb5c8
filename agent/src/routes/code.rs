//! Routes upstream execd has but this agent does not implement: code interpreting
//! (`/code*`, needs a Jupyter kernel), PTY sessions, namespace isolation (`/v1/...`) and
//! stream resume. They answer `501 NOT_SUPPORTED` in the API's error shape.

use axum::extract::Request;

use crate::error::ApiError;

/// Explain what is not supported, per route family.
pub async fn not_supported(req: Request) -> ApiError {
    let path = req.uri().path();
    let what = if path.starts_with("/code") {
        "code interpreting is not available: this sandbox image has no Jupyter kernel \
         (use /command or /session to run shell commands)"
    } else if path.starts_with("/pty") {
        "PTY sessions are not supported by gatehouse-execd"
    } else if path.starts_with("/v1/") {
        "isolated sessions and identity-scoped filesystem routes are not supported by gatehouse-execd"
    } else {
        "command stream resume is not supported by gatehouse-execd"
    };
    ApiError::NotSupported(what.to_owned())
}
