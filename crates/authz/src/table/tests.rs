use proptest::prelude::*;

use crate::{normalize, Action, Denial, PolicyError, RoleTable, ScopeMode, Target};

fn default_table() -> RoleTable {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/roles.toml");
    RoleTable::load(std::path::Path::new(path)).unwrap()
}

fn can(table: &RoleTable, role: &str, method: &str, path: &str) -> bool {
    let np = normalize(path).unwrap();
    match table.authorize(role, method, &np.api_path) {
        Ok(_) => true,
        Err(Denial::Forbidden { .. }) => false,
        Err(Denial::UnknownRoute) => panic!("{method} {path} has no route"),
    }
}

const MUTATIONS: [(&str, &str); 9] = [
    ("POST", "/v1/sandboxes"),
    ("DELETE", "/v1/sandboxes/s"),
    ("POST", "/v1/sandboxes/s/renew-expiration"),
    ("POST", "/v1/sandboxes/s/pause"),
    ("POST", "/v1/sandboxes/s/resume"),
    ("PATCH", "/v1/sandboxes/s/metadata"),
    ("GET", "/v1/sandboxes/s/proxy/8080"),
    ("POST", "/v1/sandboxes/s/proxy/8080/api/run"),
    ("POST", "/v1/sandboxes/s/snapshots"),
];

const READS: [(&str, &str); 5] = [
    ("GET", "/v1/sandboxes"),
    ("GET", "/v1/sandboxes/s"),
    ("GET", "/v1/sandboxes/s/endpoints/8080"),
    ("GET", "/health"),
    ("GET", "/version"),
];

const ADMIN_ONLY: [(&str, &str); 9] = [
    ("GET", "/v1/snapshots"),
    ("DELETE", "/v1/snapshots/x"),
    ("POST", "/v1/pools"),
    ("PUT", "/v1/pools/p"),
    ("GET", "/v1/templates/t"),
    ("POST", "/v1/templates"),
    ("POST", "/v1/metrics/events"),
    ("PUT", "/v1/sandboxes/s/networkpolicy"),
    ("DELETE", "/v1/sandboxes/s/networkpolicy"),
];

#[test]
fn role_matrix() {
    let t = default_table();
    for (m, p) in READS {
        for role in ["read_only", "operator", "service_admin"] {
            assert!(can(&t, role, m, p), "{role} should {m} {p}");
        }
    }
    for (m, p) in MUTATIONS {
        assert!(!can(&t, "read_only", m, p), "read_only must not {m} {p}");
        assert!(can(&t, "operator", m, p), "operator should {m} {p}");
        assert!(
            can(&t, "service_admin", m, p),
            "service_admin should {m} {p}"
        );
    }
    for (m, p) in ADMIN_ONLY {
        assert!(!can(&t, "read_only", m, p), "read_only must not {m} {p}");
        assert!(!can(&t, "operator", m, p), "operator must not {m} {p}");
        assert!(
            can(&t, "service_admin", m, p),
            "service_admin should {m} {p}"
        );
    }
    assert!(can(
        &t,
        "operator",
        "GET",
        "/v1/sandboxes/s/diagnostics/logs"
    ));
    assert!(can(&t, "operator", "GET", "/v1/sandboxes/s/networkpolicy"));
    assert!(!can(
        &t,
        "read_only",
        "GET",
        "/v1/sandboxes/s/diagnostics/logs"
    ));
    for (m, p) in READS.iter().chain(&MUTATIONS).chain(&ADMIN_ONLY) {
        assert!(!can(&t, "nobody", m, p), "an unknown role must not {m} {p}");
        assert!(!can(&t, "", m, p), "the empty role must not {m} {p}");
    }
}

