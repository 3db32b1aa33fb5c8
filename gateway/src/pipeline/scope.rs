//! Scope checks and body rewrites for a scoped permit (every role but `service_admin`):
//! lists are narrowed to the caller's scope, creates get the reserved owner/team
//! metadata, and a per-sandbox call must name a sandbox in scope (else the backend's own
//! not-found answer, so an out-of-scope id is indistinguishable from a missing one).

use crate::ctx::{RequestCtx, ResponseRewrite};
use crate::error::GatewayError;
use crate::http::body::ReadError;
use crate::http::inbound::Inbound;
use crate::state::Gateway;
use bytes::Bytes;
use gatehouse_authz::{Action, Permit, Target};
use gatehouse_scope::{body as scope_body, query as scope_query, Scope, ScopeError};

impl Gateway {
    /// Applies the permit's scope to the request; nothing to do for an unscoped permit.
    pub(crate) async fn apply_scope(
        &self,
        req: &mut Inbound,
        ctx: &mut RequestCtx,
        permit: &Permit,
    ) -> Result<(), GatewayError> {
        let Some(scope) = self.caller_scope(permit, ctx) else {
            return Ok(());
        };
        match permit.target() {
            Target::Public => {}
            Target::Collection => {
                let q = scope_query::scoped_list_query(req.query(), &scope, &self.keys);
                ctx.query = Some(q);
                ctx.rewrite = ResponseRewrite::ListFilter;
            }
            Target::Create => {
                let body = self.read_body(req).await?;
                let out = self.scope_create(&body, &scope, ctx)?;
                ctx.body = Some(Bytes::from(out));
            }
            Target::Sandbox => {
                let id = permit.sandbox_id().unwrap_or_default();
                self.check_sandbox_in_scope(id, &scope, ctx).await?;
                if permit.action() == Action::SandboxRead {
                    ctx.rewrite = ResponseRewrite::ScopeCheck;
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
            Target::Unscoped | Target::Gateway => {
                return Err(GatewayError::new(
                    403,
                    "GATEWAY::FORBIDDEN",
                    "This route cannot be scoped to a team; only service_admin may use it.",
                ));
            }
        }
        ctx.scope = Some(scope);
        Ok(())
    }

    /// The sandbox exists and carries the caller's scope; otherwise the not-found answer.
    pub(crate) async fn check_sandbox_in_scope(
        &self,
        id: &str,
        scope: &Scope,
        ctx: &mut RequestCtx,
    ) -> Result<(), GatewayError> {
        use crate::backend_client::Found;
        match self.backend.sandbox(id, &ctx.request_id).await {
            Ok(Found::Sandbox(md)) if scope.allows(&md, &self.keys) => {
                self.note_tenant(&md, ctx);
                Ok(())
            }
            Ok(_) => {
                ctx.reason = Some("GATEWAY::OUT_OF_SCOPE".into());
                Err(GatewayError::sandbox_not_found(id))
            }
            Err(e) => {
                tracing::warn!(error = %e, "scope lookup failed");
                Err(GatewayError::upstream_unavailable())
            }
        }
    }

    /// Reads the whole request body (create and metadata patch), up to `max_body`.
    pub(crate) async fn read_body(&self, req: &mut Inbound) -> Result<Bytes, GatewayError> {
        req.read_body(self.max_body).await.map_err(|e| match e {
            ReadError::TooLarge(limit) => GatewayError::new(
                413,
                "GATEWAY::PAYLOAD_TOO_LARGE",
                format!("Request body exceeds the gateway's limit of {limit} bytes."),
            ),
            ReadError::Broken(_) => GatewayError::new(
                400,
                "GATEWAY::INVALID_BODY",
                "The request body could not be read.",
            ),
        })
    }
}
