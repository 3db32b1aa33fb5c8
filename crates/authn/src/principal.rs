//! Who is calling: the [`Principal`] every authenticator yields.
//!
//! A principal carries identity only (subject, team, groups, a fixed role for keys) and
//! how it was established ([`AuthMethod`]). It never holds a credential.

/// What kind of caller a [`Principal`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// Automation holding an API key (the backend key or a named gateway key).
    Service,
    /// A person, asserted by a trusted proxy (later: an OIDC session or bearer token).
    User,
    /// A platform controller: a trusted control plane creating sandboxes on behalf of
    /// tenants (an API key of kind `platform_controller`, or a Kubernetes ServiceAccount
    /// token a `[[platform.controllers]]` entry lists).
    Controller,
    /// Nobody claimed the request.
    Anonymous,
    /// Code inside one sandbox, holding that sandbox's token; it may act only on itself
    /// ([`Principal::sandbox_id`]).
    Sandbox,
}

/// The subject prefix of a sandbox principal: `sandbox:<id>`.
pub const SANDBOX_SUBJECT_PREFIX: &str = "sandbox:";

/// How a [`Principal`] was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// The backend's own `OPEN-SANDBOX-API-KEY`, forwarded unchanged.
    BackendKey,
    /// A named gateway API key.
    ApiKey,
    /// Identity headers set by a trusted proxy.
    TrustedHeader,
    /// An OIDC session cookie (reserved for a later authenticator).
    Session,
    /// A bearer JWT (reserved for a later authenticator).
    Bearer,
    /// Not authenticated.
    None,
    /// A sandbox token the gateway minted.
    SandboxToken,
    /// A Kubernetes ServiceAccount token, checked by TokenReview (platform controllers).
    ServiceAccount,
}

impl AuthMethod {
    /// Stable name for logs and audit events: `backend_key`, `api_key`, `trusted_header`,
    /// `session`, `bearer`, `sandbox_token`, `service_account` or `none`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthMethod::BackendKey => "backend_key",
            AuthMethod::ApiKey => "api_key",
            AuthMethod::TrustedHeader => "trusted_header",
            AuthMethod::Session => "session",
            AuthMethod::Bearer => "bearer",
            AuthMethod::None => "none",
            AuthMethod::SandboxToken => "sandbox_token",
            AuthMethod::ServiceAccount => "service_account",
        }
    }
}

impl std::fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Service, user or anonymous.
    pub kind: PrincipalKind,
    /// Stable identifier: `backend-key`, `key:<name>`, the user name, or `anonymous`.
    pub subject: String,
    /// The caller's team, when known.
    pub team: Option<String>,
    /// Groups asserted for the caller (trusted roles header; later OIDC claims). The
    /// role table maps them to a role.
    pub groups: Vec<String>,
    /// A fixed role (API keys carry one); `None` lets the role table decide.
    pub role: Option<String>,
    /// How the caller was authenticated.
    pub method: AuthMethod,
    /// The name of the API key used, for audit (`backend` for the backend key); for a
    /// platform controller authenticated by ServiceAccount token, the controller's name.
    pub key_name: Option<String>,
}

impl Principal {
    /// The caller nobody claimed.
    pub fn anonymous() -> Self {
        Self {
            kind: PrincipalKind::Anonymous,
            subject: "anonymous".to_string(),
            team: None,
            groups: Vec::new(),
            role: None,
            method: AuthMethod::None,
            key_name: None,
        }
    }

    /// Whether nobody claimed the request.
    pub fn is_anonymous(&self) -> bool {
        self.kind == PrincipalKind::Anonymous
    }

    /// The sandbox a [`PrincipalKind::Sandbox`] principal is; `None` for anyone else.
    pub fn sandbox_id(&self) -> Option<&str> {
        match self.kind {
            PrincipalKind::Sandbox => self.subject.strip_prefix(SANDBOX_SUBJECT_PREFIX),
            _ => None,
        }
    }

    /// Whether the request is forwarded with the client's own key, unchanged: true only
    /// for [`AuthMethod::BackendKey`].
    pub fn passthrough(&self) -> bool {
        self.method == AuthMethod::BackendKey
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_is_anonymous_and_not_passthrough() {
        let p = Principal::anonymous();
        assert!(p.is_anonymous());
        assert!(!p.passthrough());
        assert_eq!(p.subject, "anonymous");
        assert_eq!(p.method, AuthMethod::None);
        assert!(p.role.is_none() && p.team.is_none() && p.key_name.is_none());
    }

    #[test]
    fn only_backend_key_is_passthrough() {
        for (method, expected) in [
            (AuthMethod::BackendKey, true),
            (AuthMethod::ApiKey, false),
            (AuthMethod::TrustedHeader, false),
            (AuthMethod::Session, false),
            (AuthMethod::Bearer, false),
            (AuthMethod::None, false),
        ] {
            let p = Principal {
                kind: PrincipalKind::Service,
                method,
                ..Principal::anonymous()
            };
            assert_eq!(p.passthrough(), expected, "{method}");
            assert!(!p.is_anonymous());
        }
    }

    #[test]
    fn method_names() {
        let names: Vec<_> = [
            AuthMethod::BackendKey,
            AuthMethod::ApiKey,
            AuthMethod::TrustedHeader,
            AuthMethod::Session,
            AuthMethod::Bearer,
            AuthMethod::None,
        ]
        .iter()
        .map(AuthMethod::as_str)
        .collect();
        assert_eq!(
            names,
            [
                "backend_key",
                "api_key",
                "trusted_header",
                "session",
                "bearer",
                "none"
            ]
        );
        assert_eq!(AuthMethod::ApiKey.to_string(), "api_key");
        assert_eq!(AuthMethod::ServiceAccount.as_str(), "service_account");
    }
}
