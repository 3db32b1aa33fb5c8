//! Request-scoped middleware: request ids and access logging, then the API-key check.

use super::State;
use crate::error::error_response;
use axum::extract::{Request, State as AxState};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use gatehouse_lifecycle::{codes, ApiError};
use subtle::ConstantTimeEq;
use tracing::Instrument;

pub use gatehouse_lifecycle::wire::{API_KEY_HEADER, REQUEST_ID_HEADER};

/// Paths served without an API key: exactly these, nothing under them.
const EXEMPT: &[&str] = &["/health", "/version", "/livez", "/readyz"];

/// Propagates `X-Request-ID` (or makes one), logs one line per request.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = gatehouse_lifecycle::wire::request_id(
        req.headers()
            .get(REQUEST_ID_HEADER)
            .map(HeaderValue::as_bytes),
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        req.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    let span = tracing::info_span!(
        "request",
        request.id = %id,
        http.method = %req.method(),
        http.path = %req.uri().path(),
    );
    gatehouse_telemetry::set_parent(&span, req.headers());
    let started = std::time::Instant::now();
    let scoped_id = id.clone();
    async move {
        // Events the call publishes carry its request id (crate::events::REQUEST_ID).
        let mut resp = crate::events::REQUEST_ID
            .scope(scoped_id, next.run(req))
            .await;
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert(REQUEST_ID_HEADER, v);
        }
        tracing::info!(
            http.status = resp.status().as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request served"
        );
        resp
    }
    .instrument(span)
    .await
}

/// Rejects requests without the configured API key (constant-time comparison).
pub async fn authenticate(AxState(state): AxState<State>, req: Request, next: Next) -> Response {
    let current = state.api_key.load();
    let Some(expected) = current.as_deref() else {
        return next.run(req).await;
    };
    if EXEMPT.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    match req.headers().get(API_KEY_HEADER) {
        None => error_response(&ApiError::new(
            401,
            codes::MISSING_API_KEY,
            "Authentication credentials are missing. Provide API key via OPEN-SANDBOX-API-KEY header.",
        )),
        Some(got) if bool::from(got.as_bytes().ct_eq(expected.as_bytes())) => next.run(req).await,
        Some(_) => error_response(&ApiError::new(
            401,
            codes::INVALID_API_KEY,
            "Authentication credentials are invalid. Check your API key and try again.",
        )),
    }
}
