//! The development OpenID provider (`dev/idp/server.mjs`, npm `oidc-provider` 9.x) as a
//! process on a free loopback port, for the OIDC login, bearer-JWT and back-channel logout
//! tests. DEVELOPMENT ONLY: it accepts any password.
//!
//! [`Idp::start`] runs `npm ci --no-audit --no-fund` in `dev/idp/` first when `dev/dev/idp/node_modules`
//! is missing or older than `dev/idp/package-lock.json` (under a lock, so parallel tests and
//! test binaries do not race; see [`crate::npm`]), then runs `node dev/idp/server.mjs` (`node` from `PATH`, or
//! `GATEHOUSE_NODE`) with its private signing keys in a file of a fresh temporary
//! directory, and waits for the discovery document.
//!
//! What the provider serves (see `dev/idp/README.md` for the whole story):
//! - issuer `http://127.0.0.1:<port>`; one confidential client (`client_secret_basic`,
//!   PKCE S256 required, code flow only, consent skipped) whose redirect URIs are the
//!   options' plus [`TEST_REDIRECT_URI`], whose post-logout redirect URIs are the options'
//!   plus [`TEST_POST_LOGOUT_REDIRECT_URI`], and whose back-channel logout URI (session
//!   required) is the options';
//! - users `alice` (team-a, `sandbox-operators`), `bob` (team-a, `sandbox-viewers`) and
//!   `carol` (team-b, `sandbox-operators`), `dana` (platform, no groups: service_admin only
//!   through a binding), plus [`IdpOptions::extra_users`];
//! - ID tokens (RS256, `aud` = client id) carrying `sub` (the username), `name`,
//!   `preferred_username`, `email`, `email_verified`, `team` and `groups`, plus `iss`,
//!   `aud`, `exp`, `iat`, `auth_time`, `nonce`, `sid`;
//! - JWT access tokens (RS256, header `typ: at+jwt`, `aud` = [`IdpOptions::api_audience`])
//!   carrying `sub`, `client_id`, `scope`, `name`, `preferred_username`, `email`, `team`,
//!   `groups`, `iss`, `iat`, `exp`, `jti`;
//! - `GET /__dev/ready` → 200.

use crate::{free_port, process, repo_root};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

/// A redirect URI every harness IdP registers besides the options' ones. Nothing listens
/// there: [`crate::login::tokens_for`] takes the code from the `Location` header.
pub const TEST_REDIRECT_URI: &str = "http://127.0.0.1:1/cb";

/// A post-logout redirect URI every harness IdP registers besides the options' ones.
pub const TEST_POST_LOGOUT_REDIRECT_URI: &str = "http://127.0.0.1:1/logged-out";

/// The built-in users: `(username, team, groups)`.
pub const USERS: [(&str, &str, &[&str]); 4] = [
    ("alice", "team-a", &["sandbox-operators"]),
    ("bob", "team-a", &["sandbox-viewers"]),
    ("carol", "team-b", &["sandbox-operators"]),
    ("dana", "platform", &[]),
];

/// How to start the IdP.
#[derive(Debug, Clone)]
pub struct IdpOptions {
    /// Port to listen on (`None`: a free one).
    pub port: Option<u16>,
    /// The client id (`IDP_CLIENT_ID`).
    pub client_id: String,
    /// The client secret (`IDP_CLIENT_SECRET`).
    pub client_secret: String,
    /// Redirect URIs registered for the client ([`TEST_REDIRECT_URI`] is always added).
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs ([`TEST_POST_LOGOUT_REDIRECT_URI`] is always added).
    pub post_logout_redirect_uris: Vec<String>,
    /// The back-channel logout URI (`None`: the client has none).
    pub backchannel_logout_uri: Option<String>,
    /// `aud` of the JWT access tokens (`IDP_API_AUDIENCE`).
    pub api_audience: String,
    /// Access token lifetime, seconds (`IDP_ACCESS_TOKEN_TTL`; the IdP's default is 3600).
    pub access_token_ttl: Option<u64>,
    /// ID token lifetime, seconds (`IDP_ID_TOKEN_TTL`; the IdP's default is 3600).
    pub id_token_ttl: Option<u64>,
    /// More users, merged over the built-in ones:
    /// `{"dave": {"name": "...", "email": "...", "team": "...", "groups": [...]}}`
    /// (every field optional; a `null` team or groups leaves the claim out).
    pub extra_users: Option<Value>,
    /// How long to wait for the discovery document.
    pub startup_timeout: Duration,
}

impl Default for IdpOptions {
    fn default() -> Self {
        Self {
            port: None,
            client_id: "gatehouse".into(),
            client_secret: "gatehouse-dev-secret".into(),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            backchannel_logout_uri: None,
            api_audience: "gatehouse".into(),
            access_token_ttl: None,
            id_token_ttl: None,
            extra_users: None,
            startup_timeout: Duration::from_secs(30),
        }
    }
}

