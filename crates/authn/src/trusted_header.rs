//! The trusted-header authenticator: identity asserted by an authenticating proxy.
//!
//! Only peers inside `trusted_proxies` may assert identity. From any other peer the
//! headers are ignored (`Ok(None)`), and the gateway strips them with
//! [`strip_identity_headers`] before forwarding any request. From a trusted peer a missing
//! user header is a 401, never an anonymous fallback.

use crate::authenticator::{Authenticator, RequestView};
use crate::error::{AuthError, ConfigError};
use crate::principal::{AuthMethod, Principal, PrincipalKind};
use async_trait::async_trait;
use gatehouse_lifecycle::wire::API_KEY_HEADER;
use http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use std::net::IpAddr;

#[cfg(test)]
mod tests;

/// Longest accepted user or team value, and longest single role, in bytes.
pub const MAX_IDENTITY_LEN: usize = 256;

/// Longest accepted roles header (all values together), in bytes.
pub const MAX_ROLES_LEN: usize = 4096;

/// `[auth.trusted_header]`. Every field has a default.
///
/// ```toml
/// [auth.trusted_header]
/// user_header = "X-OpenSandbox-User"
/// team_header = "X-OpenSandbox-Team"
/// roles_header = "X-OpenSandbox-Roles"
/// trusted_proxies = ["10.0.0.0/8", "127.0.0.1"]   # CIDRs or single addresses
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustedHeaderConfig {
    /// Header naming the user (required from a trusted peer).
    pub user_header: String,
    /// Header naming the user's team (optional).
    pub team_header: String,
    /// Header listing the user's groups, comma separated (optional).
    pub roles_header: String,
    /// Peers allowed to assert identity. Empty: nobody (the authenticator never claims).
    #[serde(deserialize_with = "deserialize_proxies")]
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for TrustedHeaderConfig {
    fn default() -> Self {
        Self {
            user_header: "X-OpenSandbox-User".to_string(),
            team_header: "X-OpenSandbox-Team".to_string(),
            roles_header: "X-OpenSandbox-Roles".to_string(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// Parses one `trusted_proxies` entry: a CIDR (`10.0.0.0/8`) or a single address.
pub fn parse_proxy(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("'{s}' is not an IP address or CIDR"))
}

fn deserialize_proxies<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| parse_proxy(s).map_err(serde::de::Error::custom))
        .collect()
}

/// A configured header: the wire name and the name as configured (for messages).
#[derive(Debug, Clone)]
struct Header {
    name: HeaderName,
    display: String,
}

/// Reads identity headers from requests whose peer is a trusted proxy.
#[derive(Debug, Clone)]
pub struct TrustedHeaderAuthenticator {
    user: Header,
    team: Header,
    roles: Header,
    proxies: Vec<IpNet>,
}

impl TrustedHeaderAuthenticator {
    /// Validates the header names (valid, distinct, not the API key header).
    pub fn new(cfg: TrustedHeaderConfig) -> Result<Self, ConfigError> {
        let user = header("user_header", &cfg.user_header)?;
        let team = header("team_header", &cfg.team_header)?;
        let roles = header("roles_header", &cfg.roles_header)?;
        if team.name == user.name {
            return Err(same("team_header", "user_header"));
        }
        if roles.name == user.name {
            return Err(same("roles_header", "user_header"));
        }
        if roles.name == team.name {
            return Err(same("roles_header", "team_header"));
        }
        Ok(Self {
            user,
            team,
            roles,
            proxies: cfg.trusted_proxies,
        })
    }

    /// The user, team and roles header names: strip them from every forwarded request.
    pub fn identity_header_names(&self) -> [&HeaderName; 3] {
        [&self.user.name, &self.team.name, &self.roles.name]
    }

    /// Removes this authenticator's identity headers (every value) from `headers`.
    pub fn strip(&self, headers: &mut HeaderMap) {
        strip_identity_headers(headers, self.identity_header_names());
    }

    /// Whether `peer` may assert identity. An IPv4-mapped IPv6 address
    /// (`::ffff:10.0.0.1`) matches IPv4 CIDRs.
    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        let canonical = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            IpAddr::V4(_) => peer,
        };
        self.proxies
            .iter()
            .any(|net| net.contains(&canonical) || net.contains(&peer))
    }

    fn user(&self, headers: &HeaderMap) -> Result<String, AuthError> {
        single(headers, &self.user)?.ok_or_else(|| AuthError::MissingIdentity {
            header: self.user.display.clone(),
        })
    }

    fn groups(&self, headers: &HeaderMap) -> Result<Vec<String>, AuthError> {
        let invalid = |reason| AuthError::InvalidIdentity {
            header: self.roles.display.clone(),
            reason,
        };
        let mut total = 0usize;
        let mut groups: Vec<String> = Vec::new();
        for value in headers.get_all(&self.roles.name) {
            total += value.len();
            if total > MAX_ROLES_LEN {
                return Err(invalid("longer than 4096 bytes"));
            }
            let text = text(value).map_err(invalid)?;
            for group in text.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                if group.len() > MAX_IDENTITY_LEN {
                    return Err(invalid("a role is longer than 256 bytes"));
                }
                if !groups.iter().any(|g| g == group) {
                    groups.push(group.to_string());
                }
            }
        }
        Ok(groups)
    }
}

