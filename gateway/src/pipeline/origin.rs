//! Requests to a sandbox's own origin (`{id}-{port}.{sandbox_domain}`): the hand-off
//! redemption, then every other request as the proxy route of that sandbox port, for the
//! caller the origin's cookie names ([`crate::sandbox_origin`]).

use super::admit::Admitted;
use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::http::inbound::Inbound;
use crate::reply::Reply;
use crate::sandbox_origin::{SandboxOrigins, HANDOFF_PATH};
use crate::state::Gateway;

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Sibling sandbox origins are one site, so `SameSite` does not keep one sandbox's page
/// from posting to another's with the viewer's cookie: a mutating request that a browser
/// marks as coming from another origin is refused (safe methods and non-browser clients,
/// which send no `Origin`, pass).
fn same_origin_mutation(req: &Inbound, host: &str) -> bool {
    use http::Method;
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    let h = req.headers();
    let site_ok = h
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|s| s == "same-origin" || s == "none");
    let origin_ok = h
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|o| {
            o.strip_prefix("https://")
                .or_else(|| o.strip_prefix("http://"))
                .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
        });
    site_ok && origin_ok
}

impl Gateway {
    /// Admits a request on a sandbox origin.
    pub(super) async fn admit_sandbox_origin(
        &self,
        origins: &SandboxOrigins,
        id: &str,
        port: u16,
        req: &mut Inbound,
        ctx: &mut RequestCtx,
    ) -> Result<Admitted, GatewayError> {
        ctx.sandbox_origin = true;
        let host = req.host().to_owned();
        if req.parts.uri.path() == HANDOFF_PATH {
            let path = query_param(req.query(), "path")
                .filter(|p| crate::routes::auth::safe_return_to(p))
                .unwrap_or_else(|| "/".into());
            let cookie = query_param(req.query(), "t")
                .and_then(|t| origins.redeem(&t, &host))
                .ok_or_else(|| {
                    GatewayError::new(
                        401,
                        "GATEWAY::HANDOFF_INVALID",
                        "This link has expired or was already used; open the sandbox from the console again.",
                    )
                })?;
            return Ok(Admitted::Answer(
                Reply::redirect(&path).cookie(origins.set_cookie(&cookie)),
            ));
        }
        let session = origins.session(req.headers(), &host).ok_or_else(|| {
            GatewayError::new(
                401,
                "GATEWAY::SANDBOX_ORIGIN_SIGNIN",
                "Open this sandbox from the console to sign in to it.",
            )
        })?;
        if !same_origin_mutation(req, &host) {
            return Err(GatewayError::new(
                403,
                "GATEWAY::CSRF",
                "Cross-origin request to a sandbox origin refused.",
            ));
        }
        ctx.principal = session.principal.clone();
        let pq = req.parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let proxied = format!("/v1/sandboxes/{id}/proxy/{port}{pq}");
        req.parts.uri = proxied
            .parse()
            .map_err(|_| GatewayError::bad_path("The path is not valid."))?;
        let path = self.normalize(req, ctx)?;
        let table = self.policy.current();
        self.resolve_role(&table, ctx);
        let Some(permit) = self.authorize(&table, req, ctx, &path)? else {
            return Err(GatewayError::new(
                403,
                "GATEWAY::FORBIDDEN",
                "This sandbox origin serves only the sandbox's port.",
            ));
        };
        if permit.action() != gatehouse_authz::Action::SandboxProxy {
            return Err(GatewayError::new(
                403,
                "GATEWAY::FORBIDDEN",
                "This sandbox origin serves only the sandbox's port.",
            ));
        }
        let scoped = self.apply_scope(req, ctx, &permit).await;
        ctx.permit = Some(permit);
        scoped.map(|()| Admitted::Forward)
    }
}
