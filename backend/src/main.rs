//! `gatehouse-backend --config config/backend.toml`: serve the lifecycle API.

use anyhow::{bail, Context};
use clap::Parser;
use gatehouse_backend::api::api_key::{ApiKey, Replaced};
use gatehouse_backend::api::{self, AppState};
use gatehouse_backend::config::{Config, Overrides};
use gatehouse_backend::service::Service;
use gatehouse_backend::store::Store;
use gatehouse_backend::{expiry, reconcile, runtime};
use gatehouse_lifecycle::validate::TimeoutLimits;
use gatehouse_telemetry::LogFormat;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// OpenSandbox lifecycle server driving a Docker engine (`runtime.type = "docker"`, the
/// default) or a Kubernetes cluster, one Pod per sandbox (`runtime.type = "kubernetes"`,
/// configured in `[kubernetes]`; pause and resume are not supported there).
#[derive(Debug, Parser)]
#[command(name = "gatehouse-backend", version, about)]
struct Args {
    /// TOML configuration file (upstream `sandbox.toml` keys are accepted).
    #[arg(long, env = "SANDBOX_CONFIG_PATH")]
    config: Option<PathBuf>,
    /// Interface to bind (overrides `server.host`).
    #[arg(long)]
    host: Option<String>,
    /// Port to bind (overrides `server.port`).
    #[arg(long)]
    port: Option<u16>,
    /// Serve without an API key. Anyone who can reach the port controls every sandbox.
    #[arg(long)]
    insecure_no_api_key: bool,
    /// Log format.
    #[arg(long, env = "GATEHOUSE_LOG_FORMAT", value_enum, default_value_t)]
    log_format: LogFormat,
}

/// How long in-flight requests may finish after `SIGTERM`/Ctrl-C.
const DRAIN: Duration = Duration::from_secs(10);

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// `SIGHUP`: re-reads and validates the configuration file and reports the result; the
/// signal never ends the process. A changed `server.api_key` takes effect at once; the
/// running listener, store and engine are kept (they change with a restart); an invalid
/// file is reported and ignored.
async fn on_sighup(path: Option<PathBuf>, env: Overrides, cli: Overrides, key: ApiKey) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot handle SIGHUP");
        return;
    };
    while hup.recv().await.is_some() {
        match Config::load(path.as_deref(), env.clone(), cli.clone()) {
            Ok(cfg) => {
                match key.replace(cfg.server.api_key) {
                    Replaced::Changed => tracing::info!("SIGHUP: API key replaced"),
                    Replaced::KeptRunning => tracing::warn!(
                        "SIGHUP: the configuration has no API key; the running one stays in force"
                    ),
                    Replaced::Unchanged => {}
                }
                tracing::info!(
                    "SIGHUP: configuration re-read and valid; listener, store and engine settings apply at the next restart"
                )
            }
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: configuration invalid; the running one stays in force")
            }
        }
    }
}

