//! [`TokenReviewer`]: asks the Kubernetes API server whether a ServiceAccount token is
//! valid for one of our audiences (`authentication.k8s.io/v1` TokenReview), and returns
//! who it names ([`ReviewedAccount`]).
//!
//! The caller of the API server needs `create` on `tokenreviews` (the ClusterRole
//! `system:auth-delegator` grants it). Audiences are checked twice: the API server only
//! authenticates a token whose `aud` intersects the review's audiences, and the answer's
//! `status.audiences` must name one of them too (an API server that is not
//! audience-aware answers with none, which is refused).

use super::pod::{POD_NAME_EXTRA, POD_UID_EXTRA};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::PostParams;
use kube::Api;
use std::time::Duration;

/// The prefix of a ServiceAccount's user name: `system:serviceaccount:<ns>:<name>`.
const SA_PREFIX: &str = "system:serviceaccount:";

/// Why a token was not accepted, or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The API server did not authenticate the token (unknown, expired, wrong audience,
    /// or its bound pod or ServiceAccount is gone). The detail is for logs only.
    #[error("the API server did not authenticate the token: {0}")]
    Unauthenticated(String),
    /// The token is valid but does not belong to a ServiceAccount.
    #[error("the token does not belong to a ServiceAccount")]
    NotServiceAccount,
    /// The review did not confirm one of the requested audiences.
    #[error("the token is not meant for this gateway (audience)")]
    Audience,
    /// The pod the token is bound to is missing, not the one bound (UID), or not what the
    /// caller required; the detail is for logs only.
    #[error("pod binding refused: {0}")]
    Pod(String),
    /// The API server could not be asked (unreachable, timed out, or refused our own
    /// credentials).
    #[error("the Kubernetes API server could not be asked: {0}")]
    Unavailable(String),
    /// The client could not be built from the configuration.
    #[error("Kubernetes client configuration: {0}")]
    Config(String),
}

/// The ServiceAccount a reviewed token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewedAccount {
    /// The ServiceAccount's namespace.
    pub namespace: String,
    /// The ServiceAccount's name.
    pub service_account: String,
    /// The ServiceAccount's UID.
    pub uid: String,
    /// The pod the token is bound to (`authentication.kubernetes.io/pod-name`), if any.
    pub pod_name: Option<String>,
    /// That pod's UID (`authentication.kubernetes.io/pod-uid`), if any.
    pub pod_uid: Option<String>,
    /// The audiences the API server confirmed (a subset of the requested ones).
    pub audiences: Vec<String>,
}

/// A TokenReview client.
#[derive(Clone)]
pub struct TokenReviewer {
    client: kube::Client,
    timeout: Duration,
}

impl std::fmt::Debug for TokenReviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenReviewer")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TokenReviewer {
    /// A reviewer using `client`; every API call is bounded by `timeout`.
    pub fn new(client: kube::Client, timeout: Duration) -> Self {
        Self { client, timeout }
    }

    /// A reviewer from a kubeconfig file, or the in-cluster / `KUBECONFIG` configuration
    /// when `kubeconfig` is `None`.
    pub async fn from_kubeconfig(
        kubeconfig: Option<&std::path::Path>,
        timeout: Duration,
    ) -> Result<Self, ReviewError> {
        let cfg = match kubeconfig {
            Some(p) => {
                let kc = kube::config::Kubeconfig::read_from(p)
                    .map_err(|e| ReviewError::Config(format!("{}: {e}", p.display())))?;
                kube::Config::from_custom_kubeconfig(kc, &Default::default())
                    .await
                    .map_err(|e| ReviewError::Config(format!("{}: {e}", p.display())))?
            }
            None => kube::Config::infer()
                .await
                .map_err(|e| ReviewError::Config(e.to_string()))?,
        };
        let client = kube::Client::try_from(cfg).map_err(|e| ReviewError::Config(e.to_string()))?;
        Ok(Self::new(client, timeout))
    }

    /// The client (for follow-up reads such as the bound pod).
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The per-call deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Reviews `token` for `audiences` (at least one must be confirmed; an empty list
    /// accepts the API server's own audience, which a gateway should never use).
    pub async fn review(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<ReviewedAccount, ReviewError> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                audiences: (!audiences.is_empty()).then(|| audiences.to_vec()),
                token: token.to_owned(),
            },
            ..Default::default()
        };
        let api = Api::<TokenReview>::all(self.client.clone());
        let answer =
            tokio::time::timeout(self.timeout, api.create(&PostParams::default(), &review))
                .await
                .map_err(|_| {
                    ReviewError::Unavailable(format!("timed out after {:?}", self.timeout))
                })?
                .map_err(|e| ReviewError::Unavailable(e.to_string()))?;
        account(answer, audiences)
    }
}

