//! `request_filter`: decide whether a request is forwarded, answered by the gateway, or
//! refused. It reads as the list of steps in [`Gateway::admit`]; each step either moves
//! on or stops the request with a [`GatewayError`], which is answered as a denial.

use crate::ctx::{RequestCtx, ResponseRewrite};
use crate::error::GatewayError;
use crate::http::inbound::Inbound;
use crate::reply::Reply;
use crate::routes::{self, OwnRoute};
use crate::state::Gateway;
use gatehouse_authn::{AuthMethod, PrincipalKind, RequestView};
use gatehouse_authz::{
    normalize, Action, Denial, Mount, NormalizedPath, Permit, RoleTable, Target,
};
use gatehouse_lifecycle::wire::REQUEST_ID_HEADER;
use tracing::Instrument;

/// The authentication method a rejection belongs to, for the metrics label.
fn auth_failure_method(e: &gatehouse_authn::AuthError) -> &'static str {
    use gatehouse_authn::AuthError;
    match e {
        AuthError::InvalidApiKey => "api_key",
        AuthError::MissingIdentity { .. } | AuthError::InvalidIdentity { .. } => "trusted_header",
        AuthError::Rejected { code, .. } if code.contains("SESSION") => "session",
        AuthError::Rejected { code, .. } if code.contains("SANDBOX") => "sandbox_token",
        AuthError::Rejected { code, .. } if code.contains("SERVICE_ACCOUNT") => "service_account",
        AuthError::Forbidden { .. } => "service_account",
        AuthError::Rejected { .. } => "bearer",
        AuthError::Unavailable { dependency } if dependency.contains("Kubernetes") => {
            "service_account"
        }
        AuthError::Unavailable { .. } => "personal_key",
    }
}

/// What `request_filter` decided.
pub enum Admitted {
    /// Forward to the backend.
    Forward,
    /// The gateway answers with this response.
    Answer(Reply),
}

impl Gateway {
    /// The request pipeline up to forwarding. Errors are denials.
    pub(crate) async fn admit(
        &self,
        req: &mut Inbound,
        ctx: &mut RequestCtx,
    ) -> Result<Admitted, GatewayError> {
        if crate::cors::Cors::is_preflight(req.method(), req.headers()) {
            return Ok(Admitted::Answer(self.cors.preflight(req.headers())));
        }
        if let Some(origins) = &self.sandbox_origins {
            if let Some((id, port)) = origins.parse(req.host()) {
                let id = id.to_owned();
                return self
                    .admit_sandbox_origin(origins, &id, port, req, ctx)
                    .await;
            }
        }
        let path = self.normalize(req, ctx)?;
        let own = OwnRoute::resolve(req.method(), &path.path);
        if let Some(route) = own.filter(|r| !r.needs_caller()) {
            return Ok(self.serve_own(route, req, ctx).await);
        }
        self.authenticate(req, ctx)
            .instrument(phase_span!("authn"))
            .await?;
        let table = self.policy.current();
        self.resolve_role(&table, ctx);
        self.rate_limit(ctx)?;
        self.check_csrf(req, ctx).await?;
        if let Some(route) = own {
            if route.governed() {
                let permit = self.authorize_own(&table, req, ctx, &path)?;
                ctx.permit = Some(permit);
            }
            return Ok(self.serve_own(route, req, ctx).await);
        }
        let Some(permit) = self.authorize(&table, req, ctx, &path)? else {
            return Ok(Admitted::Forward);
        };
        self.plan_rewrite(req, ctx, &permit);
        if let Some(own) = ctx.principal.sandbox_id().map(str::to_owned) {
            return self.admit_sandbox_principal(req, ctx, permit, &own).await;
        }
        let scoped = self
            .apply_scope(req, ctx, &permit)
            .instrument(phase_span!("scope"))
            .await;
        let create = permit.target() == Target::Create;
        ctx.permit = Some(permit);
        scoped?;
        if create {
            // Idempotency-Key replay and quotas (crate::limits).
            if let Some(replay) = self.admit_create(req, ctx).await? {
                return Ok(Admitted::Answer(replay));
            }
        }
        Ok(Admitted::Forward)
    }

