//! `logging`: runs for every request, answered, forwarded or failed. It writes the
//! request's log line, forgets a deleted sandbox's cached scope, and records one audit
//! event per mutation and per denial.

use crate::ctx::RequestCtx;
use crate::state::Gateway;
use gatehouse_audit::{AuditEvent, AuditPrincipal, Outcome};
use gatehouse_authz::Action;
use pingora::proxy::Session;
use pingora::Error;

impl Gateway {
    /// The end of every request.
    pub(crate) async fn finish_request(
        &self,
        session: &Session,
        e: Option<&Error>,
        ctx: &RequestCtx,
    ) {
        let status = ctx
            .status
            .or_else(|| session.response_written().map(|r| r.status.as_u16()))
            .unwrap_or(if e.is_some() { 502 } else { 0 });
        let elapsed = ctx.started.elapsed().as_secs_f64() * 1000.0;
        let method = session.req_header().method.as_str();
        let action = ctx.action();
        tracing::debug!(
            http.method = method,
            http.path = %ctx.path,
            http.status = status,
            principal.subject = %ctx.principal.subject,
            principal.method = ctx.principal.method.as_str(),
            action = action.map(|a| a.as_str()).unwrap_or("-"),
            duration_ms = elapsed,
            "request"
        );
        if action == Some(Action::SandboxDelete) && (200..300).contains(&status) {
            if let Some(id) = ctx.sandbox_id() {
                self.backend.forget(id).await;
            }
        }
        let mutation = action.is_some_and(|a| a.is_mutation());
        if !(ctx.denied || mutation) {
            return;
        }
        let outcome = if ctx.denied {
            Outcome::Denied
        } else if status >= 400 || e.is_some() || status == 0 {
            Outcome::Error
        } else {
            Outcome::Allowed
        };
        let p = &ctx.principal;
        self.audit.record(AuditEvent {
            time: gatehouse_lifecycle::time::format(&chrono::Utc::now()),
            request_id: ctx.request_id.clone(),
            principal: AuditPrincipal {
                subject: p.subject.clone(),
                team: p.team.clone(),
                role: ctx.role.clone(),
                auth_method: p.method.as_str().to_string(),
                key_name: p.key_name.clone(),
            },
            action: action.map(|a| a.as_str().to_string()),
            sandbox_id: ctx.sandbox_id().map(str::to_owned),
            method: method.to_owned(),
            path: ctx.path.clone(),
            status,
            outcome,
            reason: ctx.reason.clone(),
            duration_ms: elapsed,
            peer: ctx.peer.map(|ip| ip.to_string()),
        });
    }
}
