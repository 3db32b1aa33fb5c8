//! Sandbox content on its own origin: `{id}-{port}.{sandbox_domain}` (config
//! `server.sandbox_domain`; in development `localhost`, whose subdomains browsers resolve
//! to loopback). The console origin then never serves sandbox bytes to a browser, and a
//! sandbox page cannot reach the console's cookies: they are host-only, and the console
//! session cookie is never accepted here.
//!
//! A browser gets in through a hand-off: the console (signed in) asks
//! `POST /auth/sandbox-handoff?sandbox={id}&port={port}` for a URL; the gateway checks that
//! the caller may use the proxy of that sandbox and answers
//! `{scheme}://{id}-{port}.{domain}[:port]/.gatehouse/handoff?t=...`, where `t` is a JWT
//! the gateway signs (Ed25519, `typ` `gatehouse-handoff+jwt`, `aud` = that origin's host,
//! 30 s, a `jti` redeemable once). The sandbox origin redeems it, sets a host-only
//! `gatehouse_sandbox` cookie valid for that one origin, and redirects to the path asked
//! for. Each request there is then authorized as the proxy route (`sandbox:proxy` and the
//! caller's scope, from the current role table).

use crate::signing::KeyRing;
use data_encoding::BASE64URL_NOPAD;
use gatehouse_authn::{AuthMethod, Principal, PrincipalKind};
use moka::sync::Cache;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a hand-off is redeemed, on the sandbox origin.
pub const HANDOFF_PATH: &str = "/.gatehouse/handoff";

/// The host-only cookie of a sandbox origin.
pub const SANDBOX_COOKIE: &str = "gatehouse_sandbox";

/// The JOSE `typ` of a hand-off token.
const HANDOFF_TYP: &str = "gatehouse-handoff+jwt";

/// Seconds a hand-off can be redeemed.
const HANDOFF_SECONDS: u64 = 30;

/// Seconds a sandbox-origin session lasts without use.
const IDLE_SECONDS: u64 = 3600;

/// The `{id}-{port}` label of a sandbox-origin host under `domain` (the `Host` may carry
/// a port).
pub fn parse_host<'a>(host: &'a str, domain: &str) -> Option<(&'a str, u16)> {
    let name = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let label = name
        .strip_suffix(domain)?
        .strip_suffix('.')
        .filter(|l| !l.is_empty() && !l.contains('.'))?;
    let (id, port) = label.rsplit_once('-')?;
    let ok_id = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok_id.then_some(())?;
    Some((id, port.parse().ok().filter(|p| *p > 0)?))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Handoff {
    sub: String,
    team: Option<String>,
    groups: Vec<String>,
    role: Option<String>,
    kind: String,
    auth: String,
    aud: String,
    exp: u64,
    jti: String,
}

/// Who a sandbox-origin cookie stands for, and the one origin it is valid on.
#[derive(Debug)]
pub struct OriginSession {
    /// The origin's host (without port).
    pub host: String,
    /// The caller, as the console authenticated them.
    pub principal: Principal,
}

/// Hand-offs and the sessions they start.
pub struct SandboxOrigins {
    domain: String,
    key: Arc<KeyRing>,
    secure: bool,
    redeemed: Cache<String, ()>,
    sessions: Cache<[u8; 32], Arc<OriginSession>>,
}

impl std::fmt::Debug for SandboxOrigins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxOrigins")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random() -> String {
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    BASE64URL_NOPAD.encode(&b)
}

