//! [`Reply`]: a response the gateway answers itself (its own routes and every refusal),
//! built as a value and written by [`send`], the one function that writes such responses.

use crate::ctx::RequestCtx;
use bytes::Bytes;
use gatehouse_lifecycle::wire::REQUEST_ID_HEADER;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

/// A complete response: status, headers and body. `Content-Length` and `X-Request-ID`
/// are added when it is sent.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers, in order; repeated names (`Set-Cookie`) are appended.
    pub headers: Vec<(&'static str, String)>,
    /// Body (not sent for `HEAD`).
    pub body: Bytes,
}

impl Reply {
    /// A JSON body, never cached.
    pub fn json(status: u16, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type", "application/json".into()),
                ("cache-control", "no-store".into()),
            ],
            body: body.into(),
        }
    }

    /// A JSON value, never cached.
    pub fn json_value(status: u16, value: &serde_json::Value) -> Self {
        Self::json(status, value.to_string())
    }

    /// `302 Found` to `location`, never cached.
    pub fn redirect(location: &str) -> Self {
        Self {
            status: 302,
            headers: vec![
                ("location", location.into()),
                ("cache-control", "no-store".into()),
            ],
            body: Bytes::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Adds a `Set-Cookie`.
    pub fn cookie(self, set_cookie: impl Into<String>) -> Self {
        self.header("set-cookie", set_cookie)
    }
}

/// Writes `reply` to the client with the request id, and records its status in `ctx`.
pub async fn send(
    session: &mut Session,
    ctx: &mut RequestCtx,
    reply: Reply,
) -> pingora::Result<()> {
    let head_only = session.req_header().method == http::Method::HEAD;
    let mut h = ResponseHeader::build(reply.status, Some(reply.headers.len() + 2))?;
    for (name, value) in reply.headers {
        h.append_header(name, value)?;
    }
    h.insert_header("content-length", reply.body.len().to_string())?;
    if !ctx.request_id.is_empty() {
        h.insert_header(REQUEST_ID_HEADER, &ctx.request_id)?;
    }
    ctx.status = Some(reply.status);
    let empty = head_only || reply.body.is_empty();
    session.write_response_header(Box::new(h), empty).await?;
    if !empty {
        session.write_response_body(Some(reply.body), true).await?;
    }
    Ok(())
}
