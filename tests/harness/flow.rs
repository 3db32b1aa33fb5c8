//! One browser's chain of requests, recorded hop by hop, for the headless logins of
//! [`crate::login`]: redirects followed by hand, the dev IdP's login and consent forms
//! filled in like a user would, and errors that name the hop that failed.

use crate::idp::Idp;
use anyhow::{anyhow, bail, Context, Result};
use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{StatusCode, Url};

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

/// A query parameter of `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `name`'s value in a `Set-Cookie` or `Cookie` header.
pub(crate) fn cookie_value(header: &str, name: &str) -> Option<String> {
    header
        .split(';')
        .map(str::trim)
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=').map(str::to_string))
}

pub(crate) fn excerpt(body: &str) -> String {
    let text: String = body.chars().take(600).collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An HTML form: its absolute action and its inputs with a name.
pub(crate) struct Form {
    pub(crate) action: String,
    pub(crate) inputs: Vec<(String, String)>,
}

impl Form {
    /// The first `<form>` of `html` (attributes with double quotes, as oidc-provider writes
    /// them).
    pub(crate) fn parse(html: &str, page_url: &str) -> Option<Self> {
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
pub(crate) struct Flow {
    client: reqwest::Client,
    pub(crate) hops: Vec<Hop>,
}

impl Flow {
    pub(crate) fn new(client: reqwest::Client) -> Self {
        Self {
            client,
            hops: Vec::new(),
        }
    }

    pub(crate) fn trail(&self) -> String {
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

    pub(crate) async fn get(&mut self, url: &str, what: &str) -> Result<reqwest::Response> {
        let r = self.client.get(url).send().await.map_err(|e| {
            anyhow!(
                "{what}: GET {url} failed: {e}; hops before:\n{}",
                self.trail()
            )
        })?;
        self.record("GET", url, &r);
        Ok(r)
    }

    pub(crate) async fn post(
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
    pub(crate) fn redirect_of(&self, r: &reqwest::Response, what: &str) -> Result<String> {
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
    pub(crate) async fn through_idp(
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
