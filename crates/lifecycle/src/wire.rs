//! The wire contract shared by every process that speaks the lifecycle API: header names,
//! request-id rules, the reserved label keys, and how server-proxy endpoints are spelled.
//! The gateway, the backend and every runtime driver take these from here, so the
//! contract has one home.

/// Header carrying the API key (client → gateway → backend), as upstream names it.
/// Header names are case-insensitive; this is the lower-case form `http` expects.
pub const API_KEY_HEADER: &str = "open-sandbox-api-key";

/// Header carrying the request id, propagated end to end and echoed in every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Port of the in-sandbox agent's execd API (upstream's).
pub const EXECD_PORT: u16 = 44772;

/// Port of the egress API (upstream's sidecar; our agent serves its read routes).
pub const EGRESS_PORT: u16 = 18080;

/// Header carrying the per-sandbox agent token, on both ports (as upstream's execd).
pub const EXECD_TOKEN_HEADER: &str = "X-EXECD-ACCESS-TOKEN";

/// Longest request id accepted from a client; longer ones are replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Whether a client-sent request id may be propagated: 1 to 128 visible ASCII characters
/// (no spaces or control characters, so it is safe in logs and headers).
pub fn valid_request_id(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN && v.bytes().all(|b| b.is_ascii_graphic())
}

/// The request id to use: the client's when [`valid_request_id`], else a new UUID v4.
pub fn request_id(sent: Option<&[u8]>) -> String {
    sent.and_then(|v| std::str::from_utf8(v).ok())
        .filter(|v| valid_request_id(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// The host a request named in its `Host` header (`localhost` when it sent none).
pub fn request_host(host: Option<&[u8]>) -> &str {
    host.and_then(|h| std::str::from_utf8(h).ok())
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost")
}

/// The server-proxy endpoint of `port` of sandbox `id`, as the API returns it (no scheme):
/// `{base}/sandboxes/{id}/proxy/{port}`. `base` is a host, optionally with a path prefix
/// such as `/v1`; a leading `http://` or `https://` and trailing slashes are dropped.
pub fn server_proxy_endpoint(base: &str, id: &str, port: impl std::fmt::Display) -> String {
    let base = base
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    format!("{base}/sandboxes/{id}/proxy/{port}")
}

/// Labels (Docker) and labels/annotations (Kubernetes) every runtime driver writes on the
/// engine object of a sandbox. User metadata may not use the `opensandbox.io/` prefix.
pub mod labels {
    /// The prefix reserved for the platform's own labels.
    pub const RESERVED_PREFIX: &str = "opensandbox.io/";
    /// Sandbox id.
    pub const ID: &str = "opensandbox.io/id";
    /// Which server manages the object.
    pub const MANAGED_BY: &str = "opensandbox.io/managed-by";
    /// Value of [`MANAGED_BY`] on objects the Gatehouse backend creates.
    pub const MANAGED_BY_VALUE: &str = "gatehouse-backend";
    /// Which backend instance owns the object.
    pub const INSTANCE: &str = "opensandbox.io/instance";
    /// Creation time, RFC 3339.
    pub const CREATED_AT: &str = "opensandbox.io/created-at";
    /// Expiry, RFC 3339, when the sandbox has one.
    pub const EXPIRES_AT: &str = "opensandbox.io/expires-at";
    /// `"true"` when the sandbox has no expiry.
    pub const MANUAL_CLEANUP: &str = "opensandbox.io/manual-cleanup";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_propagated_only_when_safe() {
        assert_eq!(request_id(Some(b"abc-123")), "abc-123");
        for bad in [&b""[..], b"has space", b"\xff\xfe", &[b'a'; 129]] {
            let id = request_id(Some(bad));
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{bad:?} -> {id}");
        }
        assert!(uuid::Uuid::parse_str(&request_id(None)).is_ok());
    }

    #[test]
    fn server_proxy_endpoints_drop_the_scheme() {
        assert_eq!(
            server_proxy_endpoint("https://gw.example/v1/", "sbx", 8080),
            "gw.example/v1/sandboxes/sbx/proxy/8080"
        );
        assert_eq!(
            server_proxy_endpoint("localhost:8080", "a", "80"),
            "localhost:8080/sandboxes/a/proxy/80"
        );
        assert_eq!(request_host(None), "localhost");
        assert_eq!(request_host(Some(b"h:1")), "h:1");
    }
}
