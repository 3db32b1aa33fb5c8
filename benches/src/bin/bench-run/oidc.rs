//! The credentials of `gw-session` and `gw-jwt`, minted for real with the e2e harness:
//! the development OpenID provider (`gatehouse_tests::idp`, `node dev/idp/server.mjs`), a
//! browser login through each gateway's `/auth/login` → IdP → `/auth/callback`
//! (`gatehouse_tests::login::login`), and a JWT access token from the code flow straight
//! against the IdP (`gatehouse_tests::login::tokens_for`).
//!
//! The IdP knows one extra user, [`OIDC_USER`], of the bench team with the group
//! [`OIDC_GROUP`], which the repository's role table maps to `operator`: the same
//! principal as the named key of `gw-apikey`. Each credential is checked once with
//! `GET /auth/me` (subject, team, role, method) before it is used.

use crate::client::{self, Req};
use crate::{configs, procs};
use anyhow::{bail, Context, Result};
use gatehouse_benches::fixtures::{BENCH_TEAM, OIDC_GROUP, OIDC_USER};
use gatehouse_tests::idp::{node_binary, Idp, IdpOptions, TEST_REDIRECT_URI};
use gatehouse_tests::login::{login, tokens_for};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tokio::runtime::Runtime;

/// Lifetime of the access token and of the gateway session, seconds: far longer than a
/// whole `make bench` (about 5 minutes of load).
pub const LIFETIME_SECONDS: u64 = 6 * 3600;

/// A one-line reason for the report: the first line of `e`'s outermost message, at most
/// 200 characters, and its root cause (the whole error goes to stderr).
fn reason(e: &anyhow::Error) -> String {
    let top = e.to_string();
    let top = top.lines().next().unwrap_or_default();
    // The harness names its temporary log, which is gone by now.
    let top: String = top
        .split("; log /")
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let root = e.root_cause().to_string();
    let root = root.lines().next().unwrap_or_default();
    if e.chain().count() > 1 && !top.contains(root) {
        format!("{top}: {root}")
    } else {
        top
    }
}

/// An OIDC credential for a path, or why there is none.
#[derive(Debug, Clone)]
pub enum Minted {
    /// The `Cookie` header value, or the bearer token.
    Ready(String),
    /// Not set up (the IdP did not start, or no gateway path was selected): the path is
    /// reported as skipped.
    Skipped(String),
    /// Set up, but the login, the token or its check failed: the path fails.
    Failed(String),
}

/// The OIDC credentials of one gateway.
#[derive(Debug, Clone)]
pub struct Creds {
    /// The session cookie (`gw-session`).
    pub cookie: Minted,
    /// The bearer JWT (`gw-jwt`).
    pub bearer: Minted,
}

impl Creds {
    /// Both paths skipped, for `why`.
    pub fn skipped(why: &str) -> Self {
        Self {
            cookie: Minted::Skipped(why.into()),
            bearer: Minted::Skipped(why.into()),
        }
    }
}

/// Mints the credentials of every gateway (`(target name, port)`): one login each, one
/// access token for all (checked at each gateway). Says on stderr what it got.
async fn mint(idp: &Idp, gateways: &[(String, u16)]) -> BTreeMap<String, Creds> {
    let mut out = BTreeMap::new();
    let mut token: Option<String> = None;
    for (name, port) in gateways {
        let cookie = session_cookie(idp, *port).await;
        let bearer = bearer_token(idp, token.as_deref(), *port).await;
        if let Minted::Ready(t) = &bearer {
            token.get_or_insert_with(|| t.clone());
        }
        for (what, m) in [("session cookie", &cookie), ("bearer JWT", &bearer)] {
            match m {
                Minted::Ready(_) => eprintln!("{name}: {what} of {OIDC_USER} minted"),
                Minted::Failed(e) | Minted::Skipped(e) => eprintln!("{name}: no {what}: {e}"),
            }
        }
        out.insert(name.clone(), Creds { cookie, bearer });
    }
    out
}

/// The dev IdP of a run, or why there is none.
pub struct DevIdp {
    idp: Option<Idp>,
    /// Why the OIDC paths are skipped when there is no IdP.
    why_not: String,
}

impl DevIdp {
    /// Starts the IdP for the gateways on `gateway_ports` when a path that needs it (a
    /// gateway path, `nginx-oauth2`) is `selected`. When it does not start, that fails the run if `required` (the smoke
    /// run), else it is noted in `notes` and the OIDC paths are skipped.
    pub fn start(
        rt: &Runtime,
        gateway_ports: &[u16],
        selected: bool,
        required: bool,
        notes: &mut Vec<String>,
    ) -> Result<DevIdp> {
        let mut out = DevIdp {
            idp: None,
            why_not: "not selected (--only)".into(),
        };
        if !selected {
            return Ok(out);
        }
        let urls: Vec<String> = gateway_ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect();
        eprintln!("starting the dev IdP (gw-session, gw-jwt, nginx-oauth2)");
        match rt.block_on(start_idp(&urls)) {
            Ok(i) => out.idp = Some(i),
            Err(e) if required => {
                return Err(e.context("the dev IdP did not start (the smoke run needs it)"))
            }
            Err(e) => {
                eprintln!("the dev IdP did not start: {e:#}");
                let why = format!("the dev IdP did not start: {}", reason(&e));
                notes.push(format!("{why}; the gateway ran without [oidc]"));
                out.why_not = why;
            }
        }
        Ok(out)
    }