#[test]
fn permissions_are_resolved_and_sorted() {
    let t = default_table();
    assert_eq!(
        t.permissions("read_only"),
        vec![
            Action::SandboxList,
            Action::SandboxRead,
            Action::SandboxEndpoint,
            Action::SystemHealth,
            Action::SystemVersion,
            Action::ApiKeyManage,
            Action::EventsRead,
            Action::QuotaRead
        ]
    );
    let op = t.permissions("operator");
    assert_eq!(op.len(), 19);
    assert!(op.windows(2).all(|w| w[0] < w[1]));
    assert!(op.contains(&Action::SandboxList) && op.contains(&Action::SandboxProxy));
    assert_eq!(t.permissions("service_admin"), Action::ALL.to_vec());
    assert!(t.permissions("nobody").is_empty());
    assert_eq!(
        t.role_names(),
        vec![
            "operator",
            "platform_controller",
            "read_only",
            "sandbox",
            "service_admin"
        ]
    );
    assert_eq!(t.default_role(), "read_only");
    assert_eq!(t.scope(), ScopeMode::Team);
}

#[test]
fn permit_carries_the_route() {
    let t = default_table();
    let np = normalize("/v1/sandboxes/sbx-1/proxy/8080/a/b").unwrap();
    let p = t.authorize("operator", "PUT", &np.api_path).unwrap();
    assert_eq!(p.action(), Action::SandboxProxy);
    assert_eq!(p.role(), "operator");
    assert_eq!(p.target(), Target::Sandbox);
    assert_eq!(
        p.route().pattern,
        "/sandboxes/{sandboxId}/proxy/{port}/{path*}"
    );
    assert_eq!(p.route().sandbox_id.as_deref(), Some("sbx-1"));
    assert_eq!(p.route().port.as_deref(), Some("8080"));
    assert_eq!(p.route().tail.as_deref(), Some("a/b"));
    let d = t.authorize("read_only", "POST", "/sandboxes").unwrap_err();
    assert_eq!(
        d,
        Denial::Forbidden {
            role: "read_only".into(),
            action: Action::SandboxCreate
        }
    );
    assert_eq!(
        d.to_string(),
        "role 'read_only' does not allow 'sandbox:create'"
    );
    assert_eq!(t.route("GET", "/sandboxes").unwrap().tail, None);
    assert_eq!(
        t.route("get", "/sandboxes"),
        None,
        "methods are case-sensitive"
    );
}

fn bindings(authz: &str) -> RoleTable {
    let text = format!(
        r#"
[roles.read_only]
actions = ["sandbox:list"]
[roles.operator]
inherits = ["read_only"]
actions = ["sandbox:create"]
[roles.service_admin]
actions = ["*"]
[roles.auditor]
actions = []
[authz]
{authz}
"#
    );
    RoleTable::parse(&text).unwrap()
}

#[test]
fn resolve_role_picks_the_most_privileged_binding() {
    let t = bindings(
        r#"default_role = "read_only"
service_admin_subjects = ["root"]
operator_subjects = ["alice", "root"]
read_only_subjects = ["bob"]
[authz.group_roles]
"sandbox-operators" = "operator"
"auditors" = "auditor"
"#,
    );
    let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(t.resolve_role_with("root", &[], true), "service_admin");
    assert_eq!(t.resolve_role_with("alice", &[], true), "operator");
    assert_eq!(t.resolve_role_with("bob", &[], true), "read_only");
    assert_eq!(
        t.resolve_role_with("bob", &g(&["sandbox-operators"]), true),
        "operator"
    );
    assert_eq!(
        t.resolve_role_with("carol", &[], true),
        "read_only",
        "default role"
    );
    assert_eq!(
        t.resolve_role_with("carol", &g(&["unknown"]), true),
        "read_only"
    );
    assert_eq!(
        t.resolve_role_with("carol", &g(&["operator"]), true),
        "operator",
        "group named like a role"
    );
    assert_eq!(
        t.resolve_role_with("carol", &g(&["service_admin", "read_only"]), true),
        "service_admin"
    );
    assert_eq!(
        t.resolve_role_with("alice", &g(&["service_admin"]), true),
        "service_admin"
    );
    // An explicit binding wins over the default, even a weaker one.
    assert_eq!(
        t.resolve_role_with("carol", &g(&["auditors"]), true),
        "auditor"
    );
    assert_eq!(
        t.resolve_role_with("carol", &g(&["auditors", "read_only"]), true),
        "read_only"
    );
    assert_eq!(t.resolve_role_with("", &[], true), "read_only");
}

