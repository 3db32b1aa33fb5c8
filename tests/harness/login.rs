//! A headless browser over HTTP for the OIDC tests: one cookie jar, redirects followed by
//! hand (so each hop can be checked and a failure names the hop; see [`crate::flow`]), the
//! dev IdP's login form filled in like a user would.
//!
//! - [`login`]: `GET {gateway}/auth/login?return_to=...` → the IdP's authorization endpoint
//!   → its login form (`POST /interaction/<uid>` with `prompt=login&login=<user>&password=x`)
//!   → (a consent form, if one appears: `prompt=consent`) → `{gateway}/auth/callback?code&state`
//!   → the gateway sets [`SESSION_COOKIE`] and redirects to `return_to`.
//! - [`idp_logout`]: RP-initiated logout at the IdP's end-session endpoint with the IdP's
//!   cookies; the IdP then POSTs a back-channel logout token to the gateway (it waits for
//!   that delivery before it answers, so it is done when this returns).
//! - [`tokens_for`]: the code flow straight against the IdP (PKCE, `client_secret_basic`),
//!   for tests that need real ID and access tokens as bearer JWTs.
//!
//! Cookies are kept per host, not per port, as browsers do: the IdP's cookies
//! (`idp_session`, `idp_interaction`, ...) and the gateway's share the jar for 127.0.0.1.

use crate::flow::{cookie_value, excerpt, query_param, Flow, Form, Hop};
use crate::idp::Idp;
use anyhow::{anyhow, bail, Context, Result};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{LOCATION, SET_COOKIE};
use reqwest::{redirect, StatusCode, Url};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The gateway's session cookie.
pub const SESSION_COOKIE: &str = "gatehouse_session";

/// What a successful [`login`] leaves behind.
pub struct LoginResult {
    /// The browser: no redirects followed, the cookie jar below attached (holding the
    /// gateway's session cookie and the IdP's session cookies).
    pub client: reqwest::Client,
    /// The value of the gateway's [`SESSION_COOKIE`].
    pub session_cookie: String,
    /// Where the gateway's callback redirected to (its `Location`, as sent).
    pub final_location: String,
    /// The cookie jar.
    pub jar: Arc<Jar>,
    /// The authorization request the gateway sent the browser to (to check `state`,
    /// `nonce`, `code_challenge`, `code_challenge_method`, `redirect_uri`, `scope`).
    pub authorize_url: String,
    /// The callback URL the IdP sent the browser to (`code`, `state`, `iss`).
    pub callback_url: String,
    /// Every hop, in order.
    pub hops: Vec<Hop>,
}

impl LoginResult {
    /// `Cookie: gatehouse_session=<value>` alone, for a request from a client without the
    /// jar.
    pub fn cookie_header(&self) -> String {
        format!("{SESSION_COOKIE}={}", self.session_cookie)
    }

    /// A query parameter of [`LoginResult::authorize_url`].
    pub fn authorize_param(&self, name: &str) -> Option<String> {
        query_param(&self.authorize_url, name)
    }
}

/// A browser: a client that follows no redirects, with a fresh cookie jar.
pub fn browser() -> Result<(reqwest::Client, Arc<Jar>)> {
    let jar = Arc::new(Jar::default());
    let client = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .cookie_provider(jar.clone())
        .timeout(std::time::Duration::from_secs(15))
        .build()?;
    Ok((client, jar))
}

/// Logs `user` in through the gateway at `gateway_url` with a fresh browser; see the
/// module documentation. The error names the hop that failed and lists the hops before.
pub async fn login(
    gateway_url: &str,
    idp: &Idp,
    user: &str,
    return_to: &str,
) -> Result<LoginResult> {
    let (client, jar) = browser()?;
    login_with(client, jar, gateway_url, idp, user, return_to).await
}

/// [`login`] with a given browser (e.g. one that already has an IdP session: the IdP then
/// signs the browser in as its session's user without showing the form, and `user` is not
/// used).
pub async fn login_with(
    client: reqwest::Client,
    jar: Arc<Jar>,
    gateway_url: &str,
    idp: &Idp,
    user: &str,
    return_to: &str,
) -> Result<LoginResult> {
    login_flow(client, jar, gateway_url, gateway_url, idp, user, return_to).await
}

/// [`login`] that starts at `start_url` and sends the IdP's callback to `callback_url`
/// instead (same path and query): two replicas behind one load balancer, where the
/// browser returns to whichever replica the balancer picks.
pub async fn login_across(
    start_url: &str,
    callback_url: &str,
    idp: &Idp,
    user: &str,
    return_to: &str,
) -> Result<LoginResult> {
    let (client, jar) = browser()?;
    login_flow(client, jar, start_url, callback_url, idp, user, return_to).await
}

