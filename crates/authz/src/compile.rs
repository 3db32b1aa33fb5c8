//! Validation: turns the TOML table into a [`RoleTable`], or names the first bad entry.

use std::collections::{BTreeMap, HashMap};

use crate::action::{Action, Target};
use crate::raw::{RawAuthz, RawRole, RawRoute, RawTable};
use crate::route::Pattern;
use crate::table::{ActionSet, MethodSpec, RoleDef, RoleTable, RouteEntry};

/// Validates a parsed table. The error names the entry, e.g.
/// `routes[12]: unknown action 'sandbox:explode'`.
pub(crate) fn compile(raw: RawTable) -> Result<RoleTable, String> {
    let roles = resolve_roles(&raw.roles)?;
    check_authz(&raw.authz, &roles)?;
    let routes = compile_routes(&raw.routes)?;
    let RawAuthz {
        default_role,
        scope,
        service_admin_subjects,
        operator_subjects,
        read_only_subjects,
        group_roles,
        group_names_are_roles,
    } = raw.authz;
    Ok(RoleTable {
        roles,
        default_role,
        scope,
        service_admin_subjects,
        operator_subjects,
        read_only_subjects,
        group_roles: group_roles.into_iter().collect(),
        group_names_are_roles,
        routes,
    })
}

fn resolve_roles(raw: &BTreeMap<String, RawRole>) -> Result<HashMap<String, RoleDef>, String> {
    for (name, role) in raw {
        if !valid_role_name(name) {
            return Err(format!(
                "roles.{name:?}: a role name is letters, digits and '_', '-', '.', ':'"
            ));
        }
        for (i, a) in role.actions.iter().enumerate() {
            if a != "*" && a.parse::<Action>().is_err() {
                return Err(format!("roles.{name}.actions[{i}]: unknown action '{a}'"));
            }
        }
        for parent in &role.inherits {
            if !raw.contains_key(parent) {
                return Err(format!("roles.{name}.inherits: unknown role '{parent}'"));
            }
        }
    }
    let mut done = HashMap::new();
    for name in raw.keys() {
        resolve(name, raw, &mut done, &mut Vec::new())?;
    }
    Ok(done)
}

/// Resolves one role and what it inherits, depth first; `stack` detects cycles.
fn resolve(
    name: &str,
    raw: &BTreeMap<String, RawRole>,
    done: &mut HashMap<String, RoleDef>,
    stack: &mut Vec<String>,
) -> Result<RoleDef, String> {
    if let Some(def) = done.get(name) {
        return Ok(*def);
    }
    if let Some(pos) = stack.iter().position(|s| s == name) {
        let mut cycle = stack[pos..].to_vec();
        cycle.push(name.to_owned());
        return Err(format!(
            "roles.{}.inherits: cycle {}",
            stack[pos],
            cycle.join(" -> ")
        ));
    }
    let Some(role) = raw.get(name) else {
        return Err(format!("unknown role '{name}'"));
    };
    stack.push(name.to_owned());
    let mut def = RoleDef::default();
    for a in &role.actions {
        if a == "*" {
            def.wildcard = true;
            def.actions = ActionSet::all();
        } else if let Ok(action) = a.parse::<Action>() {
            def.actions.insert(action);
        }
    }
    for parent in &role.inherits {
        let p = resolve(parent, raw, done, stack)?;
        def.actions.union(p.actions);
        def.wildcard |= p.wildcard;
    }
    stack.pop();
    done.insert(name.to_owned(), def);
    Ok(def)
}

fn valid_role_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

fn check_authz(authz: &RawAuthz, roles: &HashMap<String, RoleDef>) -> Result<(), String> {
    if !roles.contains_key(&authz.default_role) {
        return Err(format!(
            "authz.default_role: unknown role '{}'",
            authz.default_role
        ));
    }
    let lists = [
        (
            "service_admin_subjects",
            &authz.service_admin_subjects,
            crate::SERVICE_ADMIN,
        ),
        (
            "operator_subjects",
            &authz.operator_subjects,
            crate::OPERATOR,
        ),
        (
            "read_only_subjects",
            &authz.read_only_subjects,
            crate::READ_ONLY,
        ),
    ];
    for (key, list, role) in lists {
        if !list.is_empty() && !roles.contains_key(role) {
            return Err(format!("authz.{key}: role '{role}' is not defined"));
        }
        if let Some(i) = list.iter().position(|s| s.is_empty()) {
            return Err(format!("authz.{key}[{i}]: empty subject"));
        }
    }
    for (group, role) in &authz.group_roles {
        if group.is_empty() {
            return Err("authz.group_roles: empty group name".to_owned());
        }
        if !roles.contains_key(role) {
            return Err(format!("authz.group_roles.{group}: unknown role '{role}'"));
        }
    }
    Ok(())
}

fn compile_routes(raw: &[RawRoute]) -> Result<Vec<RouteEntry>, String> {
    let mut out: Vec<RouteEntry> = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let method = parse_method(&r.method).map_err(|e| format!("routes[{i}]: {e}"))?;
        let pattern = Pattern::parse(&r.path).map_err(|e| format!("routes[{i}]: {e}"))?;
        let action = r
            .action
            .parse::<Action>()
            .map_err(|e| format!("routes[{i}]: {e}"))?;
        // The gateway's own endpoints live under /gatehouse/ and nowhere else: a gateway
        // action on an API path (or the reverse) would authorize the wrong thing.
        let own_path = r.path.starts_with("/gatehouse/");
        if own_path != (action.target() == Target::Gateway) {
            return Err(format!(
                "routes[{i}]: {} {} with action '{action}': gateway actions belong to \
                 /gatehouse/ paths and only they do",
                method.as_str(),
                r.path
            ));
        }
        let entry = RouteEntry {
            method,
            pattern,
            action,
        };
        for (j, prev) in out.iter().enumerate() {
            let name = format!("{} {}", entry.method.as_str(), entry.pattern.text());
            if prev.method == entry.method && prev.pattern.shape() == entry.pattern.shape() {
                return Err(format!(
                    "routes[{i}]: duplicate route {name} (already routes[{j}])"
                ));
            }
            if methods_overlap(&prev.method, &entry.method) && prev.pattern.overlaps(&entry.pattern)
            {
                return Err(format!(
                    "routes[{i}]: {name} overlaps routes[{j}] ({} {}): one request could match both",
                    prev.method.as_str(),
                    prev.pattern.text()
                ));
            }
        }
        out.push(entry);
    }
    Ok(out)
}

fn parse_method(m: &str) -> Result<MethodSpec, String> {
    if m == "*" {
        return Ok(MethodSpec::Any);
    }
    let upper = m.to_ascii_uppercase();
    if upper.is_empty() || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "bad method '{m}' (use an HTTP method such as GET, or \"*\")"
        ));
    }
    if upper == "HEAD" {
        return Err("HEAD needs no entry: HEAD requests match GET routes".to_owned());
    }
    Ok(MethodSpec::Exact(upper))
}

fn methods_overlap(a: &MethodSpec, b: &MethodSpec) -> bool {
    match (a, b) {
        (MethodSpec::Exact(x), MethodSpec::Exact(y)) => x == y,
        _ => true,
    }
}
