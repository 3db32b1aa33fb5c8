//! `PUT /gatehouse/ext/v1/sandboxes/{id}/identity`: a Gatehouse extension (not part of
//! the OpenSandbox API) through which the gateway hands a sandbox its identity token
//! (the Docker push bootstrap; see the gateway's `sandbox_identity::push`). It needs the
//! backend key like every route. The runtime writes the token where only the sandbox's
//! supervisor directory holds it (`GATEHOUSE_SANDBOX_TOKEN_FILE`); the token is never
//! stored, labelled, logged or answered.

use super::body::JsonBody;
use super::State;
use crate::error::BackendError;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gatehouse_lifecycle::{codes, ApiError};

/// Largest token accepted, bytes.
const MAX_TOKEN: usize = 8192;

/// The request body. `Debug` never shows the token.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityRequest {
    /// The sandbox's token (a compact JWT).
    token: String,
    /// When it expires (informational).
    #[allow(dead_code)]
    expires_at: Option<String>,
}

impl std::fmt::Debug for IdentityRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityRequest").finish_non_exhaustive()
    }
}

/// Whether `t` looks like a compact JWS: three non-empty base64url parts.
fn is_compact_jws(t: &str) -> bool {
    let parts: Vec<&str> = t.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `PUT /gatehouse/ext/v1/sandboxes/{id}/identity` → 204.
pub async fn put(
    AxState(st): AxState<State>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<IdentityRequest>,
) -> Result<Response, BackendError> {
    if req.token.len() > MAX_TOKEN || !is_compact_jws(&req.token) {
        return Err(ApiError::new(
            400,
            codes::INVALID_PARAMETER,
            "token must be a compact JWT of at most 8192 bytes.",
        )
        .into());
    }
    st.service.deliver_identity(&id, &req.token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_compact_jws_shapes() {
        assert!(is_compact_jws("a.b.c"));
        assert!(is_compact_jws("eyJ-_.x9.Zz"));
        assert!(!is_compact_jws("a.b"));
        assert!(!is_compact_jws("a..c"));
        assert!(!is_compact_jws("a.b.c\n"));
        assert!(!is_compact_jws("a.b.c d"));
    }
}
