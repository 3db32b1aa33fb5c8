//! What the gateway forwards: the client's request with identity headers, the gateway's
//! own credentials and cookies and hop-by-hop headers removed, the upstream key for users
//! the gateway authenticated, the canonical path with the scoped query, and the
//! rewritten body when scoping changed it. Header names keep the client's spelling (the
//! header-case map travels in the extensions).

use crate::cookies::strip_own_cookies;
use crate::ctx::{RequestCtx, ResponseRewrite};
use crate::error::GatewayError;
use crate::http::body::Body;
use crate::http::inbound::Inbound;
use crate::state::Gateway;
use gatehouse_lifecycle::wire::{API_KEY_HEADER, REQUEST_ID_HEADER};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one connection, never forwarded as such (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
];

impl Gateway {
    /// The request to send to the backend.
    pub(crate) fn upstream_request(
        &self,
        req: Inbound,
        ctx: &mut RequestCtx,
    ) -> Result<http::Request<Body>, GatewayError> {
        let Inbound {
            mut parts,
            body,
            read,
            ..
        } = req;
        let upgrade = strip_hop_by_hop(&mut parts.headers);
        let h = &mut parts.headers;
        for name in &self.identity_headers {
            h.remove(name);
        }
        // The gateway's credentials never reach a backend or a sandbox.
        h.remove(header::AUTHORIZATION);
        // Only the gateway asserts who is calling a sandbox.
        h.remove(super::caller::CALLER_HEADER);
        if let Some(v) = self.caller_assertion(ctx) {
            h.insert(super::caller::CALLER_HEADER, v);
        }
        self.strip_cookies(h);
        if !ctx.principal.passthrough() {
            h.remove(API_KEY_HEADER);
            // The backend key stands for callers the gateway authenticated; an anonymous
            // call to a public route (`/health`, `/version`) goes without it.
            if let Some(k) = self.upstream_key.as_ref().filter(|_| !anonymous(ctx)) {
                h.insert(API_KEY_HEADER, k.clone());
            }
        }
        if let Some(v) = ctx.request_id_value.clone() {
            h.insert(REQUEST_ID_HEADER, v);
        }
        if ctx.rewrite != ResponseRewrite::None {
            h.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            );
        }
        let body = match ctx.body.take().or(read) {
            Some(b) => {
                h.insert(header::CONTENT_LENGTH, HeaderValue::from(b.len()));
                Body::full(b)
            }
            None => body.map_or(Body::Empty, Body::Stream),
        };
        if let Some(proto) = upgrade {
            h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            h.insert(header::UPGRADE, proto);
        }
        // The client's origin-form URI is forwarded as it is when the canonical path and
        // the query are unchanged (the usual case): no string is built per request.
        let unchanged =
            ctx.query.is_none() && parts.uri.scheme().is_none() && parts.uri.path() == ctx.path;
        if !unchanged {
            let query = ctx.query.as_deref().or(parts.uri.query());
            let pq = match query {
                Some(q) if !q.is_empty() => format!("{}?{q}", ctx.path),
                _ => ctx.path.clone(),
            };
            parts.uri = pq.parse::<http::Uri>().map_err(|e| {
                tracing::error!(error = %e, "rewritten URI invalid");
                GatewayError::internal()
            })?;
        }
        parts.version = http::Version::HTTP_11;
        Ok(http::Request::from_parts(parts, body))
    }

    /// Removes the gateway's own cookies, keeping the rest for the sandbox. A `Cookie`
    /// header that is not visible ASCII is dropped whole: it cannot be filtered safely.
    fn strip_cookies(&self, h: &mut HeaderMap) {
        if !h.contains_key(header::COOKIE) {
            return;
        }
        let joined: Option<Vec<&str>> = h
            .get_all(header::COOKIE)
            .iter()
            .map(|v| v.to_str().ok())
            .collect();
        let kept = joined.and_then(|parts| {
            let own: Vec<&str> = self.own_cookies.iter().map(String::as_str).collect();
            strip_own_cookies(&parts.join("; "), &own)
        });
        h.remove(header::COOKIE);
        if let Some(v) = kept.and_then(|k| HeaderValue::from_str(&k).ok()) {
            h.insert(header::COOKIE, v);
        }
    }
}

impl Gateway {
    /// The verified-caller header for a request to a sandbox through the proxy route.
    fn caller_assertion(&self, ctx: &RequestCtx) -> Option<HeaderValue> {
        let permit = ctx.permit.as_ref()?;
        if permit.action() != gatehouse_authz::Action::SandboxProxy || anonymous(ctx) {
            return None;
        }
        let sandbox = permit.sandbox_id()?;
        self.caller.header_for(
            &ctx.principal,
            ctx.role.as_deref().unwrap_or_default(),
            sandbox,
        )
    }
}

fn anonymous(ctx: &RequestCtx) -> bool {
    ctx.principal.kind == gatehouse_authn::PrincipalKind::Anonymous
}

/// Removes hop-by-hop headers and those the `Connection` header names. Returns the
/// `Upgrade` protocol when the client asks to switch protocols (WebSocket), so it can be
/// requested from the backend in turn.
fn strip_hop_by_hop(h: &mut HeaderMap) -> Option<HeaderValue> {
    let mut upgrade = None;
    if let Some(conn) = h.get(header::CONNECTION).and_then(|v| v.to_str().ok()) {
        let named: Vec<String> = conn
            .split(',')
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        if named.iter().any(|t| t == "upgrade") {
            upgrade = h.get(header::UPGRADE).cloned();
        }
        for name in named {
            if let Ok(n) = HeaderName::from_bytes(name.as_bytes()) {
                h.remove(n);
            }
        }
    }
    for name in &HOP_BY_HOP {
        h.remove(name);
    }
    h.remove("proxy-connection");
    upgrade
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_dropped_and_upgrades_kept() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret, Upgrade"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert("x-kept", HeaderValue::from_static("1"));
        let up = strip_hop_by_hop(&mut h);
        assert_eq!(up, Some(HeaderValue::from_static("websocket")));
        assert!(!h.contains_key("x-secret") && !h.contains_key(header::TRANSFER_ENCODING));
        assert!(!h.contains_key(header::UPGRADE) && h.contains_key("x-kept"));
    }
}
