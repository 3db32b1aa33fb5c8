//! The end of every request, answered, forwarded or failed: the request's log line, the
//! scope cache forgetting a deleted sandbox, and one audit event per mutation and per
//! denial. It runs when the response body has been sent or abandoned
//! ([`crate::http::Logged`]), so streamed responses are logged once they end.

use crate::ctx::RequestCtx;
use crate::state::Gateway;
use gatehouse_audit::{AuditEvent, AuditPrincipal, Outcome};
use gatehouse_authz::Action;

/// How the response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The whole response was sent.
    Complete,
    /// The body broke off (backend error or client gone).
    Broken,
}

impl Gateway {
    /// Logs and audits one finished request.
    pub fn finish_request(&self, method: &http::Method, ending: Ending, ctx: &RequestCtx) {
        let failed = ending == Ending::Broken;
        let status = ctx
            .status
            .or(ctx.upstream_status)
            .unwrap_or(if failed { 502 } else { 0 });
        let elapsed = ctx.started.elapsed().as_secs_f64() * 1000.0;
        let action = ctx.action();
        // The access log: the canonical path (never the query, which may carry
        // secrets), no header values.
        tracing::info!(
            http.method = method.as_str(),
            http.path = %ctx.path,
            http.status = status,
            principal.subject = %ctx.principal.subject,
            principal.method = ctx.principal.method.as_str(),
            action = action.map(|a| a.as_str()).unwrap_or("-"),
            duration_ms = elapsed,
            complete = !failed,
            "request"
        );
        let outcome = if ctx.denied {
            crate::metrics::Outcome::Denied
        } else if failed || ctx.reason.as_deref() == Some("GATEWAY::UPSTREAM_UNAVAILABLE") {
            crate::metrics::Outcome::Failed
        } else if ctx.upstream_status.is_some() {
            crate::metrics::Outcome::Forwarded
        } else {
            crate::metrics::Outcome::Answered
        };
        self.metrics.request(action, status, outcome);
        if action == Some(Action::SandboxDelete) && (200..300).contains(&status) {
            if let Some(id) = ctx.sandbox_id() {
                self.backend.forget(id);
            }
        }
        let mutation = action.is_some_and(|a| a.is_mutation());
        if !(ctx.denied || mutation) {
            return;
        }
        let outcome = if ctx.denied {
            Outcome::Denied
        } else if status >= 400 || failed || status == 0 {
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
            method: method.as_str().to_owned(),
            path: ctx.path.clone(),
            status,
            outcome,
            reason: ctx.reason.clone(),
            duration_ms: elapsed,
            peer: ctx.peer.map(|ip| ip.to_string()),
        });
    }
}
