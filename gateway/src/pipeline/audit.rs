//! The end of every request, answered, forwarded or failed: the request's log line, the
//! scope cache forgetting a deleted sandbox, and one audit event per mutation and per
//! denial. It runs when the response body has been sent or abandoned
//! ([`crate::http::Logged`]), so streamed responses are logged once they end.

use crate::ctx::RequestCtx;
use crate::state::Gateway;
use gatehouse_audit::{AuditEvent, AuditPrincipal, Outcome};
use gatehouse_authz::Action;

/// The access log's target, whose lines are written in batches.
const ACCESS_LOG: &str = gatehouse_telemetry::ACCESS_LOG_TARGET;

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
        // secrets), no header values. Written in batches (gatehouse_telemetry::Batched).
        tracing::info!(
            target: ACCESS_LOG,
            {
                http.method = method.as_str(),
                http.path = %ctx.path,
                http.status = status,
                principal.subject = %ctx.principal.subject,
                principal.method = ctx.principal.method.as_str(),
                action = action.map(|a| a.as_str()).unwrap_or("-"),
                duration_ms = elapsed,
                complete = !failed,
            },
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
        if let Some(events) = &self.events {
            events.after_response(ctx, status);
        }
        if action == Some(Action::SandboxDelete) && (200..300).contains(&status) {
            if let Some(id) = ctx.sandbox_id() {
                self.backend.forget(id);
            }
        }
        // A non-safe request through the server proxy (a command run through the
        // sandbox's agent from the console's terminal, say) is audited like a mutation.
        let proxied_write = action == Some(Action::SandboxProxy) && !method.is_safe();
        let mutation = action.is_some_and(|a| a.is_mutation()) || proxied_write;
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
            id: uuid::Uuid::new_v4().to_string(),
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
            on_behalf_of: ctx.on_behalf_of.clone(),
        });
    }
}

impl Gateway {
    /// Audits a change made through the gateway's own routes (`key:create`,
    /// `binding:put`, ...), which the role table does not know: one `allowed` event.
    pub fn audit_change(
        &self,
        ctx: &RequestCtx,
        method: &str,
        action: &str,
        target: Option<&str>,
        status: u16,
    ) {
        let p = &ctx.principal;
        self.audit.record(AuditEvent {
            id: uuid::Uuid::new_v4().to_string(),
            time: gatehouse_lifecycle::time::format(&chrono::Utc::now()),
            request_id: ctx.request_id.clone(),
            principal: AuditPrincipal {
                subject: p.subject.clone(),
                team: p.team.clone(),
                role: ctx.role.clone(),
                auth_method: p.method.as_str().to_string(),
                key_name: p.key_name.clone(),
            },
            action: Some(action.to_string()),
            sandbox_id: target.map(str::to_owned),
            method: method.to_owned(),
            path: ctx.path.clone(),
            status,
            outcome: Outcome::Allowed,
            reason: None,
            duration_ms: ctx.started.elapsed().as_secs_f64() * 1000.0,
            peer: ctx.peer.map(|ip| ip.to_string()),
            on_behalf_of: ctx.on_behalf_of.clone(),
        });
    }
}
