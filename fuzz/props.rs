//! Properties the fuzz targets check, one function per target. Each takes the raw fuzz
//! input and panics (through `assert!`) when a property fails; inputs a property has
//! nothing to say about return early.
//!
//! Shared by the libFuzzer targets (`fuzz/fuzz_targets/`, nightly) and the corpus replay
//! of `make test` (`tests/e2e/fuzz_corpus.rs`, stable), which include this file by path.

use std::sync::OnceLock;

use gatehouse_authn::oidc::jwks::{checked_header, parse_alg, Expect};
use gatehouse_authn::oidc::session::cookie_value;
use gatehouse_authz::{normalize, Denial, Mount, RoleTable};
use gatehouse_scope::body::{all_in_scope, filter_list};
use gatehouse_scope::{Scope, ScopeKeys, ScopeMode};
use serde_json::Value;

/// The default role table, the one the routes of these properties come from.
const ROLES_TOML: &str = include_str!("../policies/roles.toml");

/// The fuzz targets, by name: the directories of `fuzz/corpus/`.
pub const TARGETS: [&str; 5] = [
    "normalize_path",
    "route_match",
    "scope_list",
    "cookie_header",
    "jwt_header",
];

// ------------------------------------------------------------------------------------
// Path normalizer (`gatehouse_authz::normalize`).
// ------------------------------------------------------------------------------------

/// The normalizer accepts a path only in a canonical form that normalizes to itself:
/// absolute, no empty, `.` or `..` segments, no trailing `/`, only characters RFC 3986
/// allows in a path, escapes in upper-case hex and never of `/`, `\`, a control
/// character or an unreserved character; its mount and API path add up to it.
pub fn normalize_path(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let Ok(n) = normalize(&raw) else {
        return;
    };
    let p = n.path.as_str();
    assert!(p.starts_with('/'), "{raw:?} -> {p:?}: not absolute");
    assert!(!p.contains("//"), "{raw:?} -> {p:?}: empty segment");
    assert!(
        p == "/" || !p.ends_with('/'),
        "{raw:?} -> {p:?}: trailing /"
    );
    for seg in p.split('/').skip(1) {
        assert!(
            seg != "." && seg != "..",
            "{raw:?} -> {p:?}: dot segment left"
        );
    }
    let bytes = p.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).unwrap_or_default();
            assert!(
                hex.len() == 2 && hex.iter().all(|h| b"0123456789ABCDEF".contains(h)),
                "{raw:?} -> {p:?}: escape not in upper-case hex"
            );
            let v = u8::from_str_radix(std::str::from_utf8(hex).unwrap_or("00"), 16).unwrap_or(0);
            assert!(
                !is_unreserved(v) && v != b'/' && v != b'\\' && !v.is_ascii_control(),
                "{raw:?} -> {p:?}: escape %{v:02X} must have been decoded or refused"
            );
            i += 3;
            continue;
        }
        assert!(
            is_unreserved(b) || b"!$&'()*+,;=:@/".contains(&b),
            "{raw:?} -> {p:?}: byte {b:#04x} is not allowed raw in a path"
        );
        i += 1;
    }
    match n.mount {
        Mount::V1 => {
            let tail = if n.api_path == "/" { "" } else { &n.api_path };
            assert_eq!(p, format!("/v1{tail}"), "{raw:?}: mount and API path");
        }
        Mount::Root => {
            assert_eq!(p, n.api_path, "{raw:?}: API path of the root mount");
            assert!(
                p != "/v1" && !p.starts_with("/v1/"),
                "{raw:?} -> {p:?}: /v1 not taken as the mount"
            );
        }
    }
    assert_eq!(
        normalize(p).as_ref(),
        Ok(&n),
        "{raw:?}: normalizing is not idempotent"
    );
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

// ------------------------------------------------------------------------------------
// Route matcher (`RoleTable::route` / `authorize` over the default role table).
// ------------------------------------------------------------------------------------

/// Methods the route target tries; the first input byte picks one.
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "get",
];

/// One `[[routes]]` entry as written, for the reference matcher.
struct RefRoute {
    method: String,
    path: String,
    action: String,
}

