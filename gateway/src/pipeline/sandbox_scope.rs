//! Scoping for a sandbox principal (a caller holding a sandbox token): it only ever
//! touches its own sandbox. Every other id answers the backend's not-found answer after
//! the same lookup a missing id takes, a list is answered by the gateway with at most
//! the caller itself (the client's filters and paging still apply), and creates or
//! unscoped routes are refused whatever the role table grants.

use super::admit::Admitted;
use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::http::inbound::Inbound;
use crate::reply::Reply;
use crate::state::Gateway;
use gatehouse_authz::{Action, Permit, Target};
use gatehouse_lifecycle::query::ListQuery;
use gatehouse_scope::{body as scope_body, ScopeError};

impl Gateway {
    /// The rest of `admit` for sandbox `own`'s own token.
    pub(crate) async fn admit_sandbox_principal(
        &self,
        req: &mut Inbound,
        ctx: &mut RequestCtx,
        permit: Permit,
        own: &str,
    ) -> Result<Admitted, GatewayError> {
        match permit.target() {
            Target::Public => {}
            Target::Sandbox => {
                let id = permit.sandbox_id().unwrap_or_default().to_owned();
                if id != own {
                    // The same lookup a missing id takes, then the same answer.
                    let _ = self.backend.sandbox(&id, &ctx.request_id).await;
                    ctx.reason = Some("GATEWAY::OUT_OF_SCOPE".into());
                    return Err(GatewayError::sandbox_not_found(&id));
                }
                if permit.action() == Action::SandboxMetadata {
                    let body = self.read_body(req).await?;
                    scope_body::check_patch(&body, &self.keys).map_err(|e| match e {
                        ScopeError::Reserved(_) => {
                            GatewayError::new(400, "GATEWAY::RESERVED_METADATA", e.to_string())
                        }
                        other => GatewayError::new(400, "GATEWAY::INVALID_BODY", other.to_string()),
                    })?;
                }
            }
            Target::Collection => {
                let reply = self.list_only(req, ctx, own).await?;
                ctx.permit = Some(permit);
                return Ok(Admitted::Answer(reply));
            }
            Target::Create | Target::Unscoped | Target::Gateway => {
                ctx.denied_action = Some(permit.action());
                return Err(GatewayError::new(
                    403,
                    "GATEWAY::FORBIDDEN",
                    "A sandbox may act only on itself.",
                ));
            }
        }
        ctx.permit = Some(permit);
        Ok(Admitted::Forward)
    }

    /// `GET /sandboxes` for a sandbox: at most itself, through the client's filters and
    /// paging (a bad query gets the backend's own 400).
    async fn list_only(
        &self,
        req: &Inbound,
        ctx: &RequestCtx,
        own: &str,
    ) -> Result<Reply, GatewayError> {
        let q = ListQuery::parse(req.query()).map_err(GatewayError::from)?;
        let found = self
            .backend
            .sandbox_json(own, &ctx.request_id)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "own sandbox lookup failed");
                GatewayError::upstream_unavailable()
            })?;
        let items = match found {
            Some(body) => match serde_json::from_slice(&body) {
                Ok(sandbox) => vec![sandbox],
                Err(e) => {
                    tracing::error!(error = %e, "backend sandbox not readable");
                    return Err(GatewayError::internal());
                }
            },
            None => Vec::new(),
        };
        let page = q.apply(items);
        let body = serde_json::to_vec(&page).map_err(|_| GatewayError::internal())?;
        Ok(Reply::json(200, body))
    }
}
