//! The API key authenticator: header `OPEN-SANDBOX-API-KEY`.
//!
//! Two kinds of keys are accepted:
//!
//! - the backend's own key (optional): the request is forwarded unchanged as
//!   `service_admin` ([`AuthMethod::BackendKey`], [`Principal::passthrough`]);
//! - named gateway keys (`[[auth.api_keys]]`), each with a fixed role and optional team.
//!
//! Only SHA-256 digests are kept in memory. A presented key is hashed once and compared
//! in constant time against every configured digest, with no early exit.

use crate::authenticator::{Authenticator, RequestView};
use crate::error::{AuthError, ConfigError};
use crate::principal::{AuthMethod, Principal, PrincipalKind};
use crate::secret::SecretString;
use async_trait::async_trait;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

#[cfg(test)]
mod tests;

use gatehouse_lifecycle::wire::API_KEY_HEADER;

/// The `key_name` reported for the backend key; reserved, so no named key may use it.
const BACKEND_KEY_NAME: &str = "backend";

/// Longest accepted key name.
const MAX_NAME_LEN: usize = 64;

/// One `[[auth.api_keys]]` entry. Exactly one of `sha256` and `env` is set.
///
/// ```toml
/// [[auth.api_keys]]
/// name = "ci-bot"
/// sha256 = "<hex sha256 of the key>"   # or: env = "CI_BOT_KEY"
/// role = "operator"
/// team = "team-a"                       # optional
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Key name (`[A-Za-z0-9._-]`, at most 64 chars, unique, not `backend`); the
    /// principal's subject is `key:<name>`.
    pub name: String,
    /// Hex SHA-256 digest of the key (see [`sha256_hex`]).
    pub sha256: Option<String>,
    /// Name of an environment variable holding the key itself.
    pub env: Option<String>,
    /// The role every request with this key gets.
    pub role: String,
    /// The team of requests with this key, for scoping.
    pub team: Option<String>,
    /// `standard` (default) or `platform_controller`: a trusted control plane that may
    /// create sandboxes on behalf of tenants (the gateway's `[platform]` section).
    #[serde(default)]
    pub kind: KeyKind,
}

/// What a named key authenticates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// Automation ([`PrincipalKind::Service`]).
    #[default]
    Standard,
    /// A platform controller ([`PrincipalKind::Controller`]).
    PlatformController,
}

/// Lower-case hex SHA-256 of `key`: the value for `sha256 = "..."`.
pub fn sha256_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

type KeyDigest = [u8; 32];

/// A named key, reduced to what matching needs.
struct NamedKey {
    name: String,
    role: String,
    team: Option<String>,
    kind: KeyKind,
    digest: KeyDigest,
}

/// Authenticates `OPEN-SANDBOX-API-KEY`. Holds digests only; `Debug` shows key names.
pub struct ApiKeyAuthenticator {
    backend: Option<KeyDigest>,
    keys: Vec<NamedKey>,
}

impl ApiKeyAuthenticator {
    /// Builds the authenticator from the backend key (when it may be passed through) and
    /// the named keys. `env` looks up environment variables (injected for tests).
    ///
    /// Fails, naming the entry, on a bad name, a duplicate name, an unset or unusable env
    /// var, a digest that is not 64 hex chars, both or neither of `sha256`/`env`, an empty
    /// role or team, or two entries (or an entry and the backend key) with the same key.
    pub fn new(
        backend_key: Option<SecretString>,
        keys: &[ApiKeyConfig],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let backend = match backend_key {
            Some(k) => {
                if let Some(reason) = unusable_key(k.expose()) {
                    return Err(ConfigError::BackendKey { reason });
                }
                Some(digest(k.expose().as_bytes()))
            }
            None => None,
        };
        let mut named: Vec<NamedKey> = Vec::with_capacity(keys.len());
        for (index, cfg) in keys.iter().enumerate() {
            let err = |reason: String| ConfigError::ApiKey {
                index,
                name: if cfg.name.is_empty() {
                    "<unnamed>".to_string()
                } else {
                    cfg.name.clone()
                },
                reason,
            };
            let key = NamedKey {
                name: validate_name(&cfg.name).map_err(err)?,
                role: non_empty("role", &cfg.role).map_err(err)?,
                team: match &cfg.team {
                    Some(t) => Some(non_empty("team", t).map_err(err)?),
                    None => None,
                },
                kind: cfg.kind,
                digest: key_digest(cfg, env).map_err(err)?,
            };
            if let Some(i) = named.iter().position(|k| k.name == key.name) {
                return Err(err(format!("duplicate name (also auth.api_keys[{i}])")));
            }
            if let Some(i) = named.iter().position(|k| k.digest == key.digest) {
                return Err(err(format!("same key as auth.api_keys[{i}]")));
            }
            if backend == Some(key.digest) {
                return Err(err("same key as the upstream backend key".to_string()));
            }
            named.push(key);
        }
        Ok(Self {
            backend,
            keys: named,
        })
    }

