//! Response headers from the backend and the sandboxes behind it, on their way to a
//! browser on the gateway's (the console's) origin. A sandbox is untrusted content: it
//! must not set cookies there (session fixation, login CSRF, logging the viewer out),
//! clear the origin's storage, open it to other origins (CORS), claim a service-worker
//! scope, or loosen the gateway's own security headers. Proxied pages also get a CSP
//! `sandbox` policy: they run in an opaque origin, so their scripts can neither read the
//! console's cookies nor call its API as the viewer.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers a backend or sandbox response never passes to the client: the gateway owns
/// cookies, CORS, transport security and storage on its origin.
const DROPPED: [HeaderName; 10] = [
    header::SET_COOKIE,
    header::ACCESS_CONTROL_ALLOW_ORIGIN,
    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
    header::ACCESS_CONTROL_ALLOW_HEADERS,
    header::ACCESS_CONTROL_ALLOW_METHODS,
    header::ACCESS_CONTROL_EXPOSE_HEADERS,
    header::ACCESS_CONTROL_MAX_AGE,
    header::STRICT_TRANSPORT_SECURITY,
    HeaderName::from_static("clear-site-data"),
    HeaderName::from_static("service-worker-allowed"),
];

/// The policy on proxied sandbox content: an opaque origin (no `allow-same-origin`),
/// scripts and forms still work inside it, and no other site may frame it.
pub const SANDBOX_CSP: &str =
    "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads; frame-ancestors 'self'";

/// Removes what a backend or sandbox must not decide for the gateway's origin.
pub fn drop_unsafe(h: &mut HeaderMap) {
    for name in &DROPPED {
        h.remove(name);
    }
}

/// Adds the gateway's headers for proxied sandbox content. A sandbox's own CSP stays
/// (several policies are all enforced, so it can only restrict further); the gateway's
/// values replace the sandbox's for the others.
pub fn harden_proxied(h: &mut HeaderMap) {
    h.append(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SANDBOX_CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_cannot_set_cookies_or_loosen_headers() {
        let mut h = HeaderMap::new();
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("gatehouse_session=x"),
        );
        h.append(header::SET_COOKIE, HeaderValue::from_static("a=1"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert("clear-site-data", HeaderValue::from_static("\"cookies\""));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("sniff"),
        );
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src *"),
        );
        drop_unsafe(&mut h);
        harden_proxied(&mut h);
        assert!(!h.contains_key(header::SET_COOKIE));
        assert!(!h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
        assert!(!h.contains_key("clear-site-data"));
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let csp: Vec<_> = h.get_all(header::CONTENT_SECURITY_POLICY).iter().collect();
        assert_eq!(csp.len(), 2);
        assert!(csp.iter().any(|v| *v == SANDBOX_CSP));
    }
}
