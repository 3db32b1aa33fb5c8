//! Lifecycle handlers: parse, call the service, answer with the spec's status.

use super::body::JsonBody;
use super::State;
use crate::error::{ApiErrorResponse, BackendError};
use axum::extract::{OriginalUri, Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_lifecycle::query::ListQuery;
use gatehouse_lifecycle::wire;
use gatehouse_lifecycle::{codes, ApiError, CreateSandboxRequest, Endpoint, RenewRequest};

type HandlerResult = Result<Response, BackendError>;

/// `GET /health`.
pub async fn health() -> Response {
    Json(serde_json::json!({ "status": "healthy" })).into_response()
}

/// `POST /sandboxes` → 202.
pub async fn create(
    AxState(st): AxState<State>,
    JsonBody(req): JsonBody<CreateSandboxRequest>,
) -> HandlerResult {
    let created = st.service.create(req).await?;
    Ok((StatusCode::ACCEPTED, Json(created)).into_response())
}

/// `GET /sandboxes`.
pub async fn list(AxState(st): AxState<State>, RawQuery(q): RawQuery) -> HandlerResult {
    let q = ListQuery::parse(q.as_deref())?;
    Ok(Json(st.service.list(&q).await?).into_response())
}

/// `GET /sandboxes/{id}`.
pub async fn get(AxState(st): AxState<State>, Path(id): Path<String>) -> HandlerResult {
    Ok(Json(st.service.get(&id).await?).into_response())
}

/// `DELETE /sandboxes/{id}` → 204.
pub async fn delete(AxState(st): AxState<State>, Path(id): Path<String>) -> HandlerResult {
    st.service.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /sandboxes/{id}/pause` → 202.
pub async fn pause(AxState(st): AxState<State>, Path(id): Path<String>) -> HandlerResult {
    st.service.pause(&id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `POST /sandboxes/{id}/resume` → 202.
pub async fn resume(AxState(st): AxState<State>, Path(id): Path<String>) -> HandlerResult {
    st.service.resume(&id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `POST /sandboxes/{id}/renew-expiration`.
pub async fn renew(
    AxState(st): AxState<State>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<RenewRequest>,
) -> HandlerResult {
    Ok(Json(st.service.renew(&id, &req.expires_at).await?).into_response())
}

/// `PATCH /sandboxes/{id}/metadata`.
pub async fn patch_metadata(
    AxState(st): AxState<State>,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<serde_json::Value>,
) -> HandlerResult {
    Ok(Json(st.service.patch_metadata(&id, patch).await?).into_response())
}

/// Parses a port path segment: an integer in 1..=65535.
pub fn parse_port(raw: &str) -> Result<u16, ApiError> {
    raw.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
        ApiError::bad_request(
            codes::INVALID_PORT,
            format!("Port must be between 1 and 65535, got '{raw}'."),
        )
    })
}

/// `GET /sandboxes/{id}/endpoints/{port}[?use_server_proxy=true]`.
pub async fn endpoint(
    AxState(st): AxState<State>,
    Path((id, port)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> HandlerResult {
    let port = parse_port(&port)?;
    let mut use_proxy = false;
    for (k, v) in form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "use_server_proxy" => {
                use_proxy = gatehouse_lifecycle::query::parse_bool("use_server_proxy", &v)?
            }
            "expires" => {
                return Err(ApiError::bad_request(
                    codes::API_NOT_SUPPORTED,
                    "Signed routes (expires parameter) are not supported by this backend.",
                )
                .into())
            }
            _ => {}
        }
    }
    let addr = st.service.endpoint(&id, port).await?;
    let endpoint = if use_proxy {
        let base = match &st.eip {
            Some(eip) => eip.clone(),
            None => {
                let host = wire::request_host(
                    headers
                        .get(http::header::HOST)
                        .map(http::HeaderValue::as_bytes),
                );
                let mount = uri.path().split("/sandboxes/").next().unwrap_or("");
                format!("{host}{mount}")
            }
        };
        wire::server_proxy_endpoint(&base, &id, port)
    } else {
        match &st.endpoint_host {
            Some(h) => format!("{h}:{}", addr.port()),
            None => addr.to_string(),
        }
    };
    Ok(Json(Endpoint {
        endpoint,
        headers: None,
    })
    .into_response())
}

/// Routes of the API this backend does not implement (snapshots, diagnostics) → 501.
pub async fn not_supported(OriginalUri(uri): OriginalUri) -> ApiErrorResponse {
    ApiErrorResponse(ApiError::new(
        501,
        codes::API_NOT_SUPPORTED,
        format!("'{}' is not supported by this backend.", uri.path()),
    ))
}
