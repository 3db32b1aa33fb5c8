//! `/proxy/{port}/{path...}`: reach other in-sandbox ports through execd, as upstream
//! execd does (the upstream lifecycle server's Docker runtime resolves the endpoint of
//! every port except 8080 to `<host>:<execd port>/proxy/<port>`, including 44772 itself).
//!
//! Requests for this listener's own port, or the egress port, are dispatched internally;
//! anything else is forwarded over HTTP/1.1 to `127.0.0.1:<port>`, WebSocket upgrades
//! included. The access-token header is never forwarded to in-sandbox services.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::TokioIo;
use tower_service::Service;

use crate::auth::{EGRESS_AUTH_HEADER, TOKEN_HEADER};
use crate::error::ApiError;

/// What the proxy needs to know.
pub struct ProxyContext {
    /// The execd API (target of `/proxy/<execd_port>`).
    pub api: Router,
    /// The egress API, when served (target of `/proxy/<egress_port>`).
    pub egress: Option<Router>,
    /// This listener's port.
    pub execd_port: u16,
    /// The egress listener's port.
    pub egress_port: Option<u16>,
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Split `/proxy/<port>/<rest>` into the port and the target URI.
pub fn split_target(uri: &Uri) -> Result<(u16, Uri), ApiError> {
    let path = uri.path();
    let rest = path
        .strip_prefix("/proxy/")
        .ok_or_else(|| ApiError::bad_request("not a proxy path"))?;
    let (port, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid port '{port}' in proxy path")))?;
    let mut target = format!("/{tail}");
    if let Some(q) = uri.query() {
        target.push('?');
        target.push_str(q);
    }
    let target = target
        .parse::<Uri>()
        .map_err(|e| ApiError::bad_request(format!("invalid proxy target path: {e}")))?;
    Ok((port, target))
}

/// Handle one proxied request.
pub async fn handle(ctx: Arc<ProxyContext>, mut req: Request) -> Response {
    let (port, target) = match split_target(req.uri()) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    *req.uri_mut() = target;
    let internal = if port == ctx.execd_port {
        Some(ctx.api.clone())
    } else if Some(port) == ctx.egress_port {
        ctx.egress.clone()
    } else {
        None
    };
    if let Some(mut router) = internal {
        // A fresh request: the outer route's path parameters live in the extensions and
        // would confuse the inner router's extractors.
        let (parts, body) = req.into_parts();
        let mut inner = Request::new(body);
        *inner.method_mut() = parts.method;
        *inner.uri_mut() = parts.uri;
        *inner.version_mut() = parts.version;
        *inner.headers_mut() = parts.headers;
        if let Some(up) = parts.extensions.get::<hyper::upgrade::OnUpgrade>() {
            inner.extensions_mut().insert(up.clone());
        }
        return match router.call(inner).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
    }
    match forward(port, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn outbound_headers(src: &HeaderMap, upgrade: bool) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(src.len());
    for (k, v) in src {
        let name = k.as_str();
        if HOP_BY_HOP.contains(&name) || name == TOKEN_HEADER || name == EGRESS_AUTH_HEADER {
            continue;
        }
        h.append(k.clone(), v.clone());
    }
    if upgrade {
        if let Some(u) = src.get(header::UPGRADE) {
            h.insert(header::UPGRADE, u.clone());
            h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
    }
    h.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static("http"),
    );
    h
}

async fn forward(port: u16, mut req: Request) -> Result<Response, ApiError> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| ApiError::BadGateway(format!("cannot connect to 127.0.0.1:{port}: {e}")))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ApiError::BadGateway(format!("handshake with 127.0.0.1:{port}: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "proxied connection ended");
        }
    });
    let upgrade = req.headers().contains_key(header::UPGRADE);
    let client_upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    let mut out = http::Request::builder()
        .method(req.method().clone())
        .uri(req.uri().clone())
        .body(Body::empty())
        .map_err(|e| ApiError::internal("build proxy request", e))?;
    *out.headers_mut() = outbound_headers(req.headers(), upgrade);
    *out.body_mut() = req.into_body();
    let mut resp = sender
        .send_request(out)
        .await
        .map_err(|e| ApiError::BadGateway(format!("request to 127.0.0.1:{port} failed: {e}")))?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let server_side = hyper::upgrade::on(&mut resp);
        if let Some(client_side) = client_upgrade {
            tokio::spawn(async move {
                if let (Ok(a), Ok(b)) = (client_side.await, server_side.await) {
                    let (mut a, mut b) = (TokioIo::new(a), TokioIo::new(b));
                    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                }
            });
        }
        let (parts, _) = resp.into_parts();
        return Ok(Response::from_parts(parts, Body::empty()));
    }
    let (mut parts, body) = resp.into_parts();
    for h in HOP_BY_HOP {
        parts.headers.remove(h);
    }
    Ok(Response::from_parts(parts, Body::new(body)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_split() {
        let (p, t) = split_target(&"/proxy/8000/a/b?x=1".parse().unwrap()).unwrap();
        assert_eq!(p, 8000);
        assert_eq!(t.to_string(), "/a/b?x=1");
        let (p, t) = split_target(&"/proxy/44772".parse().unwrap()).unwrap();
        assert_eq!((p, t.path()), (44772, "/"));
        assert!(split_target(&"/proxy/abc/x".parse().unwrap()).is_err());
        assert!(split_target(&"/proxy/0/x".parse().unwrap()).is_err());
    }

    #[test]
    fn token_headers_are_not_forwarded() {
        let mut h = HeaderMap::new();
        h.insert(TOKEN_HEADER, HeaderValue::from_static("secret"));
        h.insert("x-app", HeaderValue::from_static("1"));
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        let out = outbound_headers(&h, false);
        assert!(out.get(TOKEN_HEADER).is_none());
        assert!(out.get(header::CONNECTION).is_none());
        assert_eq!(out.get("x-app").unwrap(), "1");
    }
}
