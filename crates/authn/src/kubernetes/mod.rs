//! Kubernetes identities: a ServiceAccount token checked by the API server's
//! TokenReview ([`TokenReviewer`]), and the live pod a pod-bound token names
//! ([`bound_pod`]).
//!
//! The sandbox pull bootstrap (`POST /auth/sandbox/token`) and the platform-controller
//! authenticator both start here: the gateway never verifies a ServiceAccount token
//! itself, it asks the API server that issued it, so revocation (a deleted pod or
//! ServiceAccount) takes effect at once.

mod pod;
mod token_review;

pub use pod::{bound_pod, BoundPod, POD_NAME_EXTRA, POD_UID_EXTRA};
pub use token_review::{ReviewError, ReviewedAccount, TokenReviewer};