impl IdpOptions {
    /// Options registering a gateway at `gateway_url` (e.g. `http://127.0.0.1:41234`):
    /// redirect URI `{gateway_url}/auth/callback`, post-logout redirect URI
    /// `{gateway_url}/console/` and back-channel logout URI
    /// `{gateway_url}/auth/backchannel-logout`.
    pub fn for_gateway(gateway_url: &str) -> Self {
        let base = gateway_url.trim_end_matches('/');
        Self {
            redirect_uris: vec![format!("{base}/auth/callback")],
            post_logout_redirect_uris: vec![format!("{base}/console/")],
            backchannel_logout_uri: Some(format!("{base}/auth/backchannel-logout")),
            ..Self::default()
        }
    }
}

/// A running development IdP.
pub struct Idp {
    child: Option<Child>,
    /// The issuer, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub issuer: String,
    /// Its port.
    pub port: u16,
    /// Its private JWKS (`IDP_JWKS_FILE`): kept across restarts; a rotation puts a new key
    /// first. Tests may sign their own tokens with these keys.
    pub jwks_file: PathBuf,
    /// Its log (stdout and stderr; one JSON object a line from the server itself).
    pub log_path: PathBuf,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
    /// `aud` of its access tokens.
    pub api_audience: String,
    /// The discovery document as of the last (re)start.
    pub discovery: Value,
    /// The options it runs with.
    pub opts: IdpOptions,
    dir: PathBuf,
}