fn table() -> &'static Option<RoleTable> {
    static TABLE: OnceLock<Option<RoleTable>> = OnceLock::new();
    TABLE.get_or_init(|| RoleTable::parse(ROLES_TOML).ok())
}

fn reference_routes() -> &'static [RefRoute] {
    static ROUTES: OnceLock<Vec<RefRoute>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let v: toml::Value = toml::from_str(ROLES_TOML).unwrap_or(toml::Value::Integer(0));
        let field = |r: &toml::Value, k: &str| {
            r.get(k)
                .and_then(toml::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        v.get("routes")
            .and_then(toml::Value::as_array)
            .map(|rs| {
                rs.iter()
                    .map(|r| RefRoute {
                        method: field(r, "method"),
                        path: field(r, "path"),
                        action: field(r, "action"),
                    })
                    .collect()
            })
            .unwrap_or_default()
    })
}

fn segments(path: &str) -> Vec<&str> {
    match path.strip_prefix('/') {
        Some("") | None => Vec::new(),
        Some(rest) => rest.split('/').collect(),
    }
}

impl RefRoute {
    /// A plain reading of the pattern language: literals match themselves, `{x}` one
    /// non-empty segment other than `.`/`..`, a final `{x*}` one or more such segments.
    fn matches(&self, method: &str, api_path: &str) -> bool {
        let method_ok = self.method == "*"
            || self.method == method
            || (method == "HEAD" && self.method == "GET");
        if !method_ok {
            return false;
        }
        let pat = segments(&self.path);
        let got = segments(api_path);
        let value = |s: &&str| !s.is_empty() && *s != "." && *s != "..";
        for (i, p) in pat.iter().enumerate() {
            if p.starts_with('{') && p.ends_with("*}") {
                return got.len() > i && got[i..].iter().all(value);
            }
            let Some(g) = got.get(i) else {
                return false;
            };
            if p.starts_with('{') {
                if !value(g) {
                    return false;
                }
            } else if p != g {
                return false;
            }
        }
        got.len() == pat.len()
    }

    /// The path segment a `{name}` parameter captures.
    fn param<'a>(&self, name: &str, api_path: &'a str) -> Option<&'a str> {
        let at = segments(&self.path)
            .iter()
            .position(|s| *s == format!("{{{name}}}"))?;
        segments(api_path).get(at).copied()
    }
}

/// Routing is deterministic, agrees with a plain reading of the table (at most one entry
/// matches a path; no match means no route, never a guessed one), captures the path's own
/// segments, and `authorize` decides on exactly the route `route` finds.
pub fn route_match(data: &[u8]) {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let method = METHODS[usize::from(m) % METHODS.len()];
    let raw = String::from_utf8_lossy(rest);
    let Ok(n) = normalize(&raw) else {
        return;
    };
    let api = n.api_path.as_str();
    assert!(table().is_some(), "policies/roles.toml does not load");
    let Some(t) = table() else {
        return;
    };
    let got = t.route(method, api);
    assert_eq!(
        got,
        t.route(method, api),
        "{method} {api}: not deterministic"
    );
    let refs: Vec<&RefRoute> = reference_routes()
        .iter()
        .filter(|r| r.matches(method, api))
        .collect();
    assert!(
        refs.len() <= 1,
        "{method} {api}: {} entries match",
        refs.len()
    );
    assert_eq!(
        got.as_ref().map(|g| g.pattern.as_str()),
        refs.first().map(|r| r.path.as_str()),
        "{method} {api}: the matcher and the table disagree"
    );
    if let (Some(g), Some(r)) = (&got, refs.first()) {
        assert_eq!(g.action.as_str(), r.action, "{method} {api}: wrong action");
        assert_eq!(
            g.sandbox_id.as_deref(),
            r.param("sandboxId", api),
            "{method} {api}: sandboxId"
        );
        assert_eq!(
            g.port.as_deref(),
            r.param("port", api),
            "{method} {api}: port"
        );
    }
    for role in ["read_only", "operator", "service_admin", "no_such_role"] {
        match t.authorize(role, method, api) {
            Ok(permit) => {
                assert_eq!(Some(permit.route()), got.as_ref(), "{role} {method} {api}");
                assert!(t.allows(role, permit.action()), "{role} {method} {api}");
            }
            Err(Denial::UnknownRoute) => {
                assert!(got.is_none(), "{role} {method} {api}: route exists")
            }
            Err(Denial::Forbidden { action, .. }) => {
                assert_eq!(got.as_ref().map(|g| g.action), Some(action));
                assert!(!t.allows(role, action), "{role} {method} {api}");
            }
        }
    }
}