#[async_trait]
impl Authenticator for TrustedHeaderAuthenticator {
    fn name(&self) -> &'static str {
        "trusted_header"
    }

    async fn authenticate(&self, req: &RequestView<'_>) -> Result<Option<Principal>, AuthError> {
        match req.peer {
            Some(peer) if self.is_trusted(peer) => {}
            _ => return Ok(None),
        }
        let subject = self.user(req.headers)?;
        let team = single(req.headers, &self.team)?;
        let groups = self.groups(req.headers)?;
        Ok(Some(Principal {
            kind: PrincipalKind::User,
            subject,
            team,
            groups,
            role: None,
            method: AuthMethod::TrustedHeader,
            key_name: None,
        }))
    }
}

/// Removes every value of each of `names` from `headers`. The gateway calls this before
/// forwarding any request, so identity headers only ever come from the gateway itself.
pub fn strip_identity_headers<'a>(
    headers: &mut HeaderMap,
    names: impl IntoIterator<Item = &'a HeaderName>,
) {
    for name in names {
        headers.remove(name);
    }
}

fn header(field: &'static str, configured: &str) -> Result<Header, ConfigError> {
    let err = |reason: String| ConfigError::TrustedHeader { field, reason };
    let name = HeaderName::from_bytes(configured.trim().as_bytes())
        .map_err(|_| err(format!("'{configured}' is not a valid header name")))?;
    if name.as_str() == API_KEY_HEADER {
        return Err(err("must not be the API key header".to_string()));
    }
    Ok(Header {
        name,
        display: configured.trim().to_string(),
    })
}

fn same(field: &'static str, other: &str) -> ConfigError {
    ConfigError::TrustedHeader {
        field,
        reason: format!("must differ from {other}"),
    }
}

/// The single value of an identity header: `None` when absent or blank.
fn single(headers: &HeaderMap, h: &Header) -> Result<Option<String>, AuthError> {
    let invalid = |reason| AuthError::InvalidIdentity {
        header: h.display.clone(),
        reason,
    };
    let mut values = headers.get_all(&h.name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(invalid("sent more than once"));
    }
    if value.len() > MAX_IDENTITY_LEN {
        return Err(invalid("longer than 256 bytes"));
    }
    let v = text(value).map_err(invalid)?.trim();
    Ok((!v.is_empty()).then(|| v.to_string()))
}

/// The value as UTF-8 without control characters.
fn text(value: &HeaderValue) -> Result<&str, &'static str> {
    let s = std::str::from_utf8(value.as_bytes()).map_err(|_| "not valid UTF-8")?;
    if s.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    Ok(s)
}
