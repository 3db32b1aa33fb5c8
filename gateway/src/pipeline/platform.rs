//! The platform-controller part of the scope step ([`crate::platform`]): a controller's
//! scope is the sandboxes it made; its create may assert a tenant and placement within
//! its allowlists (everyone else's may not); and the audit event names the tenant it
//! acted for.

use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::platform::create::CreateBody;
use crate::platform::Platform;
use crate::state::Gateway;
use gatehouse_audit::OnBehalfOf;
use gatehouse_authz::Permit;
use gatehouse_lifecycle::StringMap;
use gatehouse_scope::Scope;

impl Gateway {
    /// The caller's scope under `permit` (`None` when unscoped): a platform controller's
    /// matches the sandboxes carrying its `access.controller` token.
    pub(crate) fn caller_scope(&self, permit: &Permit, ctx: &RequestCtx) -> Option<Scope> {
        let p = &ctx.principal;
        let scope = Scope::for_permit(permit, &p.subject, p.team.as_deref())?;
        Some(match self.platform.controller_of(p) {
            Some(c) => {
                let me = Platform::scope_subject(c);
                Scope::for_principal(&me, p.team.as_deref(), scope.mode).with_controller(&me)
            }
            None => scope,
        })
    }

    /// The create body to forward: a controller's checked against its allowlists and
    /// scoped to the tenant it asserts; anyone else's refused if it carries a
    /// controller-only field, and scoped to the caller.
    pub(crate) fn scope_create(
        &self,
        body: &[u8],
        scope: &Scope,
        ctx: &mut RequestCtx,
    ) -> Result<Vec<u8>, GatewayError> {
        let b = CreateBody::parse(body)?;
        let Some(c) = self.platform.controller_of(&ctx.principal) else {
            b.refuse_controller_fields()?;
            return Ok(b.finish(scope, &self.keys)?);
        };
        ctx.on_behalf_of = b.tenant();
        if let Err(e) = b.check(c) {
            tracing::info!(controller = %c.name, error = %e, "platform controller create refused");
            return Err(e.into());
        }
        let p = &ctx.principal;
        let me = Platform::scope_subject(c);
        // An asserted tenant replaces the controller's own owner/team; the controller
        // token keeps the sandbox in the controller's scope.
        let (owner, team) = match &ctx.on_behalf_of {
            Some(t) => (t.owner.as_deref().unwrap_or(&me), t.team.as_deref()),
            None => (me.as_str(), p.team.as_deref()),
        };
        let tenant = Scope::for_principal(owner, team, scope.mode).with_controller(&me);
        Ok(b.finish(&tenant, &self.keys)?)
    }

    /// On a per-sandbox call by a platform controller, the tenant the sandbox belongs to
    /// (its scope tokens), for the audit event.
    pub(crate) fn note_tenant(&self, metadata: &StringMap, ctx: &mut RequestCtx) {
        if self.platform.controller_of(&ctx.principal).is_some() {
            ctx.on_behalf_of = Some(OnBehalfOf {
                team: metadata.get(&self.keys.team).cloned(),
                owner: metadata.get(&self.keys.owner).cloned(),
            });
        }
    }
}