// ------------------------------------------------------------------------------------
// List scope scanner (`all_in_scope`, the fast path, and `filter_list`, the fallback).
// ------------------------------------------------------------------------------------

/// The principals the scope target checks a list body against (the seeds carry their
/// tokens): alice of team-a in team and owner mode, and bob without a team.
fn scopes() -> &'static [Scope; 3] {
    static SCOPES: OnceLock<[Scope; 3]> = OnceLock::new();
    SCOPES.get_or_init(|| {
        [
            Scope::for_principal("alice@example.com", Some("team-a"), ScopeMode::Team),
            Scope::for_principal("alice@example.com", Some("team-a"), ScopeMode::Owner),
            Scope::for_principal("bob", None, ScopeMode::Team),
        ]
    })
}

/// An independent reading of "in scope": the item's `metadata` object maps the scope key
/// to the scope value as a JSON string.
fn item_in_scope(item: &Value, key: &str, value: &str) -> bool {
    item.get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        == Some(value)
}

/// A body as a lenient client reads it. The fast scan skips what it does not need without
/// validating it (as it may): strings it skips or reads as bytes may hold invalid UTF-8,
/// raw control characters or lone surrogate escapes, and numbers it skips may be out of
/// range. Here such strings get U+FFFD / `\\u00XX` instead and numbers become `0`; none
/// of it can end a string, start an escape or end a value, so the JSON structure is the
/// one the scan saw.
fn lenient(body: &[u8]) -> String {
    let mut out = Vec::with_capacity(body.len());
    let (mut in_str, mut in_num) = (false, false);
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        i += 1;
        if in_str {
            match b {
                b'"' => in_str = false,
                b'\\' => {
                    let Some(&e) = body.get(i) else {
                        out.push(b);
                        continue;
                    };
                    i += 1;
                    let hex = body.get(i..i + 4).and_then(|h| std::str::from_utf8(h).ok());
                    let unit = hex.and_then(|h| u16::from_str_radix(h, 16).ok());
                    if e == b'u' && unit.is_some_and(|u| (0xD800..0xE000).contains(&u)) {
                        out.extend_from_slice(b"\\uFFFD");
                        i += 4;
                    } else {
                        out.extend_from_slice(&[b, e]);
                    }
                    continue;
                }
                _ if b < 0x20 => {
                    out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
                    continue;
                }
                _ => {}
            }
            out.push(b);
            continue;
        }
        let starts = b == b'-' || b.is_ascii_digit();
        let continues = starts || matches!(b, b'+' | b'.' | b'e' | b'E');
        if in_num && continues {
            continue;
        }
        in_num = starts;
        if starts {
            out.push(b'0');
            continue;
        }
        in_str = b == b'"';
        out.push(b);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether every item of a list body is in scope, as a lenient client reads the body.
fn items_in_scope(body: &[u8], key: &str, value: &str) -> Option<bool> {
    let v: Value = serde_json::from_str(&lenient(body)).ok()?;
    let items = v.get("items")?.as_array()?;
    Some(items.iter().all(|i| item_in_scope(i, key, value)))
}

/// For arbitrary bytes, what the gateway forwards for a scoped list never holds an item
/// out of scope: when the fast scan says "all in scope" the body really is (and, for valid
/// UTF-8, the full filter agrees, dropping nothing); when the filter rewrites a body, its output is all in
/// scope, passes the fast scan, and filtering it again changes nothing.
pub fn scope_list(data: &[u8]) {
    let keys = ScopeKeys::default();
    for scope in scopes() {
        let (key, value) = scope.filter_pair(&keys);
        let fast = all_in_scope(data, scope, &keys);
        let slow = filter_list(data, scope, &keys);
        if fast {
            assert_eq!(
                items_in_scope(data, key, value),
                Some(true),
                "the fast scan passed a body with an item out of scope"
            );
            // The filter parses strictly: it refuses what the scan let through in strings
            // it skips (invalid UTF-8, raw control characters).
            if serde_json::from_slice::<Value>(data).is_ok() {
                assert!(
                    matches!(slow, Ok((_, 0))),
                    "the fast scan and the filter disagree: {slow:?}"
                );
            }
        }
        if let Ok((out, dropped)) = slow {
            assert_eq!(
                items_in_scope(&out, key, value),
                Some(true),
                "the filter kept an item out of scope"
            );
            assert!(
                all_in_scope(&out, scope, &keys),
                "the fast scan refuses the filter's own output"
            );
            assert!(
                matches!(filter_list(&out, scope, &keys), Ok((_, 0))),
                "filtering is not idempotent"
            );
            if dropped == 0 {
                assert_eq!(items_in_scope(data, key, value), Some(true));
            }
        }
    }
}

// ------------------------------------------------------------------------------------
// Cookie header parsing (`cookie_value`, the gateway's `strip_own_cookies`).
// ------------------------------------------------------------------------------------

/// The gateway's own cookie names (session and login).
const OWN: [&str; 2] = ["gatehouse_session", "gatehouse_login"];

/// The gateway's cookie stripper, passed in by the caller (the fuzz crate compiles it from
/// source; the replay test uses the gateway crate).
pub type StripFn = fn(&str, &[&str]) -> Option<String>;

fn header_map(value: &str) -> Option<http::HeaderMap> {
    let v = http::HeaderValue::from_str(value).ok()?;
    let mut h = http::HeaderMap::new();
    h.insert(http::header::COOKIE, v);
    Some(h)
}

/// The pairs of a `Cookie` header as a lenient server reads them (Go's `net/http`,
/// Python's `http.cookies`): split at `;`, name and value trimmed.
fn lenient_names(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(';')
        .map(|kv| kv.split_once('=').map_or(kv, |(k, _)| k).trim())
}

/// First byte even: the input is a raw `Cookie` header. Stripping the gateway's cookies
/// leaves none a lenient server would read as one of them, keeps every other pair in
/// order, and is idempotent; `cookie_value` then finds no own cookie.
///
/// First byte odd: the input spells name/value pairs that are serialized as a browser
/// does; `cookie_value` reads back the value of each name sent once (none when sent twice) and stripping leaves
/// exactly the other pairs (round trip).
pub fn cookie_header(data: &[u8], strip: StripFn) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        raw_cookie_header(&String::from_utf8_lossy(rest), strip);
    } else {
        cookie_round_trip(rest, strip);
    }
}

