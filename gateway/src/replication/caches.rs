//! [`Caches`] for the running gateway, and the sandbox-scope changes it publishes.

use super::follower::Caches;
use crate::ctx::RequestCtx;
use crate::state::Gateway;
use gatehouse_authz::Action;
use gatehouse_store::ChangeKind;
use std::time::Duration;

/// Longest wait for the store when publishing a scope change.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);

#[async_trait::async_trait]
impl Caches for Gateway {
    async fn session_ended(&self, key: &str) {
        if let Some(o) = &self.oidc {
            o.sessions.forget(key).await;
        }
    }

    fn sid_revoked(&self, sid: &str) {
        if let Some(o) = &self.oidc {
            o.sessions.revoke_sid(sid);
        }
    }

    fn key_changed(&self, hash: &str) {
        self.personal_keys.invalidate(hash);
    }

    fn bindings_changed(&self) {
        self.bindings.changed();
    }

    fn sandbox_changed(&self, id: &str) {
        self.backend.forget(id);
    }

    fn drop_all(&self) {
        if let Some(o) = &self.oidc {
            o.sessions.forget_all();
        }
        self.personal_keys.invalidate_all();
        self.backend.forget_all();
        self.bindings.changed();
    }
}

impl Gateway {
    /// After a successful delete or metadata change of a sandbox: forget its scope here at
    /// once and tell every replica through the change log before the client has the
    /// answer. If the store cannot be written, other replicas keep their entry until the
    /// scope cache's TTL (`scope.cache_ttl_seconds`).
    pub(crate) async fn publish_scope_change(&self, ctx: &RequestCtx) {
        if !matches!(
            ctx.action(),
            Some(Action::SandboxDelete | Action::SandboxMetadata)
        ) {
            return;
        }
        let Some(id) = ctx.sandbox_id() else {
            return;
        };
        self.backend.forget(id);
        match tokio::time::timeout(
            PUBLISH_TIMEOUT,
            self.changes.publish(ChangeKind::Sandbox, id),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, sandbox.id = id, "cannot publish a scope change")
            }
            Err(_) => tracing::warn!(sandbox.id = id, "publishing a scope change timed out"),
        }
    }
}

impl Gateway {
    /// A scoped sandbox read: the sandbox the backend returned must carry the caller's
    /// scope. The scope cache answered before the request was forwarded; if the sandbox
    /// moved out of the caller's scope since (through another replica, before its change
    /// reached this one), the answer is the backend's own not-found, and the stale entry
    /// goes.
    pub(crate) fn recheck_read_scope(
        &self,
        body: &[u8],
        ctx: &mut RequestCtx,
    ) -> Result<(), crate::error::GatewayError> {
        let Some(scope) = &ctx.scope else {
            return Ok(());
        };
        // The usual answer: one pass over the bytes, no allocation.
        if gatehouse_scope::body::sandbox_in_scope(body, scope, &self.keys) {
            return Ok(());
        }
        let id = ctx.sandbox_id().unwrap_or_default().to_owned();
        let md = gatehouse_scope::body::sandbox_metadata(body).map_err(|e| {
            tracing::error!(error = %e, "a sandbox read's body has no readable metadata");
            crate::error::GatewayError::internal()
        })?;
        if scope.allows(&md, &self.keys) {
            return Ok(());
        }
        self.backend.forget(&id);
        ctx.reason = Some("GATEWAY::OUT_OF_SCOPE".into());
        Err(crate::error::GatewayError::sandbox_not_found(&id))
    }
}
