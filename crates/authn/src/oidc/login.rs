//! The login flow (authorization code + PKCE S256, `state`, `nonce`) on `openidconnect`
//! with discovery, RP-initiated logout, and back-channel logout tokens.
//!
//! Discovery is lazy and retried: the gateway starts even when the IdP is down, and login
//! works once it answers. When an ID token's key is unknown (the IdP rotated keys), the
//! provider is re-discovered once and the token checked again.

use super::claims::{identity, Identity};
use super::jwks::{Expect, JwksCache};
use super::login_state::{LoginStateBackend, StoredPending};
use super::session::now_ms;
use super::OidcConfig;
use arc_swap::ArcSwapOption;
use moka::future::Cache;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreResponseType,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthenticationFlow, AuthorizationCode, Client, ClientId, ClientSecret,
    CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields,
    IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadataWithLogout, RedirectUrl,
    Scope, StandardErrorResponse, StandardTokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// Every claim of the ID token, so the configured team/groups claims can be read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AllClaims {
    #[serde(flatten)]
    rest: Map<String, Value>,
}
impl AdditionalClaims for AllClaims {}

type IdFields = IdTokenFields<
    AllClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type TokenResponse = StandardTokenResponse<IdFields, CoreTokenType>;
type OidcClient = Client<
    AllClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What discovery found.
struct Provider {
    client: OidcClient,
    end_session: Option<String>,
}

/// A login in progress, keyed by its `state`.
#[derive(Clone)]
pub struct PendingLogin {
    verifier: String,
    nonce: String,
    /// Where to send the browser after login.
    pub return_to: String,
}

/// Why a login failed (the browser gets a generic message; this goes to the log).
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The IdP could not be reached or its discovery document is unusable.
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
    /// Unknown or expired `state` (or it does not match the browser's login cookie).
    #[error("unknown or expired login state")]
    State,
    /// The IdP returned an error to the callback.
    #[error("identity provider refused the login: {0}")]
    Refused(String),
    /// The code exchange or the ID token check failed.
    #[error("login could not be completed: {0}")]
    Invalid(String),
}

/// The login side of one OpenID provider.
pub struct OidcLogin {
    cfg: OidcConfig,
    secret: Option<String>,
    http: reqwest::Client,
    provider: ArcSwapOption<Provider>,
    discovering: tokio::sync::Mutex<()>,
    pending: Cache<String, PendingLogin>,
    shared: Option<Arc<dyn LoginStateBackend>>,
    jwks: Arc<JwksCache>,
}

/// How long a sign-in may take between `/auth/login` and `/auth/callback`.
const PENDING_TTL: Duration = Duration::from_secs(600);

/// The key of a sign-in in a shared backend: SHA-256 (hex) of its `state`.
fn state_key(state: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(state.as_bytes()))
}

impl std::fmt::Debug for OidcLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcLogin")
            .field("issuer", &self.cfg.issuer)
            .finish_non_exhaustive()
    }
}

/// An HTTP client for talking to the IdP: no redirects (SSRF), bounded time.
pub fn idp_http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())
}

impl OidcLogin {
    /// A login handler; `jwks` is the cache bearer tokens use too (its URL is the
    /// issuer's `jwks_uri` once discovered).
    pub fn new(
        cfg: OidcConfig,
        secret: Option<String>,
        http: reqwest::Client,
        jwks: Arc<JwksCache>,
    ) -> Self {
        Self {
            cfg,
            secret,
            http,
            provider: ArcSwapOption::empty(),
            discovering: tokio::sync::Mutex::new(()),
            pending: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(PENDING_TTL)
                .build(),
            shared: None,
            jwks,
        }
    }

    /// Keeps sign-ins in progress in `backend` (shared by every replica) instead of this
    /// process's memory, so the IdP's callback may reach any replica.
    #[must_use]
    pub fn with_shared_states(mut self, backend: Arc<dyn LoginStateBackend>) -> Self {
        self.shared = Some(backend);
        self
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.cfg.issuer
    }

