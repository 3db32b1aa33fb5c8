//! [`Inbound`]: the client's request as the pipeline sees it: the head, the body until a
//! step reads it, and the client's address.

use super::body::{read_to_limit, ReadError};
use hyper::body::Incoming;
use std::net::IpAddr;

/// One client request.
#[derive(Debug)]
pub struct Inbound {
    /// Method, URI, headers and extensions (the header-case map, the upgrade handle).
    pub parts: http::request::Parts,
    /// The body, until a pipeline step reads it whole.
    pub body: Option<Incoming>,
    /// The body a step read whole, forwarded as read unless a step replaces it.
    pub read: Option<bytes::Bytes>,
    /// The client's IP.
    pub peer: Option<IpAddr>,
}

impl Inbound {
    /// The request method.
    pub fn method(&self) -> &http::Method {
        &self.parts.method
    }

    /// The request headers.
    pub fn headers(&self) -> &http::HeaderMap {
        &self.parts.headers
    }

    /// The raw query string.
    pub fn query(&self) -> Option<&str> {
        self.parts.uri.query()
    }

    /// The `Host` the client named (`localhost` when none).
    pub fn host(&self) -> &str {
        gatehouse_lifecycle::wire::request_host(
            self.parts
                .headers
                .get(http::header::HOST)
                .map(http::HeaderValue::as_bytes),
        )
    }

    /// Reads the whole body (at most `limit` bytes); it is kept and forwarded unless a
    /// step replaces it. Reading twice returns the same bytes.
    pub async fn read_body(&mut self, limit: usize) -> Result<bytes::Bytes, ReadError> {
        if let Some(b) = &self.read {
            return Ok(b.clone());
        }
        let announced = crate::pipeline::content_length(&self.parts.headers);
        if announced.is_some_and(|n| n > limit) {
            return Err(ReadError::TooLarge(limit));
        }
        match self.body.as_mut() {
            Some(b) => {
                let out = read_to_limit(b, limit, announced).await;
                self.body = None;
                if let Ok(bytes) = &out {
                    self.read = Some(bytes.clone());
                }
                out
            }
            None => Ok(bytes::Bytes::new()),
        }
    }
}
