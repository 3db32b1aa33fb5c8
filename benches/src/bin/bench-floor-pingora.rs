//! `bench-floor-pingora`: the Pingora floor of the proxy-latency benchmark (issue 19).
//!
//! The least a Pingora 0.9 proxy can do: a [`ProxyHttp`] whose only hook is
//! `upstream_peer` (one fixed plain-HTTP peer, Pingora's own upstream connection pool),
//! no downstream modules (not even the disabled compression module Pingora adds by
//! default), and the gateway's server settings: one worker thread, `work_stealing =
//! false`, 8 KiB read / 4 KiB write socket buffers, mimalloc. It forwards the request and
//! the response unchanged, so whatever a Gatehouse path costs beyond this is the gateway's.

use async_trait::async_trait;
use clap::Parser;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::modules::http::HttpModules;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::upstreams::peer::HttpPeer;
use std::net::SocketAddr;

/// mimalloc, as the gateway.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A bare Pingora proxy to one upstream.
#[derive(Debug, Parser)]
#[command(name = "bench-floor-pingora")]
struct Args {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:18092")]
    listen: String,
    /// The upstream (`host:port`, plain HTTP).
    #[arg(long, default_value = "127.0.0.1:18090")]
    upstream: SocketAddr,
    /// Worker threads (`ServerConf::threads`).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Socket read buffer, bytes (what the gateway used while it ran Pingora's HTTP engine).
    #[arg(long, default_value_t = 8192)]
    read_buffer: usize,
    /// Socket write buffer, bytes (what the gateway used while it ran Pingora's HTTP engine).
    #[arg(long, default_value_t = 4096)]
    write_buffer: usize,
}

/// The proxy: every request goes to `upstream`.
struct Floor {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Floor {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    /// No modules at all.
    fn init_downstream_modules(&self, _modules: &mut HttpModules) {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let conf = ServerConf {
        threads: args.threads,
        work_stealing: false,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let floor = Floor {
        upstream: args.upstream,
    };
    let mut service = pingora::proxy::http_proxy_service(&server.configuration, floor);
    service.add_listener(
        ListenerConfig::tcp(args.listen.as_str())
            .l4_buffer(L4BufferSettings::new(args.read_buffer, args.write_buffer)),
    );
    server.add_service(service);
    eprintln!(
        "bench-floor-pingora listening on {} -> {}",
        args.listen, args.upstream
    );
    server.run_forever()
}
