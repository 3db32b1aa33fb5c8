//! The live pod a pod-bound ServiceAccount token names: it must still exist with the UID
//! the token was bound to (a pod re-created under the same name has another UID).

use super::token_review::{ReviewError, ReviewedAccount, TokenReviewer};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use std::collections::BTreeMap;

/// The TokenReview `extra` key naming the pod a token is bound to.
pub const POD_NAME_EXTRA: &str = "authentication.kubernetes.io/pod-name";
/// The TokenReview `extra` key holding that pod's UID.
pub const POD_UID_EXTRA: &str = "authentication.kubernetes.io/pod-uid";

/// The pod a reviewed token is bound to, as the API server has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundPod {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// Fetches the live pod `account`'s token is bound to and checks its UID: a token that
/// is not pod-bound, a deleted pod, and a pod whose UID differs are all refused.
pub async fn bound_pod(
    reviewer: &TokenReviewer,
    account: &ReviewedAccount,
) -> Result<BoundPod, ReviewError> {
    let (Some(name), Some(uid)) = (&account.pod_name, &account.pod_uid) else {
        return Err(ReviewError::Pod("the token is not bound to a pod".into()));
    };
    let api = Api::<Pod>::namespaced(reviewer.client().clone(), &account.namespace);
    let pod = tokio::time::timeout(reviewer.timeout(), api.get_opt(name))
        .await
        .map_err(|_| ReviewError::Unavailable("pod lookup timed out".into()))?
        .map_err(|e| ReviewError::Unavailable(e.to_string()))?
        .ok_or_else(|| {
            ReviewError::Pod(format!("pod {}/{name} does not exist", account.namespace))
        })?;
    let live_uid = pod.metadata.uid.clone().unwrap_or_default();
    if &live_uid != uid {
        return Err(ReviewError::Pod(format!(
            "pod {}/{name} has another UID than the token is bound to",
            account.namespace
        )));
    }
    if pod.metadata.deletion_timestamp.is_some() {
        return Err(ReviewError::Pod(format!(
            "pod {}/{name} is being deleted",
            account.namespace
        )));
    }
    Ok(BoundPod {
        namespace: account.namespace.clone(),
        name: name.clone(),
        uid: live_uid,
        labels: pod.metadata.labels.unwrap_or_default(),
    })
}
