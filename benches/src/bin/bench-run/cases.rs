//! The paths of the benchmark: which target gets which request with which credential,
//! which of them run (`--only`, targets that did not start), and the preflight check of
//! each path's answer.

use crate::cli::{Args, Variant};
use crate::client::{Req, Resp};
use crate::oidc::{self, Minted};
use crate::requests::{Cred, ReqKind};
use anyhow::{bail, Context, Result};
use gatehouse_benches::fixtures;
use std::collections::BTreeMap;

/// One path of the benchmark: a target and a request.
pub(crate) struct Case {
    /// Its id (`gw-apikey`, `nginx-list20`, `VARIANT:apikey`).
    pub(crate) id: String,
    /// The id of the primary case this is a variant run of (else `id`).
    base: String,
    /// What it is, for humans.
    pub(crate) label: String,
    /// The name of the target it talks to.
    pub(crate) target: String,
    /// The request kind.
    pub(crate) request: ReqKind,
    /// The request.
    pub(crate) req: Req,
    /// Whether the target is a gateway build.
    pub(crate) gateway: bool,
    /// Why it does not run.
    pub(crate) skip: Option<String>,
    /// Preflight or load failure.
    pub(crate) error: Option<String>,
    /// The upstream must see the caller's scope (`x-bench-scoped: 1`).
    expect_scoped: bool,
    /// For an auth peer: the same request without the credential, which the preflight
    /// check wants refused with 401.
    pub(crate) anonymous: Option<Req>,
}

impl Case {
    /// Whether it is still to run: neither skipped nor failed.
    pub(crate) fn active(&self) -> bool {
        self.skip.is_none() && self.error.is_none()
    }

    /// The preflight check of one answer: status, scope, item count, body size.
    pub(crate) fn check(&self, r: &Resp) -> Result<()> {
        let want = self.request.want_status();
        if r.status != want {
            bail!(
                "status {} (want {want}): {}",
                r.status,
                String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
            );
        }
        if self.expect_scoped {
            let scoped = r
                .headers
                .get("x-bench-scoped")
                .and_then(|v| v.to_str().ok());
            if scoped != Some("1") {
                bail!("the upstream did not see the caller's scope (x-bench-scoped: {scoped:?})");
            }
        }
        match self.request {
            ReqKind::List20 | ReqKind::List200 => {
                let n = if self.request == ReqKind::List20 {
                    20
                } else {
                    200
                };
                let v: serde_json::Value =
                    serde_json::from_slice(&r.body).context("the list is not JSON")?;
                let got = v["items"].as_array().map(Vec::len);
                if got != Some(n) {
                    bail!("{got:?} items, want {n}");
                }
            }
            ReqKind::Proxy1M if r.body.len() != fixtures::PROXY_BODY_BYTES => {
                bail!(
                    "{} bytes, want {}",
                    r.body.len(),
                    fixtures::PROXY_BODY_BYTES
                );
            }
            _ => {}
        }
        Ok(())
    }

    /// The preflight check of the answer to [`Case::anonymous`]: 401.
    pub(crate) fn check_refused(&self, r: &Resp) -> Result<()> {
        if r.status != 401 {
            bail!(
                "without the credential: status {} (want 401): {}",
                r.status,
                String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
            );
        }
        Ok(())
    }
}

/// The paths of the direct upstream (the ceiling) and the peers, among them the two
/// framework floors: id (of the sandbox GET; the other requests add
/// [`ReqKind::id_suffix`]), target, label, credential (the bearer JWT is the one `gw-jwt`
/// sends), requests.
const PEERS: [(&str, &str, &str, Cred, &[ReqKind]); 7] = {
    use Cred::{BackendKey, Bearer, NamedKey};
    use ReqKind::*;
    [
        (
            "direct",
            "upstream",
            "direct to the upstream",
            BackendKey,
            &[Sandbox],
        ),
        (
            "nginx",
            "nginx",
            "nginx proxy_pass",
            BackendKey,
            &[Sandbox, List20, List200, Create, Proxy1M],
        ),
        (
            "haproxy",
            "haproxy",
            "haproxy",
            BackendKey,
            &[Sandbox, List20, Proxy1M],
        ),
        (
            "nginx-auth",
            "nginx-auth",
            "nginx auth_request",
            NamedKey,
            &[Sandbox, List20],
        ),
        (
            "nginx-oauth2",
            "nginx-oauth2",
            "nginx auth_request + oauth2-proxy",
            Bearer(String::new()),
            &[Sandbox],
        ),
        (
            "floor-pingora",
            "floor-pingora",
            "bare Pingora 0.9 proxy (floor)",
            BackendKey,
            &[Sandbox],
        ),
        (
            "floor-hyper",
            "floor-hyper",
            "bare hyper 1 proxy (floor)",
            BackendKey,
            &[Sandbox],
        ),
    ]
};

/// The peer paths that need the dev IdP (for its bearer JWT and oauth2-proxy's provider).
pub(crate) const OIDC_PEERS: [&str; 1] = ["nginx-oauth2"];

