//! Turning API server answers into [`RuntimeError`]s that say what to fix.
//!
//! - connection refused, TLS failure, timeout, 503/504 → `Unavailable`
//!   (503 `KUBERNETES::UNAVAILABLE`);
//! - 403 from RBAC → 500 `KUBERNETES::FORBIDDEN` naming the verb, resource and namespace
//!   the backend's identity lacks;
//! - 403 from admission: a missing pod ServiceAccount → 400
//!   `KUBERNETES::SERVICE_ACCOUNT_NOT_FOUND`, anything else → 400 `KUBERNETES::INVALID_POD`;
//! - 403 "exceeded quota" → 429 `KUBERNETES::QUOTA_EXCEEDED` with the API server's reason;
//! - 404 for the namespace → 400 `KUBERNETES::NAMESPACE_NOT_FOUND` naming it;
//! - any other 404 → `NotFound`;
//! - 409 → `KUBERNETES::SANDBOX_ALREADY_EXISTS`; 400/422 → 400 `KUBERNETES::INVALID_POD`.

use crate::codes;
use crate::driver::RUNTIME;
use gatehouse_lifecycle::RuntimeError;

/// What the driver was doing when the API server answered.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// RBAC verb: `create`, `get`, `list`, `watch`, `delete`.
    pub verb: &'static str,
    /// Namespace of the call.
    pub namespace: &'a str,
    /// Code for failures without a better one.
    pub code: &'static str,
}

impl Call<'_> {
    /// An operation name for logs.
    fn op(&self) -> &'static str {
        self.verb
    }
}

/// Whether `e` means the API server could not be reached at all.
pub fn is_unreachable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => matches!(s.code, 503 | 504),
        kube::Error::HyperError(_)
        | kube::Error::Service(_)
        | kube::Error::ReadEvents(_)
        | kube::Error::RustlsTls(_)
        | kube::Error::Auth(_) => true,
        _ => false,
    }
}

/// Whether a 403 message is the RBAC authorizer's (`... cannot create resource "pods" ...`)
/// rather than an admission plugin's.
fn is_rbac(msg: &str) -> bool {
    msg.contains(" cannot ") && msg.contains("resource")
}