impl SandboxOrigins {
    /// Origins under `domain`, hand-offs signed with `key`; cookies `Secure` when `secure`.
    pub fn new(domain: &str, key: Arc<KeyRing>, secure: bool) -> Self {
        Self {
            domain: domain.trim_matches('.').to_ascii_lowercase(),
            key,
            secure,
            redeemed: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(HANDOFF_SECONDS * 2))
                .build(),
            sessions: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(IDLE_SECONDS))
                .build(),
        }
    }

    /// The sandbox and port a request's `Host` names, when it is a sandbox origin.
    pub fn parse<'a>(&self, host: &'a str) -> Option<(&'a str, u16)> {
        parse_host(host, &self.domain)
    }

    /// The hand-off URL for `p` to sandbox `id` port `port`; `console` is the console's
    /// origin (`scheme://host[:port]`), whose scheme and port the sandbox origin shares.
    pub fn mint(
        &self,
        p: &Principal,
        id: &str,
        port: u16,
        console: &str,
        path: &str,
    ) -> Option<String> {
        let (scheme, rest) = console.split_once("://")?;
        let gw_port = rest
            .rsplit_once(':')
            .map(|(_, p)| p)
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        let host = format!("{id}-{port}.{}", self.domain);
        let claims = Handoff {
            sub: p.subject.clone(),
            team: p.team.clone(),
            groups: p.groups.clone(),
            role: p.role.clone(),
            kind: format!("{:?}", p.kind),
            auth: p.method.as_str().to_owned(),
            aud: host.clone(),
            exp: now() + HANDOFF_SECONDS,
            jti: random(),
        };
        let t = self.key.sign(HANDOFF_TYP, &claims).ok()?;
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("t", &t).append_pair("path", path);
        let port_part = gw_port.map(|p| format!(":{p}")).unwrap_or_default();
        Some(format!(
            "{scheme}://{host}{port_part}{HANDOFF_PATH}?{}",
            q.finish()
        ))
    }

    /// Redeems a hand-off on `host` (once); the new session's cookie value.
    pub fn redeem(&self, token: &str, host: &str) -> Option<String> {
        let name = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
        let h: Handoff = self.key.verify(token, HANDOFF_TYP, &name).ok()?;
        if self.redeemed.contains_key(&h.jti) {
            return None;
        }
        self.redeemed.insert(h.jti.clone(), ());
        let kind = match h.kind.as_str() {
            "Service" => PrincipalKind::Service,
            "User" => PrincipalKind::User,
            _ => return None,
        };
        let method = match h.auth.as_str() {
            "api_key" => AuthMethod::ApiKey,
            "trusted_header" => AuthMethod::TrustedHeader,
            "session" => AuthMethod::Session,
            "bearer" => AuthMethod::Bearer,
            _ => return None,
        };
        let principal = Principal {
            kind,
            subject: h.sub,
            team: h.team,
            groups: h.groups,
            role: h.role,
            method,
            key_name: None,
        };
        let value = random();
        let key: [u8; 32] = Sha256::digest(value.as_bytes()).into();
        self.sessions.insert(
            key,
            Arc::new(OriginSession {
                host: name,
                principal,
            }),
        );
        Some(value)
    }

    /// The session a request's sandbox cookie names, valid on `host` only.
    pub fn session(&self, headers: &http::HeaderMap, host: &str) -> Option<Arc<OriginSession>> {
        let v = crate::cookies::cookie_value(headers, SANDBOX_COOKIE)?;
        let key: [u8; 32] = Sha256::digest(v.as_bytes()).into();
        let s = self.sessions.get(&key)?;
        let name = host.split(':').next().unwrap_or(host);
        s.host.eq_ignore_ascii_case(name).then_some(s)
    }

    /// The host-only `Set-Cookie` for a redeemed hand-off.
    pub fn set_cookie(&self, value: &str) -> String {
        format!(
            "{SANDBOX_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={IDLE_SECONDS}{}",
            if self.secure { "; Secure" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_hosts_parse() {
        let d = "localhost";
        assert_eq!(
            parse_host("abc-12-8080.localhost:9000", d),
            Some(("abc-12", 8080))
        );
        assert_eq!(parse_host("abc-8080.localhost", d), Some(("abc", 8080)));
        for bad in [
            "localhost:9000",
            "abc.localhost",
            "abc-0.localhost",
            "a.abc-80.localhost",
            "abc-80.evil.localhost.example",
            "abc-80xlocalhost",
            "-80.localhost",
            "abc_x-80.localhost",
        ] {
            assert_eq!(parse_host(bad, d), None, "{bad}");
        }
    }

    #[test]
    fn handoffs_redeem_once_on_their_own_origin() {
        let key = Arc::new(KeyRing::fixed(
            crate::signing_key::SigningKey::load_or_generate(None).unwrap(),
        ));
        let o = SandboxOrigins::new("localhost", key, false);
        let mut p = Principal::anonymous();
        p.kind = PrincipalKind::User;
        p.subject = "alice".into();
        p.method = AuthMethod::Session;
        let url = o
            .mint(&p, "sbx", 8080, "http://localhost:9000", "/")
            .unwrap();
        assert!(
            url.starts_with("http://sbx-8080.localhost:9000/.gatehouse/handoff?t="),
            "{url}"
        );
        let t: String = form_urlencoded::parse(url.split_once('?').unwrap().1.as_bytes())
            .find(|(k, _)| k == "t")
            .unwrap()
            .1
            .into_owned();
        assert!(
            o.redeem(&t, "other-8080.localhost:9000").is_none(),
            "another origin"
        );
        let c = o.redeem(&t, "sbx-8080.localhost:9000").unwrap();
        assert!(
            o.redeem(&t, "sbx-8080.localhost:9000").is_none(),
            "single use"
        );
        let mut h = http::HeaderMap::new();
        h.insert("cookie", format!("{SANDBOX_COOKIE}={c}").parse().unwrap());
        assert_eq!(
            o.session(&h, "sbx-8080.localhost:9000")
                .unwrap()
                .principal
                .subject,
            "alice"
        );
        assert!(o.session(&h, "sbx-8081.localhost:9000").is_none());
    }
}
