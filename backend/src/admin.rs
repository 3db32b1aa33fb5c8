//! The admin listener (`[admin] listen`, off unless configured): `GET /metrics`.
//! Bound to an address only operators reach; it has no API key.

use crate::service::Service;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

async fn metrics(State(service): State<Arc<Service>>) -> Response {
    let body = match crate::metrics::metrics() {
        Some(m) => m.render(service.store()).await,
        None => Vec::new(),
    };
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The admin application.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(crate::api::livez))
        .with_state(service)
}