fn raw_cookie_header(value: &str, strip: StripFn) {
    let out = strip(value, &OWN);
    let Some(out) = out else {
        return;
    };
    for name in lenient_names(&out) {
        assert!(
            !OWN.contains(&name),
            "{value:?} -> {out:?}: the gateway cookie {name} is forwarded"
        );
    }
    assert_eq!(
        strip(&out, &OWN).as_deref(),
        Some(out.as_str()),
        "stripping is not idempotent"
    );
    let kept: Vec<&str> = value
        .split(';')
        .map(str::trim)
        .filter(|kv| !kv.is_empty())
        .filter(|kv| !OWN.contains(&kv.split_once('=').map_or(*kv, |(k, _)| k).trim()))
        .collect();
    assert_eq!(
        out,
        kept.join("; "),
        "{value:?}: other cookies must be kept"
    );
    if let Some(h) = header_map(&out) {
        for name in OWN {
            assert_eq!(cookie_value(&h, name), None, "{out:?}: {name}");
        }
    }
}

/// Cookie name characters (RFC 6265 token) and value characters (cookie-octet).
const NAME_CHARS: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~";
const VALUE_CHARS: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'()*+-./:<=>?@[]^_`{|}~";

fn cookie_round_trip(data: &[u8], strip: StripFn) {
    // Pairs are separated by 0xFF; within a pair, the first 0xFE splits name and value.
    // A name byte 0..4 stands for one of the gateway's names (so they come up often).
    let mut pairs: Vec<(String, String)> = Vec::new();
    for chunk in data.split(|b| *b == 0xFF).take(32) {
        let (n, v) = match chunk.iter().position(|b| *b == 0xFE) {
            Some(i) => (&chunk[..i], &chunk[i + 1..]),
            None => (chunk, &[][..]),
        };
        let name: String = match n {
            [b] if *b < 4 => OWN[usize::from(*b) % 2].to_owned(),
            _ => n
                .iter()
                .map(|b| char::from(NAME_CHARS[usize::from(*b) % NAME_CHARS.len()]))
                .collect(),
        };
        if name.is_empty() {
            continue;
        }
        let value: String = v
            .iter()
            .map(|b| char::from(VALUE_CHARS[usize::from(*b) % VALUE_CHARS.len()]))
            .collect();
        pairs.push((name, value));
    }
    if pairs.is_empty() {
        return;
    }
    let header: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let header = header.join("; ");
    let h = header_map(&header);
    assert!(h.is_some(), "{header:?} is not a valid header value");
    let Some(h) = h else {
        return;
    };
    for (name, _) in &pairs {
        // Sent once: its value. Sent twice or more (a planted twin): ambiguous, so none.
        let mut sent = pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        let want = match (sent.next(), sent.next()) {
            (Some(v), None) => Some(v),
            _ => None,
        };
        assert_eq!(cookie_value(&h, name), want, "{header:?}: {name}");
    }
    let others: Vec<String> = pairs
        .iter()
        .filter(|(n, _)| !OWN.contains(&n.as_str()))
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    let want = (!others.is_empty()).then(|| others.join("; "));
    assert_eq!(strip(&header, &OWN), want, "{header:?}");
}

