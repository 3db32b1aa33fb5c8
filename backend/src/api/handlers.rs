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
    let started = std::time::Instant::now();
    let created = st.service.create(req).await;
    if let Some(m) = crate::metrics::metrics() {
        m.create_took(started.elapsed());
    }
    let created = created?;
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
    let resolved = st.service.endpoint(&id, port).await?;
    let addr = resolved.addr;
    // Through the server proxy the backend adds the agent's token itself, so the user
    // never handles it; a direct endpoint carries it for the caller to send.
    let token_headers = match (&resolved.token, use_proxy) {
        (Some(t), false) => Some(gatehouse_lifecycle::StringMap::from([(
            wire::EXECD_TOKEN_HEADER.to_string(),
            t.expose().to_string(),
        )])),
        _ => None,
    };
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
        let host = match &st.endpoint_host {
            Some(h) => format!("{h}:{}", addr.port()),
            None => addr.to_string(),
        };
        format!("{host}{}", resolved.prefix)
    };
    Ok(Json(Endpoint {
        endpoint,
        headers: token_headers,
    })
    .into_response())
}

/// `GET /version` (no key needed, as upstream): the server's package version.
pub async fn version() -> Response {
    Json(serde_json::json!({ "version": env!("CARGO_PKG_VERSION") })).into_response()
}

/// `POST /v1/metrics/events`: the SDK's client-side metrics; accepted and dropped (204).
pub async fn metrics_event() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `/pools...`: pools are a Kubernetes feature → 501, as upstream on Docker.
pub async fn pools_not_supported() -> ApiErrorResponse {
    ApiErrorResponse(ApiError::new(
        501,
        "KUBERNETES::POOL_NOT_SUPPORTED",
        "Pool management is only available when runtime.type is 'kubernetes'.",
    ))
}

/// `GET /snapshots`: this backend takes no snapshots, so the list is empty (as upstream
/// answers on a server without snapshots), paginated like any list.
pub async fn list_snapshots(RawQuery(q): RawQuery) -> HandlerResult {
    let mut page = 1u64;
    let mut page_size = 20u64;
    for (k, v) in form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()) {
        let parse = |name: &str, max: u64| {
            v.parse::<u64>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "'{name}' must be an integer between 1 and {max}, got '{v}'."
                    ))
                })
        };
        match k.as_ref() {
            "page" => page = parse("page", u64::MAX)?,
            "pageSize" => page_size = parse("pageSize", 200)?,
            _ => {}
        }
    }
    Ok(Json(serde_json::json!({
        "items": [],
        "pagination": {
            "page": page,
            "pageSize": page_size,
            "totalItems": 0,
            "totalPages": 0,
            "hasNextPage": false,
        }
    }))
    .into_response())
}

/// Lines of diagnostic text returned inline, as upstream's Docker backend.
const LOG_LINES: usize = 100;
const EVENT_LINES: usize = 50;

/// Keeps the last `limit` lines; whether any were dropped.
fn last_lines(text: &str, limit: usize) -> (String, bool) {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    if lines.len() <= limit {
        return (text.to_string(), false);
    }
    (lines[lines.len() - limit..].concat(), true)
}

/// `GET /sandboxes/{id}/diagnostics/{logs|events}[?scope=]`: the sandbox's engine logs
/// (scopes `container`, `all`) or events (`runtime`, `all`) as the Diagnostics API's
/// inline descriptor; without `scope`, upstream's deprecated plain text.
pub async fn diagnostics(
    AxState(st): AxState<State>,
    Path((id, kind)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> HandlerResult {
    let scope = form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.trim().to_ascii_lowercase());
    let (supported, limit): (&[&str], usize) = match kind.as_str() {
        "logs" => (&["container", "all"], LOG_LINES),
        "events" => (&["runtime", "all"], EVENT_LINES),
        // Upstream's DevOps extras, outside the Diagnostics API.
        "inspect" | "summary" => {
            return Err(ApiError::new(
                501,
                codes::API_NOT_SUPPORTED,
                format!(
                "Diagnostics '{kind}' is not supported by this backend; use 'logs' or 'events'."
            ),
            )
            .into())
        }
        _ => {
            return Err(ApiError::new(
                404,
                codes::ROUTE_NOT_FOUND,
                format!("Unknown diagnostics kind '{kind}'; use 'logs' or 'events'."),
            )
            .into())
        }
    };
    if let Some(s) = &scope {
        if !supported.contains(&s.as_str()) {
            return Err(ApiError::bad_request(
                "DIAGNOSTICS_SCOPE_UNSUPPORTED",
                format!(
                    "Unsupported {kind} diagnostics scope '{s}'. Supported scopes: {}.",
                    supported.join(", ")
                ),
            )
            .into());
        }
    }
    let text = if kind == "logs" {
        st.service.logs(&id, limit + 1).await?
    } else {
        st.service.events(&id).await?
    };
    let (content, truncated) = last_lines(&text, limit);
    let Some(scope) = scope else {
        return Ok((
            [
                (http::header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (http::header::HeaderName::from_static("deprecation"), "true"),
            ],
            content,
        )
            .into_response());
    };
    Ok(Json(serde_json::json!({
        "sandboxId": id,
        "kind": kind,
        "scope": scope,
        "delivery": "inline",
        "contentType": "text/plain; charset=utf-8",
        "contentLength": content.len(),
        "content": content,
        "truncated": truncated,
    }))
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