/// The paths of a gateway: id suffix, what the gateway does, request, credential (the
/// OIDC ones filled in from the minted credentials).
const GATEWAY: [(&str, &str, ReqKind, Cred); 8] = {
    use Cred::{BackendKey, NamedKey, TrustedUser};
    use ReqKind::*;
    const SCOPED: &str = "operator, team-scoped";
    [
        ("backend-key", "passthrough", Sandbox, BackendKey),
        ("apikey", SCOPED, Sandbox, NamedKey),
        ("session", SCOPED, Sandbox, Cred::Cookie(String::new())),
        ("jwt", SCOPED, Sandbox, Cred::Bearer(String::new())),
        ("list20", "filtered", List20, TrustedUser),
        ("list200", "filtered", List200, TrustedUser),
        ("create", "metadata injected", Create, NamedKey),
        ("proxy-1m", "streamed", Proxy1M, NamedKey),
    ]
};

/// The ids of the primary gateway's paths (`gw-*`).
pub(crate) fn gateway_ids() -> impl Iterator<Item = String> {
    GATEWAY
        .into_iter()
        .map(|(suffix, ..)| format!("gw-{suffix}"))
}

fn case(id: &str, target: &str, tlabel: &str, kind: ReqKind, cred: Cred, gateway: bool) -> Case {
    Case {
        id: id.to_string(),
        base: id.to_string(),
        label: format!("{tlabel}, {}", cred.label()),
        target: target.to_string(),
        request: kind,
        req: kind.build(&cred),
        gateway,
        skip: None,
        error: None,
        expect_scoped: gateway && cred.scoped() && kind.scoped(),
        anonymous: None,
    }
}

/// A case with an OIDC credential: skipped or failed (with the reason) when there is
/// none.
fn oidc_case(
    (id, target, tlabel): (&str, &str, &str),
    kind: ReqKind,
    cred: Cred,
    m: &Minted,
    gateway: bool,
) -> Case {
    let value = match m {
        Minted::Ready(v) => v.clone(),
        Minted::Skipped(_) | Minted::Failed(_) => String::new(),
    };
    let mut c = case(id, target, tlabel, kind, cred.with_value(value), gateway);
    match m {
        Minted::Ready(_) => {}
        Minted::Skipped(why) => c.skip = Some(why.clone()),
        Minted::Failed(why) => c.error = Some(format!("setup: {why}")),
    }
    c
}

fn gateway_cases(prefix: &str, target: &str, tlabel: &str, oidc: &oidc::Creds) -> Vec<Case> {
    GATEWAY
        .into_iter()
        .map(|(suffix, what, kind, cred)| {
            let id = format!("{prefix}-{suffix}");
            let label = format!("{tlabel} ({what})");
            match cred.minted(oidc) {
                Some(m) => oidc_case((&id, target, &label), kind, cred, m, true),
                None => case(&id, target, &label, kind, cred, true),
            }
        })
        .collect()
}

/// Every path: the direct one, the peers', the gateway's, and each variant's
/// `variant_cases`; ordered by request kind, then direct, peers, gateways.
pub(crate) fn all_cases(
    variants: &[Variant],
    variant_cases: &[String],
    oidc: &BTreeMap<String, oidc::Creds>,
) -> Vec<Case> {
    let creds = |target: &str| {
        oidc.get(target)
            .cloned()
            .unwrap_or_else(|| oidc::Creds::skipped("no OIDC credentials for this gateway"))
    };
    let mut v = Vec::new();
    // The peers' bearer JWT is the primary gateway's (`gw-jwt`).
    let gw = creds("gw");
    for (id, target, label, cred, kinds) in PEERS {
        for &kind in kinds {
            let id = format!("{id}{}", kind.id_suffix());
            let label = match kind {
                ReqKind::List20 | ReqKind::List200 => format!("{label} (unfiltered)"),
                _ => label.to_string(),
            };
            let mut c = match cred.minted(&gw) {
                Some(m) => oidc_case((&id, target, &label), kind, cred.clone(), m, false),
                None => case(&id, target, &label, kind, cred.clone(), false),
            };
            // An auth peer must refuse the request without its credential.
            if matches!(cred, Cred::NamedKey | Cred::Bearer(_)) {
                c.anonymous = Some(kind.build(&Cred::Nothing));
            }
            v.push(c);
        }
    }
    v.extend(gateway_cases("gw", "gw", "gateway", &creds("gw")));
    for Variant { name, .. } in variants {
        let target = format!("gw:{name}");
        let label = format!("gateway [{name}]");
        for mut c in gateway_cases(name, &target, &label, &creds(&target)) {
            let base = c.id.replacen(name.as_str(), "gw", 1);
            if variant_cases.iter().any(|x| x == &base) {
                c.id = format!("{name}:{}", base.trim_start_matches("gw-"));
                c.base = base;
                v.push(c);
            }
        }
    }
    // Stable, readable order: by request kind, then direct, peers, gateways.
    v.sort_by_key(|c| (c.request, !c.gateway && c.target != "upstream", c.gateway));
    v
}

/// Skips the cases whose target does not run (`skipped_targets`: name → why) or that
/// `--only` does not select.
pub(crate) fn select(cases: &mut [Case], skipped_targets: &BTreeMap<String, String>, args: &Args) {
    for c in cases.iter_mut().filter(|c| c.skip.is_none()) {
        if let Some(why) = skipped_targets.get(&c.target) {
            c.skip = Some(why.clone());
        } else if !args.selects(&c.base) {
            c.skip = Some("not selected (--only)".into());
            // A setup failure (OIDC login) does not matter for a path that does not run.
            c.error = None;
        }
    }
}
