//! `upstream_peer` and `upstream_request_filter`: where and what the gateway forwards.
//! Identity headers and the gateway's own credentials and cookies never reach the
//! backend; users' requests carry the upstream key instead; the path is the canonical
//! one, with the scoped query and rewritten body when scoping changed them.

use crate::cookies::strip_own_cookies;
use crate::ctx::{RequestCtx, ResponseRewrite};
use crate::state::Gateway;
use gatehouse_lifecycle::wire::{API_KEY_HEADER, REQUEST_ID_HEADER};
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};

impl Gateway {
    /// The backend, with the configured timeouts.
    pub(crate) fn peer(&self) -> Box<HttpPeer> {
        let mut peer = HttpPeer::new(self.upstream_addr, false, String::new());
        peer.options.connection_timeout = Some(self.connect_timeout);
        peer.options.read_timeout = self.read_timeout;
        Box::new(peer)
    }

    /// Rewrites the request header sent to the backend.
    pub(crate) fn upstream_request(
        &self,
        session: &Session,
        up: &mut RequestHeader,
        ctx: &RequestCtx,
    ) -> pingora::Result<()> {
        for h in &self.identity_headers {
            up.remove_header(h);
        }
        // The gateway's credentials never reach a backend or a sandbox.
        up.remove_header("authorization");
        self.strip_cookies(up)?;
        if !ctx.principal.passthrough() {
            up.remove_header(API_KEY_HEADER);
            if let Some(k) = &self.upstream_key {
                up.insert_header(API_KEY_HEADER, k)?;
            }
        }
        up.insert_header(REQUEST_ID_HEADER, &ctx.request_id)?;
        let query = ctx.query.as_deref().or(session.req_header().uri.query());
        let pq = match query {
            Some(q) if !q.is_empty() => format!("{}?{q}", ctx.path),
            _ => ctx.path.clone(),
        };
        let uri = pq.parse::<http::Uri>().map_err(|e| {
            Error::explain(
                ErrorType::InternalError,
                format!("rewritten URI invalid: {e}"),
            )
        })?;
        up.set_uri(uri);
        if let Some(b) = &ctx.body {
            up.remove_header("transfer-encoding");
            up.insert_header("content-length", b.len().to_string())?;
        }
        if ctx.rewrite != ResponseRewrite::None {
            up.insert_header("accept-encoding", "identity")?;
        }
        Ok(())
    }

    /// Removes the gateway's own cookies, keeping the rest for the sandbox.
    fn strip_cookies(&self, up: &mut RequestHeader) -> pingora::Result<()> {
        let cookies: Vec<String> = up
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        if !cookies.is_empty() {
            up.remove_header("cookie");
            let own: Vec<&str> = self.own_cookies.iter().map(String::as_str).collect();
            if let Some(kept) = strip_own_cookies(&cookies.join("; "), &own) {
                up.insert_header("cookie", kept)?;
            }
        }
        Ok(())
    }
}