    /// Request id, client address and the request's span: the first step of every request.
    pub(crate) fn begin(&self, req: &Inbound, ctx: &mut RequestCtx) {
        let sent = req.headers().get(REQUEST_ID_HEADER);
        ctx.request_id =
            gatehouse_lifecycle::wire::request_id(sent.map(http::HeaderValue::as_bytes));
        ctx.request_id_value = match sent {
            // The client's own (valid) id: its header value is sent on as it is.
            Some(v) if v.as_bytes() == ctx.request_id.as_bytes() => Some(v.clone()),
            _ => http::HeaderValue::from_str(&ctx.request_id).ok(),
        };
        ctx.span = tracing::info_span!("request", request.id = %ctx.request_id);
        gatehouse_telemetry::set_parent(&ctx.span, req.headers());
        ctx.peer = req.peer;
    }

    /// One canonical spelling of the path, or 400.
    pub(super) fn normalize(
        &self,
        req: &Inbound,
        ctx: &mut RequestCtx,
    ) -> Result<NormalizedPath, GatewayError> {
        let np =
            normalize(req.parts.uri.path()).map_err(|e| GatewayError::bad_path(e.to_string()))?;
        ctx.path.clone_from(&np.path);
        ctx.mount = if np.mount == Mount::V1 { "/v1" } else { "" };
        Ok(np)
    }

    /// The gateway's own route; its errors are answers, not denials (a route marks its
    /// own denials in `ctx`).
    async fn serve_own(
        &self,
        route: OwnRoute,
        req: &mut Inbound,
        ctx: &mut RequestCtx,
    ) -> Admitted {
        match routes::serve(self, route, req, ctx).await {
            Ok(reply) => Admitted::Answer(reply),
            Err(e) => {
                ctx.reason.get_or_insert_with(|| e.code().to_owned());
                Admitted::Answer(e.reply())
            }
        }
    }

    /// The authenticator chain: a principal (possibly anonymous) or 401.
    async fn authenticate(&self, req: &Inbound, ctx: &mut RequestCtx) -> Result<(), GatewayError> {
        let view = RequestView {
            peer: ctx.peer,
            headers: req.headers(),
        };
        ctx.principal = self.chain.authenticate(&view).await.map_err(|e| {
            self.metrics.auth_failure(auth_failure_method(&e), e.code());
            let err = GatewayError::new(e.status(), e.code(), e.message());
            if e.status() == 503 {
                err.with_retry_after(2)
            } else {
                err
            }
        })?;
        Ok(())
    }

    /// The caller's role: fixed by the authenticator, else from the role table.
    pub(super) fn resolve_role(&self, table: &RoleTable, ctx: &mut RequestCtx) {
        let p = &ctx.principal;
        if p.kind == PrincipalKind::Anonymous {
            return;
        }
        let role = match &p.role {
            Some(r) => r.clone(),
            // Store bindings first (RBAC, `/gatehouse/v1/bindings`), then the static table.
            // A trusted proxy's roles header names roles; IdP groups grant a role by
            // name only when the table says so (`group_names_are_roles`).
            None => match self.bindings.resolve(table, &p.subject, &p.groups) {
                Some(grant) => {
                    if grant.team.is_some() {
                        ctx.principal.team = grant.team;
                    }
                    grant.role
                }
                None => table.resolve_role_with(
                    &p.subject,
                    &p.groups,
                    p.method == AuthMethod::TrustedHeader || table.group_names_are_roles(),
                ),
            },
        };
        ctx.role = Some(role);
    }

    /// Session-cookie requests must pass the CSRF check.
    async fn check_csrf(&self, req: &Inbound, ctx: &RequestCtx) -> Result<(), GatewayError> {
        if ctx.principal.method != AuthMethod::Session {
            return Ok(());
        }
        crate::csrf::check(&req.parts, self.oidc.as_deref(), &self.hosts).await
    }

