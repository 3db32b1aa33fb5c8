//! Authentication failures ([`AuthError`]) and configuration errors ([`ConfigError`]).
//!
//! Messages are user-facing and never echo a credential or a header value.

/// Why a request is rejected: HTTP 401, 403 for [`AuthError::Forbidden`], or 503 for
/// [`AuthError::Unavailable`] ([`AuthError::status`]); the gateway does the mapping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// An API key was presented and matches no configured key. Answered with upstream's
    /// code and message, so API clients that match on them keep working.
    #[error("the API key is not valid")]
    InvalidApiKey,
    /// A trusted proxy sent the request without the required identity header.
    #[error("authentication required: the identity header {header} is missing")]
    MissingIdentity {
        /// The header's configured name.
        header: String,
    },
    /// A trusted proxy sent an unusable identity header.
    #[error("the identity header {header} is invalid: {reason}")]
    InvalidIdentity {
        /// The header's configured name.
        header: String,
        /// What is wrong (never the value itself).
        reason: &'static str,
    },
    /// A dependency of authentication (the governance store behind personal keys) does
    /// not answer: the credential cannot be checked now. Answered 503 with `Retry-After`.
    #[error("authentication unavailable: the {dependency} does not answer")]
    Unavailable {
        /// What does not answer, e.g. `governance store`.
        dependency: &'static str,
    },
    /// A rejection by a later authenticator (session cookie, bearer JWT).
    #[error("{message}")]
    Rejected {
        /// Error code, e.g. `GATEWAY::INVALID_TOKEN`.
        code: &'static str,
        /// User-facing message; must not contain the credential.
        message: String,
    },
    /// The credential is valid, but names nobody this gateway accepts that way (a
    /// ServiceAccount no platform controller lists). Answered 403.
    #[error("{message}")]
    Forbidden {
        /// Error code, e.g. `GATEWAY::NOT_A_PLATFORM_CONTROLLER`.
        code: &'static str,
        /// User-facing message; must not contain the credential.
        message: String,
    },
}

impl AuthError {
    /// The error code for the `{"code","message"}` body, e.g. `INVALID_API_KEY`.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::InvalidApiKey => gatehouse_lifecycle::codes::INVALID_API_KEY,
            AuthError::MissingIdentity { .. } => "GATEWAY::MISSING_IDENTITY",
            AuthError::InvalidIdentity { .. } => "GATEWAY::INVALID_IDENTITY",
            AuthError::Unavailable { .. } => "GATEWAY::AUTH_UNAVAILABLE",
            AuthError::Rejected { code, .. } | AuthError::Forbidden { code, .. } => code,
        }
    }

    /// The HTTP status: 503 when a dependency is down (retry later), 403 for a valid
    /// credential of nobody accepted, else 401.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Unavailable { .. } => 503,
            AuthError::Forbidden { .. } => 403,
            _ => 401,
        }
    }

    /// The user-facing message. It never echoes a secret or a header value.
    pub fn message(&self) -> String {
        match self {
            AuthError::InvalidApiKey => {
                "Authentication credentials are invalid. Check your API key and try again."
                    .to_string()
            }
            AuthError::MissingIdentity { header } => format!(
                "Authentication required: the identity header {header} is missing \
                 (is the authenticating proxy configured?)."
            ),
            AuthError::InvalidIdentity { header, reason } => {
                format!("The identity header {header} is invalid: {reason}.")
            }
            AuthError::Unavailable { dependency } => format!(
                "Your credential cannot be checked right now: the {dependency} does not answer. \
                 Retry later."
            ),
            AuthError::Rejected { message, .. } | AuthError::Forbidden { message, .. } => {
                message.clone()
            }
        }
    }
}

/// An authenticator's configuration is unusable. The message names the bad entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// An `[[auth.api_keys]]` entry is bad.
    #[error("auth.api_keys[{index}] ({name}): {reason}")]
    ApiKey {
        /// Position in the list, from 0.
        index: usize,
        /// The entry's name (`<unnamed>` when empty).
        name: String,
        /// What is wrong (never the key).
        reason: String,
    },
    /// The backend key handed to the API key authenticator is unusable.
    #[error("the upstream backend key {reason}")]
    BackendKey {
        /// What is wrong (never the key).
        reason: &'static str,
    },
    /// An `[auth.trusted_header]` value is bad.
    #[error("auth.trusted_header.{field}: {reason}")]
    TrustedHeader {
        /// The field, e.g. `user_header`.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(AuthError::InvalidApiKey.code(), "INVALID_API_KEY");
        let h = || "X-OpenSandbox-User".to_string();
        assert_eq!(
            AuthError::MissingIdentity { header: h() }.code(),
            "GATEWAY::MISSING_IDENTITY"
        );
        assert_eq!(
            AuthError::InvalidIdentity {
                header: h(),
                reason: "too long"
            }
            .code(),
            "GATEWAY::INVALID_IDENTITY"
        );
        let r = AuthError::Rejected {
            code: "GATEWAY::INVALID_TOKEN",
            message: "The token has expired.".into(),
        };
        assert_eq!(r.code(), "GATEWAY::INVALID_TOKEN");
        assert_eq!(r.message(), "The token has expired.");
        assert_eq!(r.to_string(), "The token has expired.");
    }

    #[test]
    fn messages_name_the_header() {
        let m = AuthError::MissingIdentity {
            header: "X-OpenSandbox-User".into(),
        };
        assert!(m.message().contains("X-OpenSandbox-User"));
        assert!(m.to_string().contains("X-OpenSandbox-User"));
        let i = AuthError::InvalidIdentity {
            header: "X-OpenSandbox-Team".into(),
            reason: "contains control characters",
        };
        assert!(i.message().contains("X-OpenSandbox-Team"));
        assert!(i.message().contains("control characters"));
        assert_eq!(
            AuthError::InvalidApiKey.message(),
            "Authentication credentials are invalid. Check your API key and try again."
        );
    }

    #[test]
    fn config_error_names_the_entry() {
        let e = ConfigError::ApiKey {
            index: 1,
            name: "ci-bot".into(),
            reason: "env var CI_KEY is not set".into(),
        };
        assert_eq!(
            e.to_string(),
            "auth.api_keys[1] (ci-bot): env var CI_KEY is not set"
        );
        let e = ConfigError::TrustedHeader {
            field: "user_header",
            reason: "bad".into(),
        };
        assert_eq!(e.to_string(), "auth.trusted_header.user_header: bad");
        let e = ConfigError::BackendKey { reason: "is empty" };
        assert_eq!(e.to_string(), "the upstream backend key is empty");
    }
}
