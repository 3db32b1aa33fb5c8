//! `bench-upstream`: the fixed-cost lifecycle backend of the proxy-latency benchmark.
//!
//! It answers from bodies computed at start-up, on one thread, so its cost per request is
//! the same whoever is in front of it:
//!
//! | request | answer |
//! |---|---|
//! | `GET /health` | `{"status":"healthy"}` |
//! | `GET /v1/sandboxes/{id}` | one sandbox, ~1.6 KB, with the bench team's scope metadata |
//! | `GET /v1/sandboxes?...pageSize=200...` | 200 items of the bench team, else 20 |
//! | `POST /v1/sandboxes` | `202` and the created sandbox (the body is read in full) |
//! | `* /v1/sandboxes/{id}/proxy/{port}/...` | 1 MiB of `application/octet-stream` |
//!
//! Every route answers under `/` and `/v1`. With `--api-key`, a request without that exact
//! `OPEN-SANDBOX-API-KEY` gets 401, so a proxy that forgets to swap in the backend key
//! shows up as errors. The list and create answers carry `x-bench-scoped: 1` when the
//! query (list) or body (create) contains the team token, so the harness can check that
//! the gateway really added the caller's scope.

use bytes::Bytes;
use clap::Parser;
use gatehouse_benches::fixtures::{self, Tokens};
use gatehouse_benches::serve::{self, Body};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use std::sync::Arc;

/// Fixed-cost upstream for the proxy-latency benchmark.
#[derive(Debug, Parser)]
#[command(name = "bench-upstream")]
struct Args {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:18090")]
    listen: String,
    /// Team whose canonical token every returned sandbox carries.
    #[arg(long, default_value = fixtures::BENCH_TEAM)]
    team: String,
    /// Owner whose canonical token the sandbox carries.
    #[arg(long, default_value = fixtures::BENCH_USER)]
    owner: String,
    /// Require this `OPEN-SANDBOX-API-KEY` (401 otherwise).
    #[arg(long)]
    api_key: Option<String>,
    /// Size of the proxy-route body, bytes.
    #[arg(long, default_value_t = fixtures::PROXY_BODY_BYTES)]
    proxy_bytes: usize,
}

struct Canned {
    api_key: Option<Bytes>,
    team_token: String,
    health: Bytes,
    sandbox: Bytes,
    list20: Bytes,
    list200: Bytes,
    created: Bytes,
    proxy: Bytes,
    unauthorized: Bytes,
    not_found: Bytes,
}

async fn handle(c: Arc<Canned>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    let path = path.strip_prefix("/v1").unwrap_or(path);
    if path == "/health" {
        return serve::respond(200, true, &[], c.health.clone());
    }
    if let Some(key) = &c.api_key {
        let ok = req
            .headers()
            .get("open-sandbox-api-key")
            .is_some_and(|v| v.as_bytes() == key.as_ref());
        if !ok {
            return serve::respond(401, true, &[], c.unauthorized.clone());
        }
    }
    let Some(rest) = path.strip_prefix("/sandboxes") else {
        return serve::respond(404, true, &[], c.not_found.clone());
    };
    if rest.is_empty() {
        let scoped = |yes: bool| if yes { "1" } else { "0" };
        if req.method() == Method::POST {
            let has = match req.into_body().collect().await {
                Ok(b) => contains(&b.to_bytes(), c.team_token.as_bytes()),
                Err(_) => false,
            };
            return serve::respond(
                202,
                true,
                &[("x-bench-scoped", scoped(has))],
                c.created.clone(),
            );
        }
        let q = req.uri().query().unwrap_or("");
        let has = q.contains(c.team_token.as_str());
        let body = if q.contains("pageSize=200") {
            c.list200.clone()
        } else {
            c.list20.clone()
        };
        return serve::respond(200, true, &[("x-bench-scoped", scoped(has))], body);
    }
    let mut segs = rest.trim_start_matches('/').split('/');
    let _id = segs.next();
    match segs.next() {
        None => serve::respond(200, true, &[], c.sandbox.clone()),
        Some("proxy") => serve::respond(
            200,
            false,
            &[("content-type", "application/octet-stream")],
            c.proxy.clone(),
        ),
        Some(_) => serve::respond(404, true, &[], c.not_found.clone()),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tokens = Tokens::new(&args.team, &args.owner);
    let canned = Arc::new(Canned {
        api_key: args.api_key.map(Bytes::from),
        team_token: tokens.team.clone(),
        health: Bytes::from_static(br#"{"status":"healthy"}"#),
        sandbox: Bytes::from(fixtures::sandbox_json(&tokens)),
        list20: Bytes::from(fixtures::list_json(20, &tokens)),
        list200: Bytes::from(fixtures::list_json(200, &tokens)),
        created: Bytes::from(fixtures::create_response_json(&tokens)),
        proxy: Bytes::from(vec![b'x'; args.proxy_bytes]),
        unauthorized: Bytes::from_static(
            br#"{"code":"INVALID_API_KEY","message":"Authentication credentials are invalid."}"#,
        ),
        not_found: Bytes::from_static(br#"{"code":"NOT_FOUND","message":"No such route."}"#),
    });
    serve::listen_and_serve("bench-upstream", &args.listen, move |req| {
        handle(canned.clone(), req)
    })
}
