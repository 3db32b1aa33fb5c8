//! Authentication for the Gatehouse gateway: who is calling.
//!
//! Every request runs through a [`Chain`] of [`Authenticator`]s, in this order:
//!
//! 1. [`ApiKeyAuthenticator`]: header `OPEN-SANDBOX-API-KEY`, either the backend's own
//!    key (forwarded unchanged as `service_admin`) or a named gateway key with a fixed role;
//! 2. [`TrustedHeaderAuthenticator`]: user identity headers, only from trusted proxies;
//! 3. later: an OIDC session cookie, then a bearer JWT (each a new [`Authenticator`],
//!    appended to the chain; [`AuthError::Rejected`] carries their failures).
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
pub mod oidc;
mod principal;
mod secret;
mod trusted_header;

pub use api_key::{sha256_hex, ApiKeyAuthenticator, ApiKeyConfig, API_KEY_HEADER};
pub use authenticator::{Authenticator, Chain, RequestView};
pub use error::{AuthError, ConfigError};
pub use principal::{AuthMethod, Principal, PrincipalKind};
pub use secret::SecretString;
pub use trusted_header::{
    parse_proxy, strip_identity_headers, TrustedHeaderAuthenticator, TrustedHeaderConfig,
    MAX_IDENTITY_LEN, MAX_ROLES_LEN,
};