async fn login_flow(
    client: reqwest::Client,
    jar: Arc<Jar>,
    gateway_url: &str,
    finish_url: &str,
    idp: &Idp,
    user: &str,
    return_to: &str,
) -> Result<LoginResult> {
    let gateway = gateway_url.trim_end_matches('/');
    let finish = finish_url.trim_end_matches('/');
    let mut start = Url::parse(&format!("{gateway}/auth/login"))?;
    start.query_pairs_mut().append_pair("return_to", return_to);
    let callback_prefix = format!("{gateway}/auth/callback");
    let authorize_endpoint = idp.endpoint("authorization_endpoint")?;

    let mut flow = Flow::new(client.clone());
    // Hop 1: the gateway sends the browser to the IdP.
    let r = flow
        .get(start.as_str(), "the gateway's /auth/login")
        .await?;
    let authorize_url = flow.redirect_of(&r, "the gateway's /auth/login")?;
    if !authorize_url.starts_with(&authorize_endpoint) {
        bail!(
            "the gateway's /auth/login redirected to {authorize_url}, not to the IdP's \
             authorization endpoint {authorize_endpoint}; hops:\n{}",
            flow.trail()
        );
    }

    // The IdP: redirects, its login form, maybe a consent form, until it sends the browser
    // back to the gateway's callback.
    let callback_url = flow
        .through_idp(&authorize_url, idp, user, &callback_prefix)
        .await?;

    // The gateway's callback (on the replica the balancer picks): sets the session
    // cookie, redirects to return_to.
    let callback_url = match callback_url.strip_prefix(gateway) {
        Some(rest) if finish != gateway => format!("{finish}{rest}"),
        _ => callback_url,
    };
    let r = flow
        .get(&callback_url, "the gateway's /auth/callback")
        .await?;
    let set_cookies: Vec<String> = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let final_location = match r.headers().get(LOCATION).and_then(|v| v.to_str().ok()) {
        Some(l) if r.status().is_redirection() => l.to_string(),
        _ => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            bail!(
                "the gateway's /auth/callback answered {status} instead of a redirect: {}; hops:\n{}",
                excerpt(&body),
                flow.trail()
            );
        }
    };
    let session_cookie = set_cookies
        .iter()
        .find_map(|c| cookie_value(c, SESSION_COOKIE))
        .or_else(|| {
            let url = Url::parse(gateway).ok()?;
            let header = jar.cookies(&url)?;
            cookie_value(header.to_str().ok()?, SESSION_COOKIE)
        })
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            anyhow!(
                "the gateway's /auth/callback set no {SESSION_COOKIE} cookie (Set-Cookie: {set_cookies:?}); hops:\n{}",
                flow.trail()
            )
        })?;
    Ok(LoginResult {
        client,
        session_cookie,
        final_location,
        jar,
        authorize_url,
        callback_url,
        hops: flow.hops,
    })
}

/// RP-initiated logout at the IdP with the browser of `result`: `GET end_session_endpoint`
/// (`client_id`, the first registered post-logout redirect URI), then the IdP's logout
/// form confirmed with `logout=yes` (sign out of the IdP). The IdP POSTs a back-channel
/// logout token (`sub`, `sid`) to the client's `backchannel_logout_uri` before it answers;
/// see [`Idp::backchannel_deliveries`] for how that went.
pub async fn idp_logout(result: &LoginResult, idp: &Idp) -> Result<()> {
    idp_logout_in(&result.client, idp).await
}

/// [`idp_logout`] with any browser (one of [`browser`] that signed in at the IdP).
pub async fn idp_logout_in(client: &reqwest::Client, idp: &Idp) -> Result<()> {
    let mut end = Url::parse(&idp.endpoint("end_session_endpoint")?)?;
    {
        let mut q = end.query_pairs_mut();
        q.append_pair("client_id", &idp.client_id);
        let post_logout = idp
            .opts
            .post_logout_redirect_uris
            .first()
            .map_or(crate::idp::TEST_POST_LOGOUT_REDIRECT_URI, String::as_str);
        q.append_pair("post_logout_redirect_uri", post_logout);
    }
    let mut flow = Flow::new(client.clone());
    let r = flow
        .get(end.as_str(), "the IdP's end-session endpoint")
        .await?;
    let status = r.status();
    let page_url = r.url().to_string();
    let body = r.text().await.unwrap_or_default();
    if status != StatusCode::OK {
        bail!(
            "the IdP's end-session endpoint answered {status}: {}",
            excerpt(&body)
        );
    }
    let form = Form::parse(&body, &page_url)
        .with_context(|| format!("the IdP's logout page has no form: {}", excerpt(&body)))?;
    let xsrf = form
        .inputs
        .iter()
        .find(|(k, _)| k == "xsrf")
        .map(|(_, v)| v.clone())
        .with_context(|| format!("the IdP's logout form has no xsrf: {}", excerpt(&body)))?;
    let fields = vec![("xsrf".to_string(), xsrf), ("logout".into(), "yes".into())];
    let r = flow
        .post(&form.action, &fields, "the IdP's logout confirmation")
        .await?;
    flow.redirect_of(&r, "the IdP's logout confirmation")?;
    Ok(())
}

