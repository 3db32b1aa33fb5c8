//! What a path sends: the credentials it presents and the request it makes.

use crate::client::Req;
use crate::oidc;
use bytes::Bytes;
use gatehouse_benches::fixtures;

/// Credentials a case presents.
#[derive(Debug, Clone)]
pub(crate) enum Cred {
    /// The backend's own key (`OPEN-SANDBOX-API-KEY`), passed through by the gateway.
    BackendKey,
    /// The named operator key of the bench team.
    NamedKey,
    /// The trusted user and team headers.
    TrustedUser,
    /// An OIDC session (the `Cookie` header value) from a login through the gateway.
    Cookie(String),
    /// A JWT access token from the dev IdP.
    Bearer(String),
    /// None at all (the preflight check that an auth peer refuses a request).
    Nothing,
}

impl Cred {
    /// The headers that present it.
    pub(crate) fn headers(&self) -> Vec<(String, String)> {
        let h = |k: &str, v: &str| (k.to_string(), v.to_string());
        match self {
            Cred::BackendKey => vec![h("OPEN-SANDBOX-API-KEY", fixtures::BACKEND_KEY)],
            Cred::NamedKey => vec![h("OPEN-SANDBOX-API-KEY", fixtures::NAMED_KEY)],
            Cred::TrustedUser => vec![
                h("X-OpenSandbox-User", fixtures::BENCH_USER),
                h("X-OpenSandbox-Team", fixtures::BENCH_TEAM),
            ],
            Cred::Cookie(c) => vec![h("Cookie", c)],
            Cred::Bearer(t) => vec![h("Authorization", &format!("Bearer {t}"))],
            Cred::Nothing => Vec::new(),
        }
    }

    /// Its name in a path's label.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Cred::BackendKey => "backend key",
            Cred::NamedKey => "named API key",
            Cred::TrustedUser => "trusted headers",
            Cred::Cookie(_) => "session cookie",
            Cred::Bearer(_) => "bearer JWT",
            Cred::Nothing => "no credential",
        }
    }

    /// Whether the gateway scopes a caller with this credential to its team.
    pub(crate) fn scoped(&self) -> bool {
        !matches!(self, Cred::BackendKey | Cred::Nothing)
    }

    /// For an OIDC credential, the minted one of `creds` it stands for.
    pub(crate) fn minted<'a>(&self, creds: &'a oidc::Creds) -> Option<&'a oidc::Minted> {
        match self {
            Cred::Cookie(_) => Some(&creds.cookie),
            Cred::Bearer(_) => Some(&creds.bearer),
            _ => None,
        }
    }

    /// The same kind of credential with the secret `value` (OIDC credentials only).
    pub(crate) fn with_value(self, value: String) -> Cred {
        match self {
            Cred::Cookie(_) => Cred::Cookie(value),
            Cred::Bearer(_) => Cred::Bearer(value),
            other => other,
        }
    }
}

/// The request kinds of the benchmark, in the report's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ReqKind {
    /// `GET` of one sandbox (1.6 KB).
    Sandbox,
    /// `GET` of a 20-item list.
    List20,
    /// `GET` of a 200-item list.
    List200,
    /// `POST` of a create.
    Create,
    /// `GET` of 1 MiB through the proxy route.
    Proxy1M,
}

impl ReqKind {
    /// Its name in the report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ReqKind::Sandbox => "GET sandbox (1.6 KB)",
            ReqKind::List20 => "GET list, 20 items",
            ReqKind::List200 => "GET list, 200 items",
            ReqKind::Create => "POST create",
            ReqKind::Proxy1M => "GET proxy route, 1 MiB",
        }
    }

    /// What a path's id adds for it (`nginx-list20`; none for the sandbox GET).
    pub(crate) fn id_suffix(self) -> &'static str {
        match self {
            ReqKind::Sandbox => "",
            ReqKind::List20 => "-list20",
            ReqKind::List200 => "-list200",
            ReqKind::Create => "-create",
            ReqKind::Proxy1M => "-proxy-1m",
        }
    }

    /// Whether the gateway adds the caller's scope to it (query or body).
    pub(crate) fn scoped(self) -> bool {
        matches!(self, ReqKind::List20 | ReqKind::List200 | ReqKind::Create)
    }

    /// The status a good answer has.
    pub(crate) fn want_status(self) -> u16 {
        if self == ReqKind::Create {
            202
        } else {
            200
        }
    }

    /// The request, presenting `cred`.
    pub(crate) fn build(self, cred: &Cred) -> Req {
        let mut headers = cred.headers();
        let (method, path, body) = match self {
            ReqKind::Sandbox => (
                "GET",
                format!("/v1/sandboxes/{}", fixtures::SANDBOX_ID),
                None,
            ),
            ReqKind::List20 => ("GET", "/v1/sandboxes?pageSize=20".to_string(), None),
            ReqKind::List200 => ("GET", "/v1/sandboxes?pageSize=200".to_string(), None),
            ReqKind::Create => (
                "POST",
                "/v1/sandboxes".to_string(),
                Some(Bytes::from(fixtures::create_request_json())),
            ),
            ReqKind::Proxy1M => (
                "GET",
                format!("/v1/sandboxes/{}/proxy/8080/data.bin", fixtures::SANDBOX_ID),
                None,
            ),
        };
        if body.is_some() {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        Req {
            method: method.into(),
            path,
            headers,
            body,
        }
    }
}
