//! A headless browser over HTTP for the OIDC tests: one cookie jar, redirects followed by
//! hand (so each hop can be checked and a failure names the hop), the dev IdP's login form
//! filled in like a user would.
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

use crate::idp::Idp;
use anyhow::{anyhow, bail, Context, Result};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{redirect, StatusCode, Url};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The gateway's session cookie.
pub const SESSION_COOKIE: &str = "gatehouse_session";

/// Most hops a login may take.
const MAX_HOPS: usize = 20;

/// One request of a flow and what came back.
#[derive(Debug, Clone)]
pub struct Hop {
    /// `GET` or `POST`.
    pub method: String,
    /// The URL requested.
    pub url: String,
    /// The response status.
    pub status: u16,
    /// The absolute `Location` of a redirect.
    pub location: Option<String>,
}

impl std::fmt::Display for Hop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} -> {}", self.method, self.url, self.status)?;
        if let Some(l) = &self.location {
            write!(f, " {l}")?;
        }
        Ok(())
    }
}

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
    let gateway = gateway_url.trim_end_matches('/');
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

    // The gateway's callback: sets the session cookie, redirects to return_to.
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

/// A query parameter of `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn random_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `application/x-www-form-urlencoded` encoding, which RFC 6749 §2.3.1 asks for on the
/// client id and secret before Basic authentication.
fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `name`'s value in a `Set-Cookie` or `Cookie` header.
fn cookie_value(header: &str, name: &str) -> Option<String> {
    header
        .split(';')
        .map(str::trim)
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=').map(str::to_string))
}