impl Idp {
    /// Installs the npm packages when needed, starts the IdP and waits for its discovery
    /// document. The error holds the log when the server does not come up.
    pub async fn start(opts: IdpOptions) -> Result<Self> {
        crate::npm::ensure_packages(&idp_dir(), "oidc-provider")?;
        let dir = std::env::temp_dir().join(format!("gatehouse-idp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let port = opts.port.unwrap_or_else(free_port);
        let mut idp = Self {
            child: None,
            issuer: format!("http://127.0.0.1:{port}"),
            port,
            jwks_file: dir.join("jwks.json"),
            log_path: dir.join("idp.log"),
            client_id: opts.client_id.clone(),
            client_secret: opts.client_secret.clone(),
            api_audience: opts.api_audience.clone(),
            discovery: Value::Null,
            opts,
            dir,
        };
        idp.spawn(false).await?;
        Ok(idp)
    }

    async fn spawn(&mut self, rotate: bool) -> Result<()> {
        let mut redirect_uris = self.opts.redirect_uris.clone();
        redirect_uris.push(TEST_REDIRECT_URI.into());
        let mut post_logout = self.opts.post_logout_redirect_uris.clone();
        post_logout.push(TEST_POST_LOGOUT_REDIRECT_URI.into());
        let mut cmd = Command::new(node_binary());
        cmd.arg(idp_dir().join("server.mjs"))
            .current_dir(idp_dir())
            .env("IDP_PORT", self.port.to_string())
            .env("IDP_CLIENT_ID", &self.opts.client_id)
            .env("IDP_CLIENT_SECRET", &self.opts.client_secret)
            .env("IDP_REDIRECT_URIS", redirect_uris.join(","))
            .env("IDP_POST_LOGOUT_REDIRECT_URIS", post_logout.join(","))
            .env(
                "IDP_BACKCHANNEL_LOGOUT_URI",
                self.opts
                    .backchannel_logout_uri
                    .as_deref()
                    .unwrap_or("none"),
            )
            .env("IDP_API_AUDIENCE", &self.opts.api_audience)
            .env("IDP_JWKS_FILE", &self.jwks_file)
            .env("IDP_ROTATE", if rotate { "1" } else { "0" })
            .env_remove("IDP_ISSUER")
            .env_remove("IDP_API_RESOURCE")
            .env_remove("IDP_COOKIE_KEYS")
            .env_remove("IDP_USERS_FILE")
            .env_remove("IDP_ACCESS_TOKEN_TTL")
            .env_remove("IDP_ID_TOKEN_TTL");
        process::group_logging_to(&mut cmd, &self.log_path)?;
        if let Some(ttl) = self.opts.access_token_ttl {
            cmd.env("IDP_ACCESS_TOKEN_TTL", ttl.to_string());
        }
        if let Some(ttl) = self.opts.id_token_ttl {
            cmd.env("IDP_ID_TOKEN_TTL", ttl.to_string());
        }
        if let Some(users) = &self.opts.extra_users {
            let users_file = self.dir.join("users.json");
            std::fs::write(&users_file, serde_json::to_vec_pretty(users)?)?;
            cmd.env("IDP_USERS_FILE", users_file);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting the dev IdP with {cmd:?}"))?;
        self.child = Some(child);
        self.discovery = self.wait_ready(self.opts.startup_timeout).await?;
        Ok(())
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<Value> {
        let url = self.at("/.well-known/openid-configuration");
        let client = reqwest::Client::new();
        let (issuer, port, log_path) = (self.issuer.clone(), self.port, self.log_path.clone());
        let what = format!(
            "the dev IdP (discovery at {url}, log {})",
            log_path.display()
        );
        let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        process::wait_ready(&mut self.child, &what, timeout, log, || async {
            let doc = match client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
                _ => None,
            };
            match doc {
                Some(doc) if doc["issuer"] != issuer.as_str() => bail!(
                    "{url} names issuer {} instead of {issuer} (is another process on port {port}?)",
                    doc["issuer"]
                ),
                doc => Ok(doc),
            }
        })
        .await
    }

    /// Stops the IdP: SIGTERM, SIGKILL after 5 s. Its sessions and grants (in memory) are
    /// gone; its keys stay in [`Idp::jwks_file`].
    pub fn stop(&mut self) {
        let grace = Duration::from_secs(5);
        process::stop(&mut self.child, "-TERM", process::Target::Group, grace);
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Stops the IdP (if running) and starts it again on the same port with the same key
    /// file. With `rotate`, a new signing key is generated and put first (new tokens are
    /// signed with it) while the previous keys stay published in the JWKS.
    pub async fn restart(&mut self, rotate: bool) -> Result<()> {
        self.stop();
        self.spawn(rotate).await
    }

    /// Restarts the IdP with new client settings (same port and keys), e.g. once a
    /// gateway's port is known. Its sessions are gone afterwards.
    pub async fn reconfigure(&mut self, opts: IdpOptions) -> Result<()> {
        self.stop();
        self.client_id = opts.client_id.clone();
        self.client_secret = opts.client_secret.clone();
        self.api_audience = opts.api_audience.clone();
        self.opts = IdpOptions {
            port: Some(self.port),
            ..opts
        };
        self.spawn(false).await
    }

    /// `issuer` + `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// A discovery document endpoint (`authorization_endpoint`, `token_endpoint`,
    /// `end_session_endpoint`, `jwks_uri`, ...).
    pub fn endpoint(&self, name: &str) -> Result<String> {
        self.discovery[name]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("the discovery document has no {name}"))
    }

    /// The public JWKS the IdP serves now.
    pub async fn jwks(&self) -> Result<Value> {
        let url = self.endpoint("jwks_uri")?;
        let r = reqwest::get(&url)
            .await
            .with_context(|| format!("GET {url}"))?;
        if !r.status().is_success() {
            bail!("GET {url}: {}", r.status());
        }
        Ok(r.json().await?)
    }

    /// The `kid`s of the public JWKS, newest (signing) first.
    pub async fn kids(&self) -> Result<Vec<String>> {
        Ok(self.jwks().await?["keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k["kid"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The private JWKS from [`Idp::jwks_file`] (RSA private keys as JWK, `kid`, `alg`
    /// `RS256`, `use` `sig`; the first one signs).
    pub fn private_jwks(&self) -> Result<Value> {
        let text = std::fs::read_to_string(&self.jwks_file)
            .with_context(|| format!("reading {}", self.jwks_file.display()))?;
        Ok(serde_json::from_str(&text)?)
    }

    /// The log written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The server's own JSON log lines (`{"ts","msg",...}`).
    pub fn log_events(&self) -> Vec<Value> {
        self.log()
            .lines()
            .filter(|l| l.starts_with('{'))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Back-channel logout deliveries so far: the log events `backchannel logout delivered`
    /// (`client_id`, `uri`, `sub`, `sid`) and `backchannel logout failed` (the same plus
    /// `status` when the gateway answered and `error`), oldest first.
    pub fn backchannel_deliveries(&self) -> Vec<Value> {
        self.log_events()
            .into_iter()
            .filter(|e| {
                e["msg"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("backchannel logout"))
            })
            .collect()
    }

    /// The HTTP statuses of the outgoing requests (back-channel logout POSTs) so far, as
    /// `(url, status)`; a request that got no answer has status 0.
    pub fn outgoing_requests(&self) -> Vec<(String, u16)> {
        self.log_events()
            .into_iter()
            .filter(|e| {
                e["msg"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("outgoing request"))
            })
            .map(|e| {
                let status = e["status"].as_u64().and_then(|s| u16::try_from(s).ok());
                (
                    e["url"].as_str().unwrap_or_default().to_string(),
                    status.unwrap_or(0),
                )
            })
            .collect()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `dev/idp/` folder of the repository.
pub fn idp_dir() -> PathBuf {
    repo_root().join("dev/idp")
}

/// The `node` to run: `GATEHOUSE_NODE`, else `node` from `PATH`.
pub fn node_binary() -> PathBuf {
    match std::env::var("GATEHOUSE_NODE") {
        Ok(n) if !n.is_empty() => PathBuf::from(n),
        _ => PathBuf::from("node"),
    }
}