    /// The configured key names, in order.
    pub fn key_names(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.name.as_str())
    }

    /// Whether the backend key is accepted (and passed through).
    pub fn accepts_backend_key(&self) -> bool {
        self.backend.is_some()
    }

    /// Matches a presented key against every digest, in constant time per digest and
    /// without an early exit.
    fn check(&self, presented: &[u8]) -> Result<Principal, AuthError> {
        let d = digest(presented);
        let is_backend = match &self.backend {
            Some(b) => b[..].ct_eq(&d[..]),
            None => Choice::from(0),
        };
        // 1-based index of the matching named key; 0 = none.
        let mut found: u64 = 0;
        for (i, k) in self.keys.iter().enumerate() {
            let idx = u64::try_from(i).unwrap_or(u64::MAX - 1) + 1;
            found = u64::conditional_select(&found, &idx, k.digest[..].ct_eq(&d[..]));
        }
        if bool::from(is_backend) {
            return Ok(Principal {
                kind: PrincipalKind::Service,
                subject: "backend-key".to_string(),
                team: None,
                groups: Vec::new(),
                role: Some("service_admin".to_string()),
                method: AuthMethod::BackendKey,
                key_name: Some(BACKEND_KEY_NAME.to_string()),
            });
        }
        let key = usize::try_from(found)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| self.keys.get(i));
        match key {
            Some(k) => Ok(Principal {
                kind: match k.kind {
                    KeyKind::Standard => PrincipalKind::Service,
                    KeyKind::PlatformController => PrincipalKind::Controller,
                },
                subject: format!("key:{}", k.name),
                team: k.team.clone(),
                groups: Vec::new(),
                role: Some(k.role.clone()),
                method: AuthMethod::ApiKey,
                key_name: Some(k.name.clone()),
            }),
            None => Err(AuthError::InvalidApiKey),
        }
    }
}

#[async_trait]
impl Authenticator for ApiKeyAuthenticator {
    fn name(&self) -> &'static str {
        "api_key"
    }

    async fn authenticate(&self, req: &RequestView<'_>) -> Result<Option<Principal>, AuthError> {
        let mut values = req.headers.get_all(API_KEY_HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            // Two keys in one request: ambiguous, never guess.
            return Err(AuthError::InvalidApiKey);
        }
        self.check(value.as_bytes()).map(Some)
    }
}

impl std::fmt::Debug for ApiKeyAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyAuthenticator")
            .field("backend_key", &self.backend.is_some())
            .field("keys", &self.key_names().collect::<Vec<_>>())
            .finish()
    }
}

fn digest(bytes: &[u8]) -> KeyDigest {
    Sha256::digest(bytes).into()
}

/// Why a key can never be presented in a header, if it cannot.
fn unusable_key(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("is empty")
    } else if key.chars().any(char::is_control) {
        Some("contains control characters (a trailing newline?)")
    } else if key.trim() != key {
        Some("has leading or trailing whitespace")
    } else {
        None
    }
}

fn validate_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("name must not be empty".to_string());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("name must be at most {MAX_NAME_LEN} characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("name may only contain letters, digits, '-', '_' and '.'".to_string());
    }
    if name == BACKEND_KEY_NAME {
        return Err(format!("name '{BACKEND_KEY_NAME}' is reserved"));
    }
    Ok(name.to_string())
}

fn non_empty(field: &str, value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        Err(format!("{field} must not be empty"))
    } else {
        Ok(value.to_string())
    }
}

fn key_digest(
    cfg: &ApiKeyConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<KeyDigest, String> {
    match (&cfg.sha256, &cfg.env) {
        (Some(_), Some(_)) => Err("set exactly one of sha256 and env, not both".to_string()),
        (None, None) => Err("set exactly one of sha256 and env".to_string()),
        (Some(hex_digest), None) => {
            let mut out = [0u8; 32];
            if hex_digest.len() != 64 || hex::decode_to_slice(hex_digest, &mut out).is_err() {
                return Err("sha256 must be 64 hex chars".to_string());
            }
            Ok(out)
        }
        (None, Some(var)) => {
            let key = env(var).ok_or_else(|| format!("env var {var} is not set"))?;
            if let Some(reason) = unusable_key(&key) {
                return Err(format!("the key in env var {var} {reason}"));
            }
            Ok(digest(key.as_bytes()))
        }
    }
}