// ------------------------------------------------------------------------------------
// JWT header checks (`gatehouse_authn::oidc::jwks::checked_header`).
// ------------------------------------------------------------------------------------

fn expect() -> &'static Expect {
    static EXPECT: OnceLock<Expect> = OnceLock::new();
    EXPECT.get_or_init(|| Expect {
        issuer: "http://127.0.0.1:9/".into(),
        audiences: vec!["gatehouse".into()],
        algorithms: ["RS256", "ES256", "EdDSA", "HS256"]
            .iter()
            .filter_map(|a| parse_alg(a))
            .collect(),
        leeway: 0,
        require_exp: true,
        // Any `typ`: the corpus covers the header checks that come before it.
        types: Vec::new(),
    })
}

/// First byte even: the input is the whole token. Odd: the input is the header's JSON,
/// encoded and joined with a payload and signature as a token would be.
///
/// A header the gateway accepts is the first of exactly three dot-separated parts, is
/// unpadded base64url of a JSON object whose `alg` is the algorithm reported (one the
/// configuration allows, asymmetric: never `none` or HMAC) and whose `kid` is the key id
/// reported.
pub fn jwt_header(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let b64 = &data_encoding::BASE64URL_NOPAD;
        format!(
            "{}.{}.c2ln",
            b64.encode(rest),
            b64.encode(br#"{"sub":"alice","iss":"http://127.0.0.1:9/","aud":"gatehouse"}"#)
        )
    };
    let Ok(h) = checked_header(&token, expect()) else {
        return;
    };
    let alg = format!("{:?}", h.alg);
    assert!(
        expect().algorithms.contains(&h.alg),
        "{token:?}: {alg} is not allowed"
    );
    assert!(
        !alg.starts_with("HS") && alg != "None",
        "{token:?}: a symmetric algorithm passed"
    );
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token:?}: not three parts");
    let json = data_encoding::BASE64URL_NOPAD
        .decode(parts[0].as_bytes())
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    assert!(
        json.is_some(),
        "{token:?}: the header is not base64url JSON"
    );
    let json = json.unwrap_or_default();
    assert_eq!(
        json.get("alg").and_then(Value::as_str),
        Some(alg.as_str()),
        "{token:?}: alg"
    );
    assert_eq!(
        json.get("kid").and_then(Value::as_str),
        Some(h.kid.as_str()),
        "{token:?}: kid"
    );
}
