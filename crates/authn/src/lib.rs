//! Authentication for the Gatehouse gateway: who is calling.
//!
//! Every request runs through a [`Chain`] of [`Authenticator`]s, in the order the gateway
//! builds it (`gateway/src/server.rs`):
//!
//! 0. [`SandboxTokenAuthenticator`]: a sandbox token the gateway minted (only bearers
//!    whose header says `typ: gatehouse-sandbox+jwt`; others are not its business);
//!    then [`kubernetes::ServiceAccountAuthenticator`]: a platform controller's Kubernetes
//!    ServiceAccount token (only bearers carrying the `kubernetes.io` claim), checked by
//!    TokenReview (when `[platform.kubernetes]` is set);
//! 1. [`ApiKeyAuthenticator`]: header `OPEN-SANDBOX-API-KEY`, either the backend's own
//!    key (forwarded unchanged as `service_admin`) or a named gateway key with a fixed role;
//! 2. [`oidc::SessionAuthenticator`]: the console's session cookie (when `[oidc]` is set);
//! 3. [`oidc::BearerAuthenticator`]: an OIDC bearer JWT verified against the IdP's JWKS
//!    (when `[oidc] bearer` is on);
//! 4. [`TrustedHeaderAuthenticator`]: user identity headers, only from trusted proxies
//!    (in `api_key_and_user` mode).
//!
//! Each authenticator answers `Ok(Some(principal))` (this is the caller), `Ok(None)` (no
//! credential of mine: ask the next one) or `Err` (reject with 401, fail closed: no later
//! authenticator is asked). A request nobody claims is [`Principal::anonymous`]; the role
//! table decides what anonymous callers may do (health only).
//!
//! **Conflicting credentials.** A request that carries an API key is decided by the API
//! key alone: a right key wins before identity headers are read, and a wrong key is
//! rejected, never retried as a user. This follows from the order above and from the API
//! key authenticator answering `Err` rather than `Ok(None)` for a key it does not know.
//!
//! **Identity headers** are honoured only from `trusted_proxies`. The gateway removes
//! them from every forwarded request with [`strip_identity_headers`], so a spoofed header
//! from an untrusted peer has no effect at all: without a key, such a request is anonymous.
//!
//! **Secrets.** Keys are held as SHA-256 digests only and compared in constant time.
//! [`SecretString`] prints as `"<redacted>"`; no `Debug`, `Display` or error message in
//! this crate contains a key or a header value.

mod api_key;
mod authenticator;
mod error;
pub mod kubernetes;
pub mod oidc;
mod principal;
mod sandbox_token;
mod secret;
mod trusted_header;

pub use api_key::{sha256_hex, ApiKeyAuthenticator, ApiKeyConfig, KeyKind};
pub use authenticator::{Authenticator, Chain, RequestView};
pub use error::{AuthError, ConfigError};
pub use gatehouse_lifecycle::wire::API_KEY_HEADER;
pub use principal::{AuthMethod, Principal, PrincipalKind, SANDBOX_SUBJECT_PREFIX};
pub use sandbox_token::{
    bearer, SandboxClaims, SandboxKeys, SandboxTokenAuthenticator, INVALID_SANDBOX_TOKEN,
    SANDBOX_TOKEN_TYP,
};
pub use secret::SecretString;
pub use trusted_header::{
    parse_proxy, strip_identity_headers, TrustedHeaderAuthenticator, TrustedHeaderConfig,
    MAX_IDENTITY_LEN, MAX_ROLES_LEN,
};