/// An IdP group named like a role grants nothing unless the table says so.
#[test]
fn group_named_like_a_role_grants_it_only_when_enabled() {
    let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let off = bindings("default_role = \"read_only\"");
    assert_eq!(
        off.resolve_role("mallory", &g(&["service_admin"])),
        "read_only"
    );
    assert_eq!(off.resolve_role("mallory", &g(&["operator"])), "read_only");
    assert_eq!(
        off.resolve_role_with("proxy-user", &g(&["operator"]), true),
        "operator",
        "a trusted proxy's roles header names roles"
    );
    let on = bindings("default_role = \"read_only\"\ngroup_names_are_roles = true");
    assert_eq!(on.resolve_role("mallory", &g(&["operator"])), "operator");
}

#[test]
fn resolve_role_default_can_be_any_role() {
    let t = bindings("default_role = \"auditor\"\nscope = \"owner\"");
    assert_eq!(t.resolve_role("x", &[]), "auditor");
    assert_eq!(t.scope(), ScopeMode::Owner);
}

fn invalid(text: &str) -> String {
    match RoleTable::parse(text) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted:\n{text}"),
    }
}

const ROLES: &str = "[roles.read_only]\nactions = [\"sandbox:read\"]\n";

#[test]
fn validation_names_the_bad_entry() {
    let route = |m: &str, p: &str, a: &str| {
        format!("[[routes]]\nmethod = \"{m}\"\npath = \"{p}\"\naction = \"{a}\"\n")
    };
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{ROLES}{}", route("GET", "/a", "sandbox:explode")),
            "routes[0]: unknown action 'sandbox:explode'",
        ),
        (
            format!(
                "{ROLES}{}{}",
                route("GET", "/a/{x}", "sandbox:read"),
                route("GET", "/a/{y}", "sandbox:read")
            ),
            "routes[1]: duplicate route GET /a/{y} (already routes[0])",
        ),
        (
            format!(
                "{ROLES}{}{}",
                route("GET", "/a/{x}", "sandbox:read"),
                route("*", "/a/b", "sandbox:read")
            ),
            "routes[1]: * /a/b overlaps routes[0] (GET /a/{x})",
        ),
        (
            format!("{ROLES}{}", route("HEAD", "/a", "sandbox:read")),
            "routes[0]: HEAD needs no entry",
        ),
        (
            format!("{ROLES}{}", route("G T", "/a", "sandbox:read")),
            "routes[0]: bad method 'G T'",
        ),
        (
            format!("{ROLES}{}", route("GET", "/v1/a", "sandbox:read")),
            "routes[0]: path '/v1/a': write API paths without the /v1 mount",
        ),
        (
            format!("{ROLES}{}", route("GET", "/a/", "sandbox:read")),
            "routes[0]: path '/a/'",
        ),
        (
            format!("{ROLES}[roles.operator]\ninherits = [\"ops\"]\n"),
            "roles.operator.inherits: unknown role 'ops'",
        ),
        (
            format!("{ROLES}[roles.a]\ninherits = [\"b\"]\n[roles.b]\ninherits = [\"a\"]\n"),
            "roles.a.inherits: cycle a -> b -> a",
        ),
        (
            format!("{ROLES}[roles.a]\nactions = [\"sandbox:read\", \"nope\"]\n"),
            "roles.a.actions[1]: unknown action 'nope'",
        ),
        (
            format!("{ROLES}[authz]\ndefault_role = \"admin\"\n"),
            "authz.default_role: unknown role 'admin'",
        ),
        ("[roles.x]\n[authz]\ndefault_role = \"x\"\n".to_owned(), ""),
        (
            "[roles.x]\n".to_owned(),
            "authz.default_role: unknown role 'read_only'",
        ),
        (
            format!("{ROLES}[authz]\noperator_subjects = [\"alice\"]\n"),
            "authz.operator_subjects: role 'operator' is not defined",
        ),
        (
            format!("{ROLES}[authz]\nread_only_subjects = [\"\"]\n"),
            "authz.read_only_subjects[0]: empty subject",
        ),
        (
            format!("{ROLES}[authz.group_roles]\ndevs = \"dev\"\n"),
            "authz.group_roles.devs: unknown role 'dev'",
        ),
        (
            format!("{ROLES}[roles.\"a b\"]\n"),
            "roles.\"a b\": a role name is",
        ),
    ];
    for (text, want) in cases {
        if want.is_empty() {
            RoleTable::parse(&text).unwrap();
            continue;
        }
        let got = invalid(&text);
        assert!(got.contains(want), "want {want:?}, got {got:?}");
    }
}