    /// The gateways' `[oidc]` settings, when the IdP runs.
    pub fn settings(&self) -> Option<configs::Oidc> {
        self.idp.as_ref().map(settings)
    }

    /// The IdP's settings for oauth2-proxy, or why there is no IdP.
    pub fn provider(&self) -> Result<configs::Oidc, String> {
        self.settings().ok_or_else(|| self.why_not.clone())
    }

    /// The credentials of every gateway (see [`mint`]); all skipped without an IdP.
    pub fn mint(&self, rt: &Runtime, gateways: &[(String, u16)]) -> BTreeMap<String, Creds> {
        match &self.idp {
            Some(idp) => rt.block_on(mint(idp, gateways)),
            None => gateways
                .iter()
                .map(|(name, _)| (name.clone(), Creds::skipped(&self.why_not)))
                .collect(),
        }
    }

    /// Stops the IdP and keeps its log as `idp.log` in `work`.
    pub fn stop(self, work: &Path) {
        if let Some(mut idp) = self.idp {
            idp.stop();
            let _ = std::fs::copy(&idp.log_path, work.join("idp.log"));
        }
    }
}

/// Starts the dev IdP with the bench user, registering the callback of every gateway in
/// `gateway_urls` (the first one through [`IdpOptions::for_gateway`]).
async fn start_idp(gateway_urls: &[String]) -> Result<Idp> {
    let Some((first, rest)) = gateway_urls.split_first() else {
        bail!("no gateway to register at the IdP");
    };
    let node = node_binary();
    let found = if node.components().count() > 1 {
        node.is_file()
    } else {
        procs::which(&node.to_string_lossy()).is_some()
    };
    if !found {
        bail!(
            "node ({}) is not installed (set GATEHOUSE_NODE or put Node.js 20+ on PATH)",
            node.display()
        );
    }
    let mut opts = IdpOptions::for_gateway(first);
    opts.redirect_uris
        .extend(rest.iter().map(|u| format!("{u}/auth/callback")));
    opts.access_token_ttl = Some(LIFETIME_SECONDS);
    opts.id_token_ttl = Some(LIFETIME_SECONDS);
    opts.extra_users = Some(json!({
        OIDC_USER: {
            "name": "Bench Operator",
            "email": format!("{OIDC_USER}@example.com"),
            "team": BENCH_TEAM,
            "groups": [OIDC_GROUP],
        }
    }));
    Idp::start(opts).await
}

/// The gateway's `[oidc]` settings for `idp`.
fn settings(idp: &Idp) -> configs::Oidc {
    configs::Oidc {
        issuer: idp.issuer.clone(),
        client_id: idp.client_id.clone(),
        client_secret: idp.client_secret.clone(),
        session_seconds: LIFETIME_SECONDS,
    }
}

/// Logs the bench user in through the gateway on `port` and checks the session with
/// `GET /auth/me`; returns the `Cookie` header value.
async fn session_cookie(idp: &Idp, port: u16) -> Minted {
    let run = async {
        let gateway = format!("http://127.0.0.1:{port}");
        let l = login(&gateway, idp, OIDC_USER, "/console/")
            .await
            .context("login through the gateway")?;
        let cookie = l.cookie_header();
        check_me(port, "Cookie", &cookie, "session").await?;
        Ok::<_, anyhow::Error>(cookie)
    };
    minted(run.await)
}

/// A JWT access token of the bench user (`None`: get a new one) checked with
/// `GET /auth/me` at the gateway on `port`; returns the token.
async fn bearer_token(idp: &Idp, token: Option<&str>, port: u16) -> Minted {
    let run = async {
        let token = match token {
            Some(t) => t.to_string(),
            None => {
                tokens_for(idp, OIDC_USER, TEST_REDIRECT_URI)
                    .await
                    .context("code flow at the IdP")?
                    .access_token
            }
        };
        check_me(port, "Authorization", &format!("Bearer {token}"), "bearer").await?;
        Ok::<_, anyhow::Error>(token)
    };
    minted(run.await)
}

fn minted(r: Result<String>) -> Minted {
    match r {
        Ok(v) => Minted::Ready(v),
        Err(e) => Minted::Failed(format!("{e:#}")),
    }
}

/// `GET /auth/me` with the credential must name the bench user as a team-scoped
/// operator of the bench team, authenticated by `method`.
async fn check_me(port: u16, header: &str, value: &str, method: &str) -> Result<()> {
    let req = Req {
        headers: vec![(header.into(), value.into())],
        ..Req::get("/auth/me")
    };
    let r = client::once(port, &req, Duration::from_secs(10))
        .await
        .context("GET /auth/me")?;
    let body = String::from_utf8_lossy(&r.body);
    if r.status != 200 {
        bail!(
            "GET /auth/me with the {method} credential: {} {body}",
            r.status
        );
    }
    let me: Value = serde_json::from_slice(&r.body).context("GET /auth/me is not JSON")?;
    let want = json!({
        "subject": OIDC_USER,
        "team": BENCH_TEAM,
        "role": "operator",
        "authMethod": method,
    });
    let got = Value::Object(
        ["subject", "team", "role", "authMethod"]
            .into_iter()
            .map(|f| (f.to_string(), me[f].clone()))
            .collect(),
    );
    if got != want {
        bail!("GET /auth/me with the {method} credential names {got}, want {want}");
    }
    Ok(())
}