/// The error for API server answer `e` to `call`.
pub fn map(e: kube::Error, call: Call<'_>) -> RuntimeError {
    if is_unreachable(&e) {
        return RuntimeError::Unavailable {
            runtime: RUNTIME,
            code: codes::UNAVAILABLE,
            detail: format!("{} pods in {}: {e}", call.verb, call.namespace),
        };
    }
    let kube::Error::Api(status) = e else {
        return RuntimeError::Failed {
            code: call.code,
            op: call.op(),
            detail: e.to_string(),
        };
    };
    let msg = status.message.clone();
    let ns = call.namespace;
    match status.code {
        403 if msg.contains("exceeded quota") => RuntimeError::Invalid {
            status: 429,
            code: codes::QUOTA_EXCEEDED,
            message: format!("A ResourceQuota of namespace '{ns}' refuses the sandbox: {msg}"),
        },
        403 if msg.contains("quota") => RuntimeError::Invalid {
            status: 400,
            code: codes::QUOTA_EXCEEDED,
            message: format!("A ResourceQuota of namespace '{ns}' refuses the sandbox: {msg}"),
        },
        403 if msg.contains("error looking up service account") => RuntimeError::Invalid {
            status: 400,
            code: codes::SERVICE_ACCOUNT_NOT_FOUND,
            message: format!(
                "The sandbox pod's ServiceAccount does not exist in namespace '{ns}': create it, \
                 or set kubernetes.service_account. API server: {msg}"
            ),
        },
        403 if !is_rbac(&msg) => RuntimeError::Invalid {
            status: 400,
            code: codes::INVALID_POD,
            message: format!("An admission check in namespace '{ns}' rejects the sandbox pod: {msg}"),
        },
        403 => {
            let message = format!(
                "The backend's Kubernetes identity may not '{}' resource 'pods' in namespace '{ns}' \
                 (RBAC): grant verb '{}' on 'pods' in '{ns}' to its ServiceAccount. API server: {msg}",
                call.verb, call.verb
            );
            tracing::error!(verb = call.verb, namespace = ns, %msg, "kubernetes RBAC forbids a driver call");
            RuntimeError::Invalid {
                status: 500,
                code: codes::FORBIDDEN,
                message,
            }
        }
        401 => RuntimeError::Invalid {
            status: 500,
            code: codes::FORBIDDEN,
            message: format!(
                "The API server rejects the backend's Kubernetes credentials (401): {msg}"
            ),
        },
        404 if status
            .details
            .as_ref()
            .is_some_and(|d| d.kind == "namespaces") =>
        {
            RuntimeError::Invalid {
                status: 400,
                code: codes::NAMESPACE_NOT_FOUND,
                message: format!(
                    "Namespace '{ns}' does not exist: create it, or fix kubernetes.namespace / namespace_template."
                ),
            }
        }
        404 => RuntimeError::NotFound(
            status
                .details
                .as_ref()
                .map(|d| d.name.clone())
                .unwrap_or_default(),
        ),
        409 if status.reason == "AlreadyExists" => RuntimeError::Conflict {
            code: codes::ALREADY_EXISTS,
            message: format!("A pod for this sandbox already exists in namespace '{ns}'."),
        },
        400 | 422 => RuntimeError::Invalid {
            status: 400,
            code: codes::INVALID_POD,
            message: format!("The API server rejects the sandbox pod: {msg}"),
        },
        429 => RuntimeError::Unavailable {
            runtime: RUNTIME,
            code: codes::UNAVAILABLE,
            detail: format!("throttled: {msg}"),
        },
        _ => RuntimeError::Failed {
            code: call.code,
            op: call.op(),
            detail: format!("{} {}: {msg}", status.code, status.reason),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::StatusDetails;
    use kube::core::Status;

    fn api(code: u16, reason: &str, message: &str, kind: &str) -> kube::Error {
        let mut s = Status::failure(message, reason).with_code(code);
        if !kind.is_empty() {
            s = s.with_details(StatusDetails {
                kind: kind.into(),
                name: "team-x".into(),
                group: String::new(),
                uid: String::new(),
                causes: Vec::new(),
                retry_after_seconds: 0,
            });
        }
        kube::Error::Api(s.boxed())
    }

    const CALL: Call<'static> = Call {
        verb: "create",
        namespace: "team-x",
        code: codes::START_FAILED,
    };

    #[test]
    fn forbidden_names_the_permission() {
        let e = map(
            api(403, "Forbidden", "pods is forbidden: User \"system:serviceaccount:a:b\" cannot create resource \"pods\"", "pods"),
            CALL,
        );
        let RuntimeError::Invalid {
            status,
            code,
            message,
        } = e
        else {
            panic!("{e:?}")
        };
        assert_eq!((status, code), (500, codes::FORBIDDEN));
        assert!(
            message.contains("'create'")
                && message.contains("'team-x'")
                && message.contains("'pods'"),
            "{message}"
        );
    }

    #[test]
    fn quota_namespace_conflict_invalid() {
        let e = map(
            api(
                403,
                "Forbidden",
                "pods \"x\" is forbidden: exceeded quota: q, requested: pods=1",
                "pods",
            ),
            CALL,
        );
        assert!(
            matches!(
                e,
                RuntimeError::Invalid {
                    status: 429,
                    code: codes::QUOTA_EXCEEDED,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = map(
            api(
                404,
                "NotFound",
                "namespaces \"team-x\" not found",
                "namespaces",
            ),
            CALL,
        );
        let RuntimeError::Invalid {
            status: 400,
            code,
            message,
        } = e
        else {
            panic!("{e:?}")
        };
        assert_eq!(code, codes::NAMESPACE_NOT_FOUND);
        assert!(message.contains("'team-x'"));
        let e = map(api(403, "Forbidden", "pods \"x\" is forbidden: error looking up service account a/default: serviceaccount \"default\" not found", "pods"), CALL);
        assert!(
            matches!(
                e,
                RuntimeError::Invalid {
                    status: 400,
                    code: codes::SERVICE_ACCOUNT_NOT_FOUND,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = map(
            api(
                403,
                "Forbidden",
                "pods \"x\" is forbidden: violates PodSecurity",
                "pods",
            ),
            CALL,
        );
        assert!(
            matches!(
                e,
                RuntimeError::Invalid {
                    status: 400,
                    code: codes::INVALID_POD,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = map(api(409, "AlreadyExists", "exists", "pods"), CALL);
        assert!(matches!(e, RuntimeError::Conflict { .. }));
        let e = map(
            api(
                422,
                "Invalid",
                "spec.containers[0].image: Required value",
                "pods",
            ),
            CALL,
        );
        assert!(matches!(
            e,
            RuntimeError::Invalid {
                status: 400,
                code: codes::INVALID_POD,
                ..
            }
        ));
        let e = map(api(503, "ServiceUnavailable", "etcd down", ""), CALL);
        assert!(matches!(
            e,
            RuntimeError::Unavailable {
                code: codes::UNAVAILABLE,
                ..
            }
        ));
        let e = map(api(500, "InternalError", "boom", ""), CALL);
        assert!(matches!(
            e,
            RuntimeError::Failed {
                code: codes::START_FAILED,
                ..
            }
        ));
    }
}