#[test]
fn unknown_keys_are_rejected() {
    for text in [
        "[roles.read_only]\nactoins = []\n",
        "[roles.read_only]\n[authz]\ndefault_rol = \"read_only\"\n",
        "[roles.read_only]\n[[routes]]\nmethod = \"GET\"\npath = \"/a\"\naction = \"sandbox:read\"\nextra = 1\n",
        "[roles.read_only]\n[authz]\nscope = \"world\"\n",
        "[roles.read_only]\n[policy]\n",
    ] {
        assert!(matches!(RoleTable::parse(text), Err(PolicyError::Parse(_))), "{text}");
    }
    let e = RoleTable::load(std::path::Path::new("/nonexistent/roles.toml")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/roles.toml"), "{e}");
}

#[test]
fn explain_reads_well() {
    let t = default_table();
    let s = t.explain("read_only", "GET", "/v1/sandboxes/x/../sbx-1");
    assert!(
        s.contains("/v1/sandboxes/sbx-1 (mount /v1, api path /sandboxes/sbx-1)"),
        "{s}"
    );
    assert!(
        s.contains("/sandboxes/{sandboxId} -> sandbox:read (sandboxId=sbx-1)"),
        "{s}"
    );
    assert!(s.contains("read_only has sandbox:read: ALLOW"), "{s}");
    assert!(
        s.contains("sandbox 'sbx-1': it must belong to the caller's team"),
        "{s}"
    );
    assert!(s.ends_with("decision: ALLOW"), "{s}");
    let s = t.explain("read_only", "POST", "/sandboxes");
    assert!(
        s.contains("mount /,") && s.contains("read_only lacks sandbox:create: DENY"),
        "{s}"
    );
    assert!(s.ends_with("DENY (403, forbidden)"), "{s}");
    let s = t.explain("operator", "GET", "/v1/secrets");
    assert!(s.contains("no route: denied"), "{s}");
    let s = t.explain("operator", "GET", "/v1/a%2Fb");
    assert!(s.contains("rejected") && s.contains("%2F"), "{s}");
    let s = t.explain("ghost", "GET", "/health");
    assert!(
        s.contains("'ghost' is not a role of this table: DENY"),
        "{s}"
    );
    let s = t.explain("service_admin", "DELETE", "/v1/pools/p");
    assert!(s.contains("service_admin bypasses scope checks"), "{s}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn routing_never_panics_and_params_are_single_segments(
        method in "GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|[A-Za-z]{0,7}",
        path in "(/(sandboxes|proxy|snapshots|pools|v1|[a-z0-9.%-]{0,4})){0,7}/?|[^/]{0,6}",
    ) {
        static TABLE: std::sync::OnceLock<RoleTable> = std::sync::OnceLock::new();
        let t = TABLE.get_or_init(default_table);
        if let Some(m) = t.route(&method, &path) {
            for (name, value) in &m.params {
                prop_assert!(!value.is_empty(), "{} empty in {:?}", name, path);
                if Some(value) != m.tail.as_ref() {
                    prop_assert!(!value.contains('/'), "{} = {:?} in {:?}", name, value, path);
                }
            }
        }
        let _ = t.authorize("operator", &method, &path);
        let _ = t.explain("operator", &method, &path);
    }
}

#[test]
fn permits_carry_the_scope_only_for_scoped_roles() {
    let t = default_table();
    let admin = t.authorize("service_admin", "GET", "/sandboxes").unwrap();
    assert_eq!(admin.scope_mode(), None, "service_admin is never scoped");
    let op = t.authorize("operator", "GET", "/sandboxes/sbx-1").unwrap();
    assert_eq!(op.scope_mode(), Some(t.scope()));
    assert_eq!(op.sandbox_id(), Some("sbx-1"));
}
