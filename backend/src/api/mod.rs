//! The HTTP surface: routes mounted at `/` and `/v1` like upstream, the API-key check,
//! request ids, and the error shape for everything the router itself rejects.

pub mod api_key;
mod body;
mod events_feed;
mod handlers;
mod identity;
mod middleware;
mod server_proxy;

use crate::error::{error_response, route_not_found};
use crate::service::Service;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, patch, post, put};
use axum::Router;
use gatehouse_lifecycle::{codes, ApiError};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use std::sync::Arc;

/// HTTP client used by the server proxy.
pub type ProxyClient = Client<HttpConnector, axum::body::Body>;

/// What every handler can reach.
pub struct AppState {
    /// The lifecycle service.
    pub service: Arc<Service>,
    /// The key clients must send; `None` only in explicit insecure mode. `SIGHUP`
    /// replaces it when the configuration's key changed.
    pub api_key: api_key::ApiKey,
    /// Public base for server-proxy URLs (`server.eip`).
    pub eip: Option<String>,
    /// Host to put in direct endpoint URLs (`server.endpoint_host` / `docker.host_ip`).
    pub endpoint_host: Option<String>,
    /// Largest accepted request body for API calls.
    pub max_body_bytes: usize,
    /// Client for the server proxy.
    pub proxy_client: ProxyClient,
}

/// Shared handle to [`AppState`].
pub type State = Arc<AppState>;

fn lifecycle_routes() -> Router<State> {
    Router::new()
        .route("/sandboxes", post(handlers::create).get(handlers::list))
        .route(
            "/sandboxes/{id}",
            get(handlers::get).delete(handlers::delete),
        )
        .route("/sandboxes/{id}/metadata", patch(handlers::patch_metadata))
        .route("/sandboxes/{id}/pause", post(handlers::pause))
        .route("/sandboxes/{id}/resume", post(handlers::resume))
        .route("/sandboxes/{id}/renew-expiration", post(handlers::renew))
        .route("/sandboxes/{id}/endpoints/{port}", get(handlers::endpoint))
        .route("/sandboxes/{id}/snapshots", post(handlers::not_supported))
        .route("/snapshots", get(handlers::list_snapshots))
        .route("/metrics/events", post(handlers::metrics_event))
        .route("/pools", any(handlers::pools_not_supported))
        .route("/pools/{name}", any(handlers::pools_not_supported))
        .route(
            "/snapshots/{snapshot_id}",
            get(handlers::not_supported).delete(handlers::not_supported),
        )
        .route(
            "/sandboxes/{id}/diagnostics/{kind}",
            get(handlers::diagnostics),
        )
        .route(
            "/sandboxes/{id}/proxy/{port}",
            any(server_proxy::proxy_root),
        )
        .route(
            "/sandboxes/{id}/proxy/{port}/{*path}",
            any(server_proxy::proxy_path),
        )
}

async fn not_found(req: Request) -> Response {
    let path = req.uri().path();
    // Like upstream (Starlette's redirect_slashes): a trailing slash is redirected to the
    // path without it, keeping the method and body (307).
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let location = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_string(),
        };
        if let Ok(v) = http::HeaderValue::from_str(&location) {
            let mut r = axum::http::StatusCode::TEMPORARY_REDIRECT.into_response();
            r.headers_mut().insert(http::header::LOCATION, v);
            return r;
        }
    }
    error_response(&route_not_found(path))
}

async fn method_not_allowed(req: Request) -> Response {
    error_response(&ApiError::new(
        405,
        codes::METHOD_NOT_ALLOWED,
        format!(
            "Method {} is not allowed on '{}'.",
            req.method(),
            req.uri().path()
        ),
    ))
}

/// `GET /livez`: 200 while the process serves (no dependency is consulted).
pub async fn livez() -> Response {
    axum::Json(serde_json::json!({ "status": "alive" })).into_response()
}

/// `GET /readyz`: 200 when the store answers and the engine answers a ping, else 503;
/// the body names each check.
pub async fn readyz(axum::extract::State(st): axum::extract::State<State>) -> Response {
    let store = st.service.store().get("readyz-probe").await.is_ok();
    let engine = st.service.engine_ok().await;
    let ready = store && engine;
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {
            "store": if store { "ok" } else { "unavailable" },
            "engine": if engine { "ok" } else { "unreachable" },
        },
    });
    let status = if ready {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// The whole application: lifecycle routes at `/` and `/v1`, `/health`, auth and ids.
pub fn router(state: State) -> Router {
    let api = lifecycle_routes();
    Router::new()
        .route("/health", get(handlers::health))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/version", get(handlers::version))
        .route(
            gatehouse_lifecycle::events::FEED_PATH,
            get(events_feed::feed),
        )
        // Gatehouse extension: the gateway's sandbox token push (not under /v1).
        .route(
            "/gatehouse/ext/v1/sandboxes/{id}/identity",
            put(identity::put),
        )
        .merge(api.clone())
        .nest("/v1", api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::authenticate,
        ))
        .layer(axum::middleware::from_fn(middleware::request_id))
        .with_state(state)
}

#[cfg(test)]
mod tests;
