//! The server proxy: `/sandboxes/{id}/proxy/{port}/{path}` streams HTTP, and WebSocket
//! upgrades, to the sandbox port. Bodies are never buffered.

use super::handlers::parse_port;
use super::middleware::API_KEY_HEADER;
use super::State;
use crate::error::{error_response, BackendError};
use axum::body::Body;
use axum::extract::{Path, Request, State as AxState};
use axum::http::{header, HeaderMap, HeaderName, Uri};
use axum::response::{IntoResponse, Response};
use gatehouse_lifecycle::{codes, wire, ApiError};
use hyper_util::rt::TokioIo;

/// Hop-by-hop headers (RFC 9110 §7.6.1) never forwarded as received.
const HOP_BY_HOP: &[HeaderName] = &[
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
    let listed: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in HOP_BY_HOP.iter().chain(listed.iter()) {
        h.remove(n);
    }
    h.remove("keep-alive");
}

/// `ANY /sandboxes/{id}/proxy/{port}`.
pub async fn proxy_root(
    st: AxState<State>,
    Path((id, port)): Path<(String, String)>,
    req: Request,
) -> Response {
    forward(st, id, port, String::new(), req).await
}

/// `ANY /sandboxes/{id}/proxy/{port}/{*path}`.
pub async fn proxy_path(
    st: AxState<State>,
    Path((id, port, path)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    forward(st, id, port, path, req).await
}

async fn forward(
    AxState(st): AxState<State>,
    id: String,
    port: String,
    path: String,
    mut req: Request,
) -> Response {
    let port = match parse_port(&port) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let resolved = match st.service.endpoint(&id, port).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if resolved.paused {
        return BackendError::from(ApiError::new(
            409,
            codes::INVALID_STATE,
            format!(
                "Sandbox '{id}' is paused, so nothing answers on port {port}. Resume it first."
            ),
        ))
        .into_response();
    }
    let addr = resolved.addr;
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let prefix = &resolved.prefix;
    let target: Uri = match format!("http://{addr}{prefix}/{path}{query}").parse() {
        Ok(u) => u,
        Err(_) => {
            return error_response(&ApiError::invalid("The proxied path is not a valid URI."))
        }
    };

    let upgrade = req.headers().get(header::UPGRADE).cloned();
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));

    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(API_KEY_HEADER);
    // The agent's token is added here, never handed to the user; a client's own value
    // is not forwarded.
    parts.headers.remove(wire::EXECD_TOKEN_HEADER);
    if let Some(t) = &resolved.token {
        match http::HeaderValue::from_str(t.expose()) {
            Ok(v) => {
                parts.headers.insert(wire::EXECD_TOKEN_HEADER, v);
            }
            Err(_) => {
                tracing::error!(sandbox.id = %id, "the agent token is not a valid header value")
            }
        }
    }
    if let Some(u) = &upgrade {
        parts.headers.insert(
            header::CONNECTION,
            http::HeaderValue::from_static("upgrade"),
        );
        parts.headers.insert(header::UPGRADE, u.clone());
    }
    if let Ok(host) = http::HeaderValue::from_str(&addr.to_string()) {
        parts.headers.insert(header::HOST, host);
    }
    // The sandbox's own spans (if it traces) join the request's trace.
    gatehouse_telemetry::inject(&tracing::Span::current(), &mut parts.headers);
    parts.uri = target;
    parts.version = http::Version::HTTP_11;
    let outbound = Request::from_parts(parts, body);

    let mut resp = match st.proxy_client.request(outbound).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(sandbox.id = %id, port, error = %e, "sandbox port did not answer");
            return BackendError::from(ApiError::new(
                502,
                codes::PROXY_UPSTREAM_ERROR,
                format!("The sandbox did not answer on port {port}."),
            ))
            .into_response();
        }
    };

    if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                match tokio::try_join!(client_upgrade, upstream_upgrade) {
                    Ok((client, upstream)) => {
                        let mut client = TokioIo::new(client);
                        let mut upstream = TokioIo::new(upstream);
                        if let Err(e) =
                            tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                        {
                            tracing::debug!(error = %e, "upgraded connection closed");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "upgrade failed"),
                }
            });
        }
        let (parts, _) = resp.into_parts();
        return Response::from_parts(parts, Body::empty());
    }

    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, Body::new(body))
}
