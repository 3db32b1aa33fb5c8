//! `bench-auth`: the auth service behind nginx `auth_request` in the proxy-latency
//! benchmark.
//!
//! It does what the gateway's API-key path does for a named key, and no more: hash the
//! presented `OPEN-SANDBOX-API-KEY` with SHA-256, compare it in constant time with the
//! configured digest, and answer `200` with the principal and role as headers (nginx copies
//! them upstream with `auth_request_set`), or `401`.

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use gatehouse_benches::fixtures;
use gatehouse_benches::serve::{self, Body};
use hyper::body::Incoming;
use hyper::{Request, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Auth service for nginx `auth_request`.
#[derive(Debug, Parser)]
#[command(name = "bench-auth")]
struct Args {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:18091")]
    listen: String,
    /// Hex SHA-256 of the accepted key (defaults to the benchmark's named key).
    #[arg(long)]
    key_sha256: Option<String>,
    /// Principal reported for the key.
    #[arg(long, default_value = fixtures::NAMED_KEY_NAME)]
    name: String,
    /// Role reported for the key.
    #[arg(long, default_value = "operator")]
    role: String,
}

struct State {
    digest: [u8; 32],
    principal: String,
    role: String,
}

fn handle(s: &State, req: &Request<Incoming>) -> Response<Body> {
    let ok = req
        .headers()
        .get("open-sandbox-api-key")
        .map(|v| {
            let d: [u8; 32] = Sha256::digest(v.as_bytes()).into();
            bool::from(d.ct_eq(&s.digest))
        })
        .unwrap_or(false);
    if ok {
        serve::respond(
            200,
            false,
            &[
                ("x-gatehouse-principal", s.principal.as_str()),
                ("x-gatehouse-role", s.role.as_str()),
            ],
            Bytes::new(),
        )
    } else {
        serve::respond(401, false, &[], Bytes::new())
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let hexd = args
        .key_sha256
        .unwrap_or_else(|| fixtures::sha256_hex(fixtures::NAMED_KEY));
    let raw = hex::decode(hexd.trim()).context("--key-sha256 is not hex")?;
    let digest: [u8; 32] = raw
        .try_into()
        .map_err(|_| anyhow::anyhow!("--key-sha256 must be 32 bytes"))?;
    let state = Arc::new(State {
        digest,
        principal: format!("key:{}", args.name),
        role: args.role,
    });
    serve::listen_and_serve("bench-auth", &args.listen, move |req| {
        let r = handle(&state, &req);
        async move { r }
    })
}