/// Tokens from the IdP's token endpoint.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The ID token (RS256 JWT, `aud` = client id).
    pub id_token: String,
    /// The access token (RS256 JWT, `typ: at+jwt`, `aud` = the IdP's API audience).
    pub access_token: String,
    /// A refresh token, issued only when `offline_access` was asked for.
    pub refresh_token: Option<String>,
    /// `expires_in` of the access token.
    pub expires_in: u64,
    /// The granted scope.
    pub scope: String,
    /// The nonce sent (the ID token carries it).
    pub nonce: String,
    /// The whole token response.
    pub raw: Value,
}

/// The code flow straight against the IdP for `user`, with scope `openid profile email`;
/// `redirect_uri` must be registered ([`crate::idp::TEST_REDIRECT_URI`] always is; nothing
/// needs to listen there).
pub async fn tokens_for(idp: &Idp, user: &str, redirect_uri: &str) -> Result<Tokens> {
    tokens_with_scope(idp, user, redirect_uri, "openid profile email").await
}

/// [`tokens_for`] with a given scope.
pub async fn tokens_with_scope(
    idp: &Idp,
    user: &str,
    redirect_uri: &str,
    scope: &str,
) -> Result<Tokens> {
    let (client, _jar) = browser()?;
    tokens_in(&client, idp, user, redirect_uri, scope).await
}

/// The code flow straight against the IdP in a given browser (one of [`browser`]): its jar
/// then holds the IdP's session, so [`idp_logout_in`] can end it, and a second call signs
/// in without the form (as the IdP session's user, whatever `user` says).
pub async fn tokens_in(
    client: &reqwest::Client,
    idp: &Idp,
    user: &str,
    redirect_uri: &str,
    scope: &str,
) -> Result<Tokens> {
    let state = random_token();
    let nonce = random_token();
    let verifier = format!("{}{}", random_token(), random_token());
    let challenge = pkce_challenge(&verifier);
    let mut auth = Url::parse(&idp.endpoint("authorization_endpoint")?)?;
    auth.query_pairs_mut()
        .append_pair("client_id", &idp.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", scope)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let mut flow = Flow::new(client.clone());
    let callback = flow
        .through_idp(auth.as_str(), idp, user, redirect_uri)
        .await?;
    if let Some(err) = query_param(&callback, "error") {
        bail!(
            "the IdP redirected with error={err} ({}); hops:\n{}",
            query_param(&callback, "error_description").unwrap_or_default(),
            flow.trail()
        );
    }
    if query_param(&callback, "state").as_deref() != Some(state.as_str()) {
        bail!("the IdP returned another state: {callback}");
    }
    let code = query_param(&callback, "code")
        .with_context(|| format!("no code in the IdP's redirect {callback}"))?;
    let token_endpoint = idp.endpoint("token_endpoint")?;
    let r = client
        .post(&token_endpoint)
        .basic_auth(
            form_encode(&idp.client_id),
            Some(form_encode(&idp.client_secret)),
        )
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .with_context(|| format!("POST {token_endpoint}"))?;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "POST {token_endpoint} answered {status}: {}",
            excerpt(&body)
        );
    }
    let raw: Value = serde_json::from_str(&body)
        .with_context(|| format!("the token response is not JSON: {}", excerpt(&body)))?;
    let field = |k: &str| raw[k].as_str().map(str::to_string);
    Ok(Tokens {
        id_token: field("id_token").context("no id_token in the token response")?,
        access_token: field("access_token").context("no access_token in the token response")?,
        refresh_token: field("refresh_token"),
        expires_in: raw["expires_in"].as_u64().unwrap_or_default(),
        scope: field("scope").unwrap_or_default(),
        nonce,
        raw,
    })
}

/// The decoded (not verified) header and payload of a JWT.
pub fn decode_jwt(token: &str) -> Result<(Value, Value)> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        bail!("not a compact JWS (three dot-separated parts)");
    };
    let part = |s: &str| -> Result<Value> {
        let bytes = data_encoding::BASE64URL_NOPAD
            .decode(s.as_bytes())
            .context("a JWT part is not base64url")?;
        Ok(serde_json::from_slice(&bytes)?)
    };
    Ok((part(h)?, part(p)?))
}

/// The S256 PKCE challenge of `verifier`.
pub fn pkce_challenge(verifier: &str) -> String {
    data_encoding::BASE64URL_NOPAD.encode(&Sha256::digest(verifier.as_bytes()))
}

fn random_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `application/x-www-form-urlencoded` encoding, which RFC 6749 §2.3.1 asks for on the
/// client id and secret before Basic authentication.
fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
