//! `[oidc]` configuration.

use serde::Deserialize;

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email"].map(String::from).to_vec()
}
fn default_sub() -> String {
    "sub".into()
}
fn default_team() -> String {
    "team".into()
}
fn default_groups() -> String {
    "groups".into()
}
fn default_algs() -> Vec<String> {
    [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
    ]
    .map(String::from)
    .to_vec()
}
fn default_leeway() -> u64 {
    30
}
fn default_refresh() -> u64 {
    10
}
fn default_bearer_cache() -> u64 {
    60
}
fn default_token_types() -> Vec<String> {
    vec!["at+jwt".into()]
}
fn default_post_logout() -> String {
    "/console/".into()
}
fn yes() -> bool {
    true
}

/// `[oidc]`: one OpenID provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Issuer URL; discovery is `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// Client id registered at the IdP (also the default bearer audience).
    pub client_id: String,
    /// Client secret (prefer `client_secret_env`).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// The gateway's callback URL as registered at the IdP (`https://gw/auth/callback`).
    pub redirect_url: String,
    /// Scopes requested at login.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Claim holding the subject.
    #[serde(default = "default_sub")]
    pub subject_claim: String,
    /// Claim holding the team.
    #[serde(default = "default_team")]
    pub team_claim: String,
    /// Claim holding the groups (an array of strings, or one string).
    #[serde(default = "default_groups")]
    pub groups_claim: String,
    /// Audiences accepted on bearer access tokens: the API's audience at the IdP. Default:
    /// the client id. Set it when the IdP gives access tokens their own audience, so
    /// nothing minted for the client itself (an ID token) can pass as a bearer.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// JOSE `typ` values a bearer token must carry (RFC 9068 access tokens: `at+jwt`).
    /// Add `"JWT"` for an IdP whose access tokens say only that (Keycloak); ID tokens
    /// (`nonce`, `at_hash`, `c_hash`) and logout tokens (`events`) are refused whatever
    /// their `typ`.
    #[serde(default = "default_token_types")]
    pub access_token_types: Vec<String>,
    /// Signature algorithms accepted (asymmetric only; `none` and HMAC are never accepted).
    #[serde(default = "default_algs")]
    pub algorithms: Vec<String>,
    /// Clock skew tolerated on `exp`/`nbf`/`iat`, seconds.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Minimum seconds between two JWKS refreshes triggered by unknown `kid`s.
    #[serde(default = "default_refresh")]
    pub jwks_min_refresh_seconds: u64,
    /// Accept `Authorization: Bearer` JWTs.
    #[serde(default = "yes")]
    pub bearer: bool,
    /// Seconds a verified bearer JWT is remembered (by its SHA-256), so repeat requests skip
    /// the signature check; never past the token's `exp`. Also how long a token stays
    /// accepted after its signing key leaves the JWKS. `0` verifies every request.
    #[serde(default = "default_bearer_cache")]
    pub bearer_cache_seconds: u64,
    /// Where the browser goes after logout when the IdP has no end-session endpoint.
    #[serde(default = "default_post_logout")]
    pub post_logout_redirect: String,
    /// Session cookie and lifetimes.
    #[serde(default)]
    pub session: SessionConfig,
}

/// `[oidc.session]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Cookie name (must not collide with the IdP's cookies on the same host).
    pub cookie_name: String,
    /// Seconds of inactivity after which a session ends.
    pub idle_timeout_seconds: u64,
    /// Seconds after login after which a session ends regardless of activity.
    pub absolute_timeout_seconds: u64,
    /// `Secure` cookie attribute; default: true when `redirect_url` is https.
    pub secure: Option<bool>,
    /// Most sessions held.
    pub max_sessions: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie_name: "gatehouse_session".into(),
            idle_timeout_seconds: 3600,
            absolute_timeout_seconds: 12 * 3600,
            secure: None,
            max_sessions: 100_000,
        }
    }
}

impl OidcConfig {
    /// Checks values, naming the bad key.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.issuer.starts_with("https://") || self.issuer.starts_with("http://")) {
            return Err(format!(
                "oidc.issuer: '{}' is not an http(s) URL",
                self.issuer
            ));
        }
        if self.client_id.is_empty() {
            return Err("oidc.client_id: must not be empty".into());
        }
        if !(self.redirect_url.starts_with("https://") || self.redirect_url.starts_with("http://"))
            || !self.redirect_url.ends_with("/auth/callback")
        {
            return Err(format!(
                "oidc.redirect_url: '{}' must be the gateway's absolute /auth/callback URL",
                self.redirect_url
            ));
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return Err("oidc.scopes: must include \"openid\"".into());
        }
        if self.access_token_types.is_empty()
            || self
                .access_token_types
                .iter()
                .any(|t| t.is_empty() || t.contains(char::is_whitespace))
        {
            return Err(
                "oidc.access_token_types: list the JOSE typ values of access tokens (e.g. \"at+jwt\")"
                    .into(),
            );
        }
        for a in &self.algorithms {
            if a.starts_with("HS") || a.eq_ignore_ascii_case("none") {
                return Err(format!(
                    "oidc.algorithms: '{a}' is not allowed (only asymmetric algorithms)"
                ));
            }
            if crate::oidc::jwks::parse_alg(a).is_none() {
                return Err(format!("oidc.algorithms: unknown algorithm '{a}'"));
            }
        }
        if self.session.cookie_name.is_empty()
            || !self
                .session
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err("oidc.session.cookie_name: letters, digits, '_' and '-' only".into());
        }
        if self.session.idle_timeout_seconds == 0 || self.session.absolute_timeout_seconds == 0 {
            return Err("oidc.session: lifetimes must be at least 1 second".into());
        }
        if !self.post_logout_redirect.starts_with('/')
            && !self.post_logout_redirect.starts_with("http")
        {
            return Err("oidc.post_logout_redirect: must be a path or an absolute URL".into());
        }
        Ok(())
    }

    /// The client secret from the config or its environment variable.
    pub fn secret(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, String> {
        match (&self.client_secret, &self.client_secret_env) {
            (Some(s), _) => Ok(Some(s.clone())),
            (None, Some(var)) => env(var)
                .filter(|v| !v.is_empty())
                .map(Some)
                .ok_or_else(|| format!("oidc.client_secret_env: {var} is not set")),
            (None, None) => Ok(None),
        }
    }

    /// Audiences accepted on bearer tokens.
    pub fn bearer_audiences(&self) -> Vec<String> {
        if self.audiences.is_empty() {
            vec![self.client_id.clone()]
        } else {
            self.audiences.clone()
        }
    }

    /// The accepted access-token `typ` values, lowercase.
    pub fn bearer_types(&self) -> Vec<String> {
        self.access_token_types
            .iter()
            .map(|t| t.to_ascii_lowercase())
            .collect()
    }

    /// Whether the session cookie carries `Secure`.
    pub fn cookie_secure(&self) -> bool {
        self.session
            .secure
            .unwrap_or_else(|| self.redirect_url.starts_with("https://"))
    }
}
