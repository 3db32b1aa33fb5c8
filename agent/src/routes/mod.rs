//! HTTP routes of the execd API (port 44772) and the egress stub (port 18080).

pub mod code;
pub mod commands;
pub mod directories;
pub mod egress;
pub mod files;
pub mod metrics;
pub mod ping;
pub mod proxy;
pub mod sessions;
pub mod upload;

use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use axum::http::Uri;
use axum::routing::{any, get, post};
use axum::Router;
use serde::de::DeserializeOwned;

use crate::auth::{require_token, AuthPolicy, TOKEN_HEADER};
use crate::error::{code as ecode, ApiError};
use crate::state::Shared;

/// A JSON body parsed with the configured size limit and errors in the API's shape.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Shared> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Shared) -> Result<Self, Self::Rejection> {
        let limit = state.max_json_bytes;
        let bytes = read_body(req, limit).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// Read a whole body, failing with 413 beyond `limit` bytes.
pub async fn read_body(req: Request, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                ApiError::PayloadTooLarge {
                    limit: limit as u64,
                }
            } else {
                ApiError::bad_request(format!("cannot read request body: {e}"))
            }
        })
}

/// All values of query parameter `key` (repeated `?path=a&path=b` form).
pub fn query_all(uri: &Uri, key: &str) -> Vec<String> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// First value of query parameter `key`, if present and not empty.
pub fn query_one(uri: &Uri, key: &str) -> Option<String> {
    query_all(uri, key).into_iter().find(|v| !v.is_empty())
}

/// Required query parameter.
pub fn query_required(uri: &Uri, key: &str) -> Result<String, ApiError> {
    query_one(uri, key).ok_or_else(|| ApiError::missing_query(key))
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(
        ecode::NOT_FOUND,
        format!("no route {} {}", req.method(), req.uri().path()),
    )
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "method {} not allowed on {}",
        req.method(),
        req.uri().path()
    ))
}

/// The execd API without the `/proxy` routes (also the target of `/proxy/<own port>`).
pub fn api_router(state: Shared) -> Router {
    Router::new()
        .route("/ping", get(ping::ping))
        .route("/command", post(commands::run).delete(commands::interrupt))
        .route("/command/status/{id}", get(commands::status))
        .route("/command/{id}/logs", get(commands::logs))
        .route("/session", post(sessions::create))
        .route("/session/{id}/run", post(sessions::run))
        .route("/session/{id}", axum::routing::delete(sessions::delete))
        .route("/files", axum::routing::delete(files::remove))
        .route("/files/info", get(files::info))
        .route("/files/mv", post(files::rename))
        .route("/files/permissions", post(files::chmod))
        .route("/files/search", get(files::search))
        .route("/files/replace", post(files::replace))
        .route(
            "/files/upload",
            post(upload::upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/files/download", get(files::download))
        .route("/directories/list", get(directories::list))
        .route(
            "/directories",
            post(directories::create).delete(directories::remove),
        )
        .route("/metrics", get(metrics::get_metrics))
        .route("/metrics/watch", get(metrics::watch))
        .route("/code", any(code::not_supported))
        .route("/code/{*rest}", any(code::not_supported))
        .route("/pty", any(code::not_supported))
        .route("/pty/{*rest}", any(code::not_supported))
        .route("/v1/{*rest}", any(code::not_supported))
        .route("/command/{id}/resume", any(code::not_supported))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// The complete execd listener: API + `/proxy/{port}/...`, behind the token check.
pub fn execd_router(
    state: Shared,
    token: Option<crate::auth::Secret>,
    egress: Option<Router>,
) -> Router {
    let api = api_router(state.clone());
    let ctx = Arc::new(proxy::ProxyContext {
        api: api.clone(),
        egress,
        execd_port: state.execd_port,
        egress_port: state.egress_port,
    });
    let (c1, c2) = (ctx.clone(), ctx.clone());
    let policy = Arc::new(AuthPolicy {
        token,
        headers: &[TOKEN_HEADER],
        plain_text: false,
    });
    Router::new()
        .route(
            "/proxy/{port}",
            any(move |req: Request| proxy::handle(c1.clone(), req)),
        )
        .route(
            "/proxy/{port}/",
            any(move |req: Request| proxy::handle(c2.clone(), req)),
        )
        .route(
            "/proxy/{port}/{*rest}",
            any(move |req: Request| proxy::handle(ctx.clone(), req)),
        )
        .fallback_service(api)
        .layer(axum::middleware::from_fn_with_state(policy, require_token))
}