fn excerpt(body: &str) -> String {
    let text: String = body.chars().take(600).collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An HTML form: its absolute action and its inputs with a name.
struct Form {
    action: String,
    inputs: Vec<(String, String)>,
}

impl Form {
    /// The first `<form>` of `html` (attributes with double quotes, as oidc-provider writes
    /// them).
    fn parse(html: &str, page_url: &str) -> Option<Self> {
        let start = html.find("<form")?;
        let rest = &html[start..];
        let end = rest.find("</form>").unwrap_or(rest.len());
        let form = &rest[..end];
        let tag_end = form.find('>')?;
        let action = attr(&form[..tag_end], "action").unwrap_or_default();
        let action = Url::parse(page_url)
            .ok()?
            .join(&html_unescape(&action))
            .ok()?;
        let mut inputs = Vec::new();
        let mut s = form;
        while let Some(i) = s.find("<input") {
            s = &s[i..];
            let e = s.find('>').unwrap_or(s.len());
            let tag = &s[..e];
            if let Some(name) = attr(tag, "name") {
                inputs.push((name, html_unescape(&attr(tag, "value").unwrap_or_default())));
            }
            s = &s[e..];
        }
        Some(Self {
            action: action.to_string(),
            inputs,
        })
    }
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let i = tag.find(&needle)? + needle.len();
    let j = tag[i..].find('"')?;
    Some(tag[i..i + j].to_string())
}

fn html_unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// A chain of requests by one browser, recorded.
struct Flow {
    client: reqwest::Client,
    hops: Vec<Hop>,
}

impl Flow {
    fn new(client: reqwest::Client) -> Self {
        Self {
            client,
            hops: Vec::new(),
        }
    }

    fn trail(&self) -> String {
        if self.hops.is_empty() {
            return "  (none)".into();
        }
        self.hops
            .iter()
            .enumerate()
            .map(|(i, h)| format!("  {}. {h}", i + 1))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn record(&mut self, method: &str, url: &str, r: &reqwest::Response) {
        let location = location_of(url, r.headers());
        self.hops.push(Hop {
            method: method.into(),
            url: url.into(),
            status: r.status().as_u16(),
            location,
        });
    }

    async fn get(&mut self, url: &str, what: &str) -> Result<reqwest::Response> {
        let r = self.client.get(url).send().await.map_err(|e| {
            anyhow!(
                "{what}: GET {url} failed: {e}; hops before:\n{}",
                self.trail()
            )
        })?;
        self.record("GET", url, &r);
        Ok(r)
    }

    async fn post(
        &mut self,
        url: &str,
        fields: &[(String, String)],
        what: &str,
    ) -> Result<reqwest::Response> {
        let r = self
            .client
            .post(url)
            .form(fields)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "{what}: POST {url} failed: {e}; hops before:\n{}",
                    self.trail()
                )
            })?;
        self.record("POST", url, &r);
        Ok(r)
    }

    /// The absolute `Location` of the last hop, which must be a redirect.
    fn redirect_of(&self, r: &reqwest::Response, what: &str) -> Result<String> {
        match self.hops.last().and_then(|h| h.location.clone()) {
            Some(l) if r.status().is_redirection() => Ok(l),
            _ => bail!(
                "{what} answered {} instead of a redirect; hops:\n{}",
                r.status(),
                self.trail()
            ),
        }
    }

    /// From `url` at the IdP, through its redirects and interaction forms (login as `user`,
    /// consent), until a redirect leaves for a URL starting with `until`; returns that URL.
    async fn through_idp(
        &mut self,
        url: &str,
        idp: &Idp,
        user: &str,
        until: &str,
    ) -> Result<String> {
        let mut next = url.to_string();
        let mut logged_in = false;
        for _ in 0..MAX_HOPS {
            if next.starts_with(until) {
                return Ok(next);
            }
            if !next.starts_with(&idp.issuer) {
                bail!(
                    "the flow left the IdP for {next}, expected {until}...; hops:\n{}",
                    self.trail()
                );
            }
            let what = hop_name(&next);
            let r = self.get(&next, &what).await?;
            if r.status().is_redirection() {
                next = self.redirect_of(&r, &what)?;
                continue;
            }
            let status = r.status();
            let page = r.url().to_string();
            let body = r.text().await.unwrap_or_default();
            if status != StatusCode::OK {
                bail!(
                    "{what} answered {status}: {}; hops:\n{}",
                    excerpt(&body),
                    self.trail()
                );
            }
            let form = Form::parse(&body, &page).with_context(|| {
                format!(
                    "{what} answered a page without a form: {}; hops:\n{}",
                    excerpt(&body),
                    self.trail()
                )
            })?;
            let prompt = form
                .inputs
                .iter()
                .find(|(k, _)| k == "prompt")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let fields: Vec<(String, String)> = match prompt.as_str() {
                "login" => {
                    if logged_in {
                        bail!(
                            "the IdP asked for a login again after {user:?} signed in (unknown user?): {}; hops:\n{}",
                            excerpt(&body),
                            self.trail()
                        );
                    }
                    logged_in = true;
                    vec![
                        ("prompt".into(), "login".into()),
                        ("login".into(), user.into()),
                        ("password".into(), "x".into()),
                    ]
                }
                "consent" => vec![("prompt".into(), "consent".into())],
                other => bail!(
                    "{what} showed a form with prompt {other:?} the harness does not know: {}; hops:\n{}",
                    excerpt(&body),
                    self.trail()
                ),
            };
            let form_what = format!("the IdP's {prompt} form ({})", form.action);
            let r = self.post(&form.action, &fields, &form_what).await?;
            next = self.redirect_of(&r, &form_what)?;
        }
        bail!(
            "no redirect to {until} after {MAX_HOPS} hops:\n{}",
            self.trail()
        )
    }
}

fn hop_name(url: &str) -> String {
    let path = Url::parse(url)
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    if path.starts_with("/interaction/") {
        "the IdP's interaction page".into()
    } else if path == "/auth" {
        "the IdP's authorization endpoint".into()
    } else if path.starts_with("/auth/") {
        "the IdP's authorization resume".into()
    } else {
        format!("the IdP's {path}")
    }
}

fn location_of(base: &str, headers: &HeaderMap) -> Option<String> {
    let l = headers.get(LOCATION)?.to_str().ok()?;
    Url::parse(base).ok()?.join(l).ok().map(|u| u.to_string())
}
