//! CORS for API clients in other origins (browser-based tools calling the API with an API
//! key or a bearer token). Off unless `server.cors_allowed_origins` lists origins, and
//! never with credentials: no `Access-Control-Allow-Credentials`, so a browser will not
//! expose a cookie-authenticated answer to another origin.

use crate::reply::Reply;
use http::header::{self, HeaderMap, HeaderValue};

/// Methods the API uses.
const METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";
/// Request headers a cross-origin API client may send.
const HEADERS: &str = "content-type, open-sandbox-api-key, authorization, x-request-id";

/// The configured origins (exact `scheme://host[:port]`).
#[derive(Debug, Clone, Default)]
pub struct Cors {
    allowed: Vec<HeaderValue>,
}

impl Cors {
    /// CORS for these origins; none disables it.
    pub fn new(origins: &[String]) -> Self {
        Self {
            allowed: origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
                .collect(),
        }
    }

    /// The request's `Origin` when it is allowed.
    pub fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        if self.allowed.is_empty() {
            return None;
        }
        let origin = headers.get(header::ORIGIN)?;
        self.allowed
            .iter()
            .any(|a| a == origin)
            .then(|| origin.clone())
    }

    /// Whether the request is a CORS preflight.
    pub fn is_preflight(method: &http::Method, headers: &HeaderMap) -> bool {
        method == http::Method::OPTIONS
            && headers.contains_key(header::ORIGIN)
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// The answer to a preflight: the allowed methods and headers for an allowed origin,
    /// else a refusal naming the setting.
    pub fn preflight(&self, headers: &HeaderMap) -> Reply {
        match self.allowed_origin(headers) {
            Some(origin) => {
                let origin = origin.to_str().unwrap_or_default().to_owned();
                Reply {
                    status: 204,
                    headers: vec![
                        ("access-control-allow-origin", origin),
                        ("access-control-allow-methods", METHODS.into()),
                        ("access-control-allow-headers", HEADERS.into()),
                        ("access-control-max-age", "600".into()),
                        ("vary", "origin".into()),
                    ],
                    body: bytes::Bytes::new(),
                }
            }
            None => crate::error::GatewayError::new(
                403,
                "GATEWAY::CORS_ORIGIN_NOT_ALLOWED",
                "This origin may not call the API from a browser; an operator can add it to \
                 server.cors_allowed_origins.",
            )
            .reply(),
        }
    }

    /// Marks a response to an allowed origin's request.
    pub fn decorate(origin: HeaderValue, h: &mut HeaderMap) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.append(header::VARY, HeaderValue::from_static("origin"));
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("x-request-id"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(origin: &str, preflight: bool) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        if preflight {
            h.insert(
                header::ACCESS_CONTROL_REQUEST_METHOD,
                HeaderValue::from_static("POST"),
            );
        }
        h
    }

    #[test]
    fn only_listed_origins_and_never_credentials() {
        let cors = Cors::new(&["https://tools.example/".into()]);
        let ok = cors.preflight(&req("https://tools.example", true));
        assert_eq!(ok.status, 204);
        assert!(ok
            .headers
            .iter()
            .all(|(n, _)| *n != "access-control-allow-credentials"));
        let no = cors.preflight(&req("https://evil.example", true));
        assert_eq!(no.status, 403);
        assert!(Cors::default()
            .allowed_origin(&req("https://tools.example", false))
            .is_none());
        assert!(Cors::is_preflight(
            &http::Method::OPTIONS,
            &req("https://x", true)
        ));
        assert!(!Cors::is_preflight(
            &http::Method::OPTIONS,
            &req("https://x", false)
        ));
    }
}