/// Errors are printed once, as one line of causes, without a backtrace.
fn main() -> std::process::ExitCode {
    match start() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse-backend: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Configuration and telemetry outside the runtime (the OTLP exporter's blocking client
/// must be made and dropped outside async code), then the server on a Tokio runtime.
fn start() -> anyhow::Result<()> {
    let args = Args::parse();
    let env = Overrides {
        api_key: std::env::var("GATEHOUSE_BACKEND_API_KEY")
            .ok()
            .filter(|k| !k.is_empty()),
        docker_host: std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()),
        execd_binary: std::env::var_os("GATEHOUSE_EXECD_BINARY")
            .filter(|b| !b.is_empty())
            .map(PathBuf::from),
        ..Default::default()
    };
    let cli = Overrides {
        host: args.host.clone(),
        port: args.port,
        ..Default::default()
    };
    let cfg = Config::load(args.config.as_deref(), env.clone(), cli.clone())?;
    let otlp = gatehouse_telemetry::init_traced(
        args.log_format,
        "info,sqlx=warn,hyper=warn,bollard=warn,kube_client=warn,kube_runtime=warn",
        "gatehouse-backend",
        cfg.telemetry.otlp_endpoint.as_deref(),
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let served = rt.block_on(run(args, cfg, env, cli));
    drop(rt);
    drop(otlp);
    served
}

async fn run(args: Args, cfg: Config, env: Overrides, cli: Overrides) -> anyhow::Result<()> {
    for key in cfg.ignored_keys() {
        tracing::info!(key, "upstream config key has no meaning here; ignored");
    }
    let insecure = args.insecure_no_api_key
        || std::env::var("OPENSANDBOX_INSECURE_SERVER").is_ok_and(|v| v == "YES");
    if cfg.server.api_key.is_none() {
        if !insecure {
            bail!(
                "refusing to start without an API key: set server.api_key (or GATEHOUSE_BACKEND_API_KEY), \
                 or pass --insecure-no-api-key (OPENSANDBOX_INSECURE_SERVER=YES) to accept that anyone \
                 reaching the port controls every sandbox"
            );
        }
        tracing::warn!(
            "serving WITHOUT an API key: anyone who can reach this port controls every sandbox"
        );
    }

    let store = Store::open(&cfg.store.path)
        .await
        .with_context(|| format!("opening store {}", cfg.store.path.display()))?;
    let runtime = runtime::build(&cfg).await?;
    match cfg.execd_delivery() {
        Some(d) => tracing::info!(
            execd_binary = %d.binary.display(),
            execd_state_dir = %d.state_dir.display(),
            "sandboxes run the in-sandbox agent (execd) as their entrypoint"
        ),
        None => tracing::warn!(
            "runtime.execd_binary is not set: sandboxes run without the in-sandbox agent, so the \
             OpenSandbox SDK's Sandbox.create (which needs execd on port 44772) will fail"
        ),
    }
    let limits = TimeoutLimits {
        min_seconds: cfg.server.min_sandbox_timeout_seconds,
        max_seconds: cfg.server.max_sandbox_timeout_seconds,
    };
    let service = Arc::new(Service::new(store, runtime, limits));
    if let Some(listen) = &cfg.admin.listen {
        let admin = tokio::net::TcpListener::bind(listen.as_str())
            .await
            .with_context(|| format!("admin.listen: cannot listen on {listen}"))?;
        tracing::info!(admin = %admin.local_addr()?, "admin listener: GET /metrics");
        let app = gatehouse_backend::admin::router(service.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(admin, app).await {
                tracing::warn!(error = %e, "admin listener stopped");
            }
        });
    }

    tokio::spawn(reconcile::run(
        service.clone(),
        Duration::from_secs(cfg.expiry.reconcile_interval_seconds),
    ));
    tokio::spawn(gatehouse_backend::events::watch::run(
        service.clone(),
        gatehouse_backend::events::watch::INTERVAL,
    ));
    tokio::spawn(expiry::run(
        service.clone(),
        Duration::from_secs(cfg.expiry.retry_seconds),
    ));

    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    connector.set_nodelay(true);
    let proxy_client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector);
    let api_key = ApiKey::new(cfg.server.api_key.clone());
    tokio::spawn(on_sighup(args.config.clone(), env, cli, api_key.clone()));
    let state = Arc::new(AppState {
        service,
        api_key,
        eip: cfg.server.eip.clone(),
        endpoint_host: cfg.endpoint_host().map(str::to_owned),
        max_body_bytes: cfg.server.max_body_bytes,
        proxy_client,
    });

    let addr = format!("{}:{}", cfg.server.host, cfg.server.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("server.host/server.port: cannot listen on {addr}"))?;
    tracing::info!(listen = %listener.local_addr()?, store = %cfg.store.path.display(), "gatehouse-backend ready");
    // Graceful shutdown: stop accepting, end the event streams, let in-flight requests
    // finish for at most `DRAIN` (a proxied WebSocket may never end on its own).
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    let feed = state.service.clone();
    let serve = axum::serve(listener, api::router(state)).with_graceful_shutdown(async move {
        shutdown_signal().await;
        feed.feed().close();
        stopping_tx.send_replace(true);
    });
    let drained = async move {
        let _ = stopping.wait_for(|s| *s).await;
        tokio::time::sleep(DRAIN).await;
    };
    tokio::select! {
        served = serve => served?,
        () = drained => tracing::warn!(
            drain_seconds = DRAIN.as_secs(),
            "connections still open after the drain; exiting"
        ),
    }
    Ok(())
}
