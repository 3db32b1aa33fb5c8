//! [`Reply`]: a response the gateway answers itself (its own routes and every refusal),
//! built as a value and turned into the HTTP response by [`Reply::into_response`], the
//! one place such responses are made.

use crate::ctx::RequestCtx;
use crate::http::body::Body;
use bytes::Bytes;
use gatehouse_lifecycle::wire::REQUEST_ID_HEADER;

/// A complete response: status, headers and body. `X-Request-ID` is added when it is
/// sent; hyper writes `Content-Length` from the body.
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

impl Reply {
    /// The HTTP response, with `Content-Length` and the request id; records the status.
    pub fn into_response(self, ctx: &mut RequestCtx) -> http::Response<Body> {
        ctx.status = Some(self.status);
        let body = ctx.stream.take().unwrap_or_else(|| Body::full(self.body));
        let mut resp = http::Response::new(body);
        *resp.status_mut() = http::StatusCode::from_u16(self.status)
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let h = resp.headers_mut();
        for (name, value) in self.headers {
            if let Ok(v) = http::HeaderValue::try_from(value) {
                h.append(name, v);
            }
        }
        let id = ctx.request_id_value.clone();
        if let Some(v) = id.or_else(|| http::HeaderValue::from_str(&ctx.request_id).ok()) {
            h.insert(REQUEST_ID_HEADER, v);
        }
        resp
    }
}