/// The account of a TokenReview answer.
fn account(answer: TokenReview, audiences: &[String]) -> Result<ReviewedAccount, ReviewError> {
    let status = answer.status.unwrap_or_default();
    if status.authenticated != Some(true) {
        return Err(ReviewError::Unauthenticated(
            status.error.unwrap_or_else(|| "not authenticated".into()),
        ));
    }
    let confirmed = status.audiences.unwrap_or_default();
    if !audiences.is_empty() && !confirmed.iter().any(|a| audiences.contains(a)) {
        return Err(ReviewError::Audience);
    }
    let user = status.user.unwrap_or_default();
    let name = user.username.unwrap_or_default();
    let (namespace, service_account) = name
        .strip_prefix(SA_PREFIX)
        .and_then(|rest| rest.split_once(':'))
        .filter(|(ns, sa)| !ns.is_empty() && !sa.is_empty() && !sa.contains(':'))
        .ok_or(ReviewError::NotServiceAccount)?;
    let extra = user.extra.unwrap_or_default();
    let one = |key: &str| extra.get(key).and_then(|v| v.first()).cloned();
    Ok(ReviewedAccount {
        namespace: namespace.to_owned(),
        service_account: service_account.to_owned(),
        uid: user.uid.unwrap_or_default(),
        pod_name: one(POD_NAME_EXTRA),
        pod_uid: one(POD_UID_EXTRA),
        audiences: confirmed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::authentication::v1::{TokenReviewStatus, UserInfo};

    fn answer(user: &str, auds: &[&str], extra: &[(&str, &str)]) -> TokenReview {
        TokenReview {
            status: Some(TokenReviewStatus {
                authenticated: Some(true),
                audiences: Some(auds.iter().map(|a| a.to_string()).collect()),
                user: Some(UserInfo {
                    username: Some(user.into()),
                    uid: Some("sa-uid".into()),
                    extra: Some(
                        extra
                            .iter()
                            .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
                            .collect(),
                    ),
                    ..Default::default()
                }),
                error: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn reads_the_service_account_and_its_pod() {
        let a = account(
            answer(
                "system:serviceaccount:team-a:sandbox",
                &["gatehouse"],
                &[(POD_NAME_EXTRA, "p1"), (POD_UID_EXTRA, "u1")],
            ),
            &["gatehouse".into()],
        )
        .unwrap();
        assert_eq!(a.namespace, "team-a");
        assert_eq!(a.service_account, "sandbox");
        assert_eq!(a.uid, "sa-uid");
        assert_eq!(a.pod_name.as_deref(), Some("p1"));
        assert_eq!(a.pod_uid.as_deref(), Some("u1"));
    }

    #[test]
    fn refuses_users_unconfirmed_audiences_and_failed_reviews() {
        let want = ["gatehouse".to_string()];
        let user = account(answer("alice", &["gatehouse"], &[]), &want);
        assert!(matches!(user, Err(ReviewError::NotServiceAccount)));
        let aud = account(answer("system:serviceaccount:a:b", &[], &[]), &want);
        assert!(matches!(aud, Err(ReviewError::Audience)));
        let failed = account(TokenReview::default(), &want);
        assert!(matches!(failed, Err(ReviewError::Unauthenticated(_))));
        let odd = account(
            answer("system:serviceaccount:a:b:c", &["gatehouse"], &[]),
            &want,
        );
        assert!(matches!(odd, Err(ReviewError::NotServiceAccount)));
    }
}