    /// The configuration.
    pub fn config(&self) -> &OidcConfig {
        &self.cfg
    }

    /// Runs discovery (single flight); `force` re-discovers even when already known.
    pub async fn discover(&self, force: bool) -> Result<(), LoginError> {
        let before = self.provider.load_full();
        let _guard = self.discovering.lock().await;
        let now = self.provider.load_full();
        let someone_else_did = match (&before, &now) {
            (None, Some(_)) => true,
            (Some(a), Some(b)) => !Arc::ptr_eq(a, b),
            _ => false,
        };
        if now.is_some() && (!force || someone_else_did) {
            return Ok(());
        }
        let issuer = IssuerUrl::new(self.cfg.issuer.clone())
            .map_err(|e| LoginError::Unavailable(e.to_string()))?;
        let meta = ProviderMetadataWithLogout::discover_async(issuer, &self.http)
            .await
            .map_err(|e| LoginError::Unavailable(e.to_string()))?;
        let end_session = meta
            .additional_metadata()
            .end_session_endpoint
            .as_ref()
            .map(|u| u.url().to_string());
        let jwks_uri = meta.jwks_uri().url().to_string();
        let redirect = RedirectUrl::new(self.cfg.redirect_url.clone())
            .map_err(|e| LoginError::Unavailable(e.to_string()))?;
        let client = OidcClient::from_provider_metadata(
            meta,
            ClientId::new(self.cfg.client_id.clone()),
            self.secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect);
        self.jwks.set_url(jwks_uri);
        self.provider.store(Some(Arc::new(Provider {
            client,
            end_session,
        })));
        tracing::info!(issuer = %self.cfg.issuer, "OpenID provider discovered");
        Ok(())
    }

    async fn current(&self) -> Result<Arc<Provider>, LoginError> {
        if let Some(p) = self.provider.load_full() {
            return Ok(p);
        }
        self.discover(false).await?;
        self.provider
            .load_full()
            .ok_or_else(|| LoginError::Unavailable("discovery did not complete".into()))
    }

    /// Starts a login: returns the IdP URL to redirect to and the `state` (to bind to the
    /// browser in a short-lived cookie).
    pub async fn start(&self, return_to: String) -> Result<(String, String), LoginError> {
        let provider = self.current().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = provider.client.authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in self.cfg.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let (url, state, nonce) = req.set_pkce_challenge(challenge).url();
        let pending = PendingLogin {
            verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
            return_to,
        };
        match &self.shared {
            Some(shared) => {
                let now = now_ms();
                let stored = StoredPending {
                    verifier: pending.verifier,
                    nonce: pending.nonce,
                    return_to: pending.return_to,
                    expires_ms: now + i64::try_from(PENDING_TTL.as_millis()).unwrap_or(i64::MAX),
                };
                shared
                    .put(&state_key(state.secret()), &stored, now)
                    .await
                    .map_err(|e| LoginError::Unavailable(e.to_string()))?;
            }
            None => self.pending.insert(state.secret().clone(), pending).await,
        }
        Ok((url.to_string(), state.secret().clone()))
    }

