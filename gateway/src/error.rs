//! [`GatewayError`]: a refusal or failure the gateway answers itself, in the API's
//! `{"code","message"}` shape. It wraps the lifecycle crate's [`ApiError`], so the
//! not-found body for a missing and an out-of-scope sandbox is byte for byte the
//! backend's. 5xx messages are generic; details go to the log.

use crate::reply::Reply;
use gatehouse_lifecycle::ApiError;

/// An error answered by the gateway: the API's error and extra response headers
/// (`Retry-After`, `RateLimit-*`), empty for most errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GatewayError(pub ApiError, pub Vec<(&'static str, String)>);

impl From<ApiError> for GatewayError {
    fn from(e: ApiError) -> Self {
        Self(e, Vec::new())
    }
}

impl GatewayError {
    /// Any error.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self(ApiError::new(status, code, message), Vec::new())
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.1.push((name, value));
        self
    }

    /// Adds `Retry-After: secs` (503 and 429 answers: when to come back).
    pub fn with_retry_after(self, secs: u64) -> Self {
        self.with_header("retry-after", secs.to_string())
    }

    /// HTTP status.
    pub fn status(&self) -> u16 {
        self.0.status
    }

    /// Machine-readable code.
    pub fn code(&self) -> &str {
        &self.0.code
    }

    /// 400 for a path the gateway refuses to interpret.
    pub fn bad_path(message: impl Into<String>) -> Self {
        Self::new(400, "GATEWAY::INVALID_PATH", message)
    }

    /// 401 without credentials, with upstream's code (`MISSING_API_KEY`), so API clients
    /// that match on it behave as they do against the backend.
    pub fn unauthenticated() -> Self {
        Self::new(
            401,
            gatehouse_lifecycle::codes::MISSING_API_KEY,
            "Authentication credentials are missing. Provide API key via OPEN-SANDBOX-API-KEY \
             header, or sign in.",
        )
    }

    /// 404 for a sandbox that does not exist or is outside the caller's scope (the two are
    /// indistinguishable on purpose: this is the backend's own not-found answer).
    pub fn sandbox_not_found(id: &str) -> Self {
        Self::from(ApiError::sandbox_not_found(id))
    }

    /// 502 when the backend cannot be reached.
    pub fn upstream_unavailable() -> Self {
        Self::new(
            502,
            "GATEWAY::UPSTREAM_UNAVAILABLE",
            "The lifecycle backend is unreachable; retry later.",
        )
    }

    /// 504 when a sandbox behind the server-proxy route does not answer within the
    /// route's read timeout (a paused or stuck sandbox accepts and never answers).
    pub fn sandbox_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            504,
            "GATEWAY::SANDBOX_TIMEOUT",
            format!(
                "The sandbox did not answer within {} s. If it is paused, resume it; \
                 otherwise check that its server listens on that port.",
                limit.as_secs_f64()
            ),
        )
    }

    /// 500 with a generic message.
    pub fn internal() -> Self {
        Self::new(
            500,
            "GATEWAY::INTERNAL_ERROR",
            "Internal gateway error; see the gateway logs.",
        )
    }

    /// The response: the error's status and `{"code","message"}` body, never cached,
    /// with the error's extra headers.
    pub fn reply(&self) -> Reply {
        let mut r = Reply::json(self.0.status, self.0.body_bytes());
        r.headers.extend(self.1.iter().cloned());
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_is_the_backends_body() {
        let ours = GatewayError::sandbox_not_found("sbx-1").reply().body;
        let backend = ApiError::sandbox_not_found("sbx-1").body_bytes();
        assert_eq!(&ours[..], &backend[..]);
        assert_eq!(
            std::str::from_utf8(&ours).unwrap(),
            r#"{"code":"SANDBOX::NOT_FOUND","message":"Sandbox 'sbx-1' not found."}"#
        );
    }
}