    /// The role table's decision: a [`Permit`], `None` to forward unchecked (the backend's
    /// own key on a route the table does not know, or an anonymous call to a public
    /// route), or a refusal.
    pub(super) fn authorize(
        &self,
        table: &RoleTable,
        req: &Inbound,
        ctx: &mut RequestCtx,
        path: &NormalizedPath,
    ) -> Result<Option<Permit>, GatewayError> {
        let _span = phase_span!("authz").entered();
        let method = req.method().as_str();
        let anonymous = ctx.principal.kind == PrincipalKind::Anonymous;
        let role = ctx.role.as_deref().unwrap_or_default();
        match table.authorize(role, method, &path.api_path) {
            Ok(permit) => Ok(Some(permit)),
            // The backend's own key: forwarded unchanged, the backend answers.
            Err(Denial::UnknownRoute) if ctx.principal.passthrough() => Ok(None),
            Err(Denial::UnknownRoute) => Err(GatewayError::new(
                404,
                "GATEWAY::UNKNOWN_ROUTE",
                format!("No route {method} {}.", path.path),
            )),
            Err(Denial::Forbidden { action, .. }) => {
                let public = table
                    .route(method, &path.api_path)
                    .is_some_and(|r| r.action.target() == Target::Public);
                match (anonymous, public) {
                    // Public routes (health, version) need no identity.
                    (true, true) => Ok(None),
                    (true, false) => Err(GatewayError::unauthenticated()),
                    (false, _) => {
                        ctx.denied_action = Some(action);
                        Err(GatewayError::new(
                            403,
                            "GATEWAY::FORBIDDEN",
                            format!("Role '{role}' does not allow '{}'.", action.as_str()),
                        ))
                    }
                }
            }
        }
    }

    /// The role table's decision on one of the gateway's own governed endpoints
    /// (`/gatehouse/v1/...`): a [`Permit`] with [`Target::Gateway`], or a refusal. The
    /// backend's key gets no pass here: these routes exist only in the gateway.
    fn authorize_own(
        &self,
        table: &RoleTable,
        req: &Inbound,
        ctx: &mut RequestCtx,
        path: &NormalizedPath,
    ) -> Result<Permit, GatewayError> {
        let _span = phase_span!("authz").entered();
        let method = req.method().as_str();
        let role = ctx.role.as_deref().unwrap_or_default();
        let unknown = || {
            GatewayError::new(
                404,
                "GATEWAY::UNKNOWN_ROUTE",
                format!("No route {method} {}.", path.path),
            )
        };
        match table.authorize(role, method, &path.api_path) {
            Ok(permit) if permit.target() == Target::Gateway => Ok(permit),
            Ok(_) | Err(Denial::UnknownRoute) => Err(unknown()),
            Err(Denial::Forbidden { .. }) if ctx.principal.kind == PrincipalKind::Anonymous => {
                Err(GatewayError::unauthenticated())
            }
            Err(Denial::Forbidden { action, .. }) => {
                ctx.denied_action = Some(action);
                Err(GatewayError::new(
                    403,
                    "GATEWAY::FORBIDDEN",
                    format!("Role '{role}' does not allow '{}'.", action.as_str()),
                ))
            }
        }
    }

    /// What the response filters must do for this permit.
    fn plan_rewrite(&self, req: &Inbound, ctx: &mut RequestCtx, permit: &Permit) {
        if permit.target() == Target::Create {
            ctx.rewrite = ResponseRewrite::CaptureCreatedId;
        } else if permit.action() == Action::SandboxEndpoint
            && (permit.scope_mode().is_some()
                || gatehouse_lifecycle::query::flag(req.query(), "use_server_proxy"))
        {
            // Only service_admin may learn a direct host port: it serves the sandbox with
            // no authentication. Everyone else is pointed through the gateway.
            ctx.rewrite = ResponseRewrite::EndpointViaGateway;
        }
    }
}
