//! The [`Authenticator`] trait and the [`Chain`] that runs authenticators in order.

use crate::error::AuthError;
use crate::principal::Principal;
use async_trait::async_trait;
use std::net::IpAddr;

/// What an authenticator may look at: the peer address and the request headers.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// The TCP peer's address, when known.
    pub peer: Option<IpAddr>,
    /// The request headers as the client sent them.
    pub headers: &'a http::HeaderMap,
}

/// One way of establishing who is calling.
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// Short stable name for logs, e.g. `api_key`.
    fn name(&self) -> &'static str;

    /// Decides about one request.
    ///
    /// `Ok(Some(p))`: the caller is `p`. `Ok(None)`: this request carries no credential of
    /// mine, try the next authenticator. `Err(e)`: reject the request (fail closed); no
    /// later authenticator is consulted.
    async fn authenticate(&self, req: &RequestView<'_>) -> Result<Option<Principal>, AuthError>;
}

/// Authenticators in priority order. The first that claims the request decides it.
pub struct Chain {
    authenticators: Vec<Box<dyn Authenticator>>,
}

impl Chain {
    /// A chain consulting `authenticators` in this order.
    pub fn new(authenticators: Vec<Box<dyn Authenticator>>) -> Self {
        Self { authenticators }
    }

    /// Appends an authenticator, consulted after the existing ones.
    pub fn push(&mut self, authenticator: Box<dyn Authenticator>) {
        self.authenticators.push(authenticator);
    }

    /// The authenticators' names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.authenticators.iter().map(|a| a.name()).collect()
    }

    /// Runs the chain: the first `Some` wins, the first `Err` rejects, and a request no
    /// authenticator claims is [`Principal::anonymous`].
    pub async fn authenticate(&self, req: &RequestView<'_>) -> Result<Principal, AuthError> {
        for a in &self.authenticators {
            match a.authenticate(req).await {
                Ok(Some(p)) => {
                    tracing::debug!(
                        authenticator = a.name(),
                        subject = %p.subject,
                        "request authenticated"
                    );
                    return Ok(p);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(
                        authenticator = a.name(),
                        code = e.code(),
                        "request rejected"
                    );
                    return Err(e);
                }
            }
        }
        Ok(Principal::anonymous())
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("authenticators", &self.names())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::{AuthMethod, PrincipalKind};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    enum Answer {
        Claim(&'static str),
        Pass,
        Reject,
    }

    struct Fixed {
        name: &'static str,
        answer: Answer,
        calls: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl Authenticator for Fixed {
        fn name(&self) -> &'static str {
            self.name
        }
        async fn authenticate(
            &self,
            _req: &RequestView<'_>,
        ) -> Result<Option<Principal>, AuthError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            match self.answer {
                Answer::Claim(subject) => Ok(Some(Principal {
                    kind: PrincipalKind::User,
                    subject: subject.to_string(),
                    method: AuthMethod::Session,
                    ..Principal::anonymous()
                })),
                Answer::Pass => Ok(None),
                Answer::Reject => Err(AuthError::Rejected {
                    code: "GATEWAY::TEST",
                    message: "no".into(),
                }),
            }
        }
    }

    fn fixed(name: &'static str, answer: Answer) -> (Box<dyn Authenticator>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let a = Fixed {
            name,
            answer,
            calls: calls.clone(),
        };
        (Box::new(a), calls)
    }

    async fn run(chain: &Chain) -> Result<Principal, AuthError> {
        let headers = http::HeaderMap::new();
        chain
            .authenticate(&RequestView {
                peer: None,
                headers: &headers,
            })
            .await
    }

    #[tokio::test]
    async fn empty_chain_is_anonymous() {
        let p = run(&Chain::new(Vec::new())).await.unwrap();
        assert!(p.is_anonymous());
    }

    #[tokio::test]
    async fn nobody_claims_is_anonymous() {
        let (a, ca) = fixed("a", Answer::Pass);
        let (b, cb) = fixed("b", Answer::Pass);
        let p = run(&Chain::new(vec![a, b])).await.unwrap();
        assert!(p.is_anonymous());
        assert_eq!(
            (ca.load(Ordering::SeqCst), cb.load(Ordering::SeqCst)),
            (1, 1)
        );
    }

    #[tokio::test]
    async fn first_claim_wins_and_stops() {
        let (a, _) = fixed("a", Answer::Pass);
        let (b, _) = fixed("b", Answer::Claim("bob"));
        let (c, cc) = fixed("c", Answer::Claim("carol"));
        let p = run(&Chain::new(vec![a, b, c])).await.unwrap();
        assert_eq!(p.subject, "bob");
        assert_eq!(cc.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn first_error_rejects_and_stops() {
        let (a, _) = fixed("a", Answer::Reject);
        let (b, cb) = fixed("b", Answer::Claim("bob"));
        let e = run(&Chain::new(vec![a, b])).await.unwrap_err();
        assert_eq!(e.code(), "GATEWAY::TEST");
        assert_eq!(cb.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn push_appends_later_authenticators() {
        let (a, _) = fixed("api_key", Answer::Pass);
        let mut chain = Chain::new(vec![a]);
        let (b, _) = fixed("session", Answer::Claim("sam"));
        chain.push(b);
        assert_eq!(chain.names(), ["api_key", "session"]);
        assert_eq!(run(&chain).await.unwrap().subject, "sam");
        assert!(format!("{chain:?}").contains("session"));
    }
}
