//! OpenID Connect: login sessions (authorization code + PKCE, `openidconnect`), bearer
//! JWTs (`jsonwebtoken` against a cached JWKS), and back-channel logout.
//!
//! - [`config`]: `[oidc]` settings and the claim mapping;
//! - [`claims`]: claims → identity (subject, team, groups);
//! - [`jwks`]: the key cache: an unknown `kid` triggers one rate-limited, single-flight
//!   refresh while the old keys keep serving; when the IdP is down, cached keys keep working;
//! - [`bearer`]: the `Authorization: Bearer` authenticator;
//! - [`session`]: the server-side session store and the cookie authenticator;
//! - [`session_backend`]: where sessions live beyond the process (the gateway implements
//!   it with the governance store, so replicas share sessions);
//! - [`login`]: the login flow and the back-channel logout token check;
//! - [`revocation`]: tokens of ended sessions, refused until they expire.

pub mod bearer;
pub mod claims;
pub mod config;
pub mod jwks;
pub mod login;
pub mod login_state;
pub mod revocation;
pub mod session;
pub mod session_backend;

pub use bearer::BearerAuthenticator;
pub use claims::Identity;
pub use config::{OidcConfig, SessionConfig};
pub use jwks::JwksCache;
pub use login::{LoginError, OidcLogin, PendingLogin};
pub use revocation::Revocations;
pub use session::{Session, SessionAuthenticator, SessionStore};
