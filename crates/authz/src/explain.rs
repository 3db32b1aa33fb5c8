//! `RoleTable::explain`: a readable account of one decision, for operators
//! (`gatehouse policy explain`).

use crate::action::Target;
use crate::normalize::normalize;
use crate::table::{RoleTable, ScopeMode};

impl RoleTable {
    /// Explains, in a few lines, how the table decides `method path` for `role`: the
    /// normalized path and mount, the matched route and action, the role's verdict
    /// (`ALLOW`/`DENY`) and how the request is scoped. `path` is a raw request path.
    pub fn explain(&self, role: &str, method: &str, path: &str) -> String {
        let mut lines = vec![format!("request:  {method} {path} as role '{role}'")];
        let np = match normalize(path) {
            Ok(np) => np,
            Err(e) => {
                lines.push(format!("path:     rejected: {e}"));
                lines.push("decision: DENY (400, bad path)".to_owned());
                return lines.join("\n");
            }
        };
        let mount = match np.mount.prefix() {
            "" => "/",
            p => p,
        };
        lines.push(format!(
            "path:     {} (mount {mount}, api path {})",
            np.path, np.api_path
        ));
        let segs = crate::route::split_path(&np.api_path);
        let found = self
            .routes
            .iter()
            .find_map(|r| r.matches(method, &segs).map(|m| (r.method.as_str(), m)));
        let Some((route_method, route)) = found else {
            lines.push("route:    no route: denied".to_owned());
            lines.push("decision: DENY (404, unknown route)".to_owned());
            return lines.join("\n");
        };
        let caps: Vec<String> = route
            .params
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        let caps = if caps.is_empty() {
            String::new()
        } else {
            format!(" ({})", caps.join(", "))
        };
        lines.push(format!(
            "route:    {route_method} {} -> {}{caps}",
            route.pattern, route.action
        ));
        let allowed = self.allows(role, route.action);
        let verdict = if !self.has_role(role) {
            format!("'{role}' is not a role of this table: DENY")
        } else if allowed {
            format!("{role} has {}: ALLOW", route.action)
        } else {
            format!("{role} lacks {}: DENY", route.action)
        };
        lines.push(format!("role:     {verdict}"));
        lines.push(format!(
            "scope:    {}",
            self.scope_line(role, route.action.target(), &route)
        ));
        lines.push(
            if allowed {
                "decision: ALLOW"
            } else {
                "decision: DENY (403, forbidden)"
            }
            .to_owned(),
        );
        lines.join("\n")
    }

    fn scope_line(&self, role: &str, target: Target, route: &crate::RouteMatch) -> String {
        if role == crate::SERVICE_ADMIN && target != Target::Public {
            return "service_admin bypasses scope checks".to_owned();
        }
        let whose = match self.scope() {
            ScopeMode::Team => "the caller's team",
            ScopeMode::Owner => "the caller",
        };
        match target {
            Target::Public => "public: needs no identity and no scope".to_owned(),
            Target::Collection => {
                format!("collection: the list is filtered to sandboxes of {whose}")
            }
            Target::Create => {
                "create: the caller's owner/team are written into the new sandbox".to_owned()
            }
            Target::Sandbox => format!(
                "sandbox '{}': it must belong to {whose}",
                route.sandbox_id.as_deref().unwrap_or("?")
            ),
            Target::Unscoped => {
                "unscoped: no sandbox to scope against; only service_admin may use it".to_owned()
            }
            Target::Gateway => {
                "gateway endpoint: answered by the gateway, which narrows it to the caller"
                    .to_owned()
            }
        }
    }
}