    /// Completes a login from the callback's `code` and `state`.
    pub async fn finish(
        &self,
        code: &str,
        state: &str,
    ) -> Result<(Identity, Option<String>, String, PendingLogin), LoginError> {
        let pending = match &self.shared {
            Some(shared) => shared
                .take(&state_key(state), now_ms())
                .await
                .map_err(|e| LoginError::Unavailable(e.to_string()))?
                .map(|p| PendingLogin {
                    verifier: p.verifier,
                    nonce: p.nonce,
                    return_to: p.return_to,
                }),
            None => self.pending.remove(state).await,
        }
        .ok_or(LoginError::State)?;
        let provider = self.current().await?;
        let resp = provider
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| LoginError::Unavailable(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| LoginError::Invalid(format!("code exchange: {e}")))?;
        let id_token = resp
            .extra_fields()
            .id_token()
            .ok_or_else(|| LoginError::Invalid("no ID token".into()))?
            .clone();
        let nonce = Nonce::new(pending.nonce.clone());
        let claims = match id_token.claims(&provider.client.id_token_verifier(), &nonce) {
            Ok(c) => c.clone(),
            Err(first) => {
                // Perhaps the IdP rotated its keys since discovery: look again, once.
                tracing::info!(error = %first, "ID token check failed; re-discovering the provider");
                self.discover(true).await?;
                let provider = self.current().await?;
                let verifier = provider.client.id_token_verifier();
                let checked = id_token
                    .claims(&verifier, &nonce)
                    .map_err(|e| LoginError::Invalid(format!("ID token: {e}")))?
                    .clone();
                checked
            }
        };
        let all: Map<String, Value> = match serde_json::to_value(&claims) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(LoginError::Invalid(
                    "ID token claims are not an object".into(),
                ))
            }
        };
        let who = identity(
            &all,
            &self.cfg.subject_claim,
            &self.cfg.team_claim,
            &self.cfg.groups_claim,
        )
        .map_err(|e| LoginError::Invalid(e.message()))?;
        let sid = all.get("sid").and_then(Value::as_str).map(str::to_owned);
        Ok((who, sid, id_token.to_string(), pending))
    }

    /// Where to send the browser to log out at the IdP, if it supports RP-initiated logout.
    pub fn logout_url(
        &self,
        id_token_hint: Option<&str>,
        post_logout_redirect: &str,
    ) -> Option<String> {
        let p = self.provider.load_full()?;
        let end = p.end_session.as_ref()?;
        let mut q = form_urlencoded_pairs();
        q.append_pair("client_id", &self.cfg.client_id);
        q.append_pair("post_logout_redirect_uri", post_logout_redirect);
        if let Some(h) = id_token_hint {
            q.append_pair("id_token_hint", h);
        }
        let sep = if end.contains('?') { '&' } else { '?' };
        Some(format!("{end}{sep}{}", q.finish()))
    }

    /// Verifies an OpenID Connect back-channel logout token and returns `(sid, sub)`.
    pub async fn verify_logout_token(
        &self,
        token: &str,
    ) -> Result<(Option<String>, Option<String>), LoginError> {
        self.current().await?;
        let expect = Expect {
            issuer: self.cfg.issuer.clone(),
            audiences: vec![self.cfg.client_id.clone()],
            algorithms: self
                .cfg
                .algorithms
                .iter()
                .filter_map(|a| super::jwks::parse_alg(a))
                .collect(),
            leeway: self.cfg.leeway_seconds,
            require_exp: false,
            types: Vec::new(),
        };
        let claims = self
            .jwks
            .verify(token, &expect)
            .await
            .map_err(|e| LoginError::Invalid(e.to_string()))?;
        let event = claims
            .get("events")
            .and_then(Value::as_object)
            .is_some_and(|e| e.contains_key("http://schemas.openid.net/event/backchannel-logout"));
        if !event || claims.contains_key("nonce") || !claims.contains_key("iat") {
            return Err(LoginError::Invalid(
                "not a back-channel logout token".into(),
            ));
        }
        let sid = claims.get("sid").and_then(Value::as_str).map(str::to_owned);
        let sub = claims.get("sub").and_then(Value::as_str).map(str::to_owned);
        if sid.is_none() && sub.is_none() {
            return Err(LoginError::Invalid(
                "logout token names neither sid nor sub".into(),
            ));
        }
        Ok((sid, sub))
    }
}

fn form_urlencoded_pairs() -> form_urlencoded::Serializer<'static, String> {
    form_urlencoded::Serializer::new(String::new())
}
