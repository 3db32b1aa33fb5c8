//! Kubernetes identities: a ServiceAccount token checked by the API server's
//! TokenReview ([`TokenReviewer`]), and the live pod a pod-bound token names
//! ([`bound_pod`]), and platform controllers calling with a ServiceAccount token
//! ([`ServiceAccountAuthenticator`]).
//!
//! The sandbox pull bootstrap (`POST /auth/sandbox/token`) and the platform-controller
//! authenticator both start here: the gateway never verifies a ServiceAccount token
//! itself, it asks the API server that issued it, so revocation (a deleted pod or
//! ServiceAccount) takes effect at once.

mod pod;
mod service_account;
mod token_review;

pub use pod::{bound_pod, BoundPod, POD_NAME_EXTRA, POD_UID_EXTRA};
pub use service_account::{
    ServiceAccountAuthenticator, ServiceAccountSettings, INVALID_SERVICE_ACCOUNT_TOKEN,
    NOT_A_PLATFORM_CONTROLLER, REFUSAL_TTL,
};
pub use token_review::{ReviewError, ReviewedAccount, TokenReviewer};
