//! `gatehouse-execd`: the in-sandbox agent.
//!
//! It serves the OpenSandbox execd API (port 44772: commands, sessions, files, metrics,
//! `/proxy/{port}`), an egress API stub (port 18080), and, given an entrypoint after
//! `--`, supervises it as PID 1 (signal forwarding, zombie reaping, exit-code
//! propagation). See the crate README for the contract with the backend.

pub mod accounts;
pub mod auth;
pub mod commands;
pub mod config;
pub mod env;
pub mod error;
pub mod fsutil;
pub mod metrics;
pub mod output;
pub mod process;
pub mod routes;
pub mod sessions;
pub mod sse;
pub mod state;
pub mod supervisor;

use std::process::ExitCode;
use std::sync::Arc;

use config::{Config, TOKEN_ENV};

/// Exit code for configuration or startup errors.
pub const STARTUP_FAILED: u8 = 2;

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1))
}

/// Run the agent; returns the process exit code.
pub fn run(cfg: Config) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(cfg.log_level)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let env_token = std::env::var(TOKEN_ENV).ok();
    let child_env = env::ChildEnv::from_process();
    let token = match auth::load_token(&cfg, env_token) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("gatehouse-execd: {e}");
            return ExitCode::from(STARTUP_FAILED);
        }
    };
    auth::make_non_dumpable();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gatehouse-execd: cannot start the runtime: {e}");
            return ExitCode::from(STARTUP_FAILED);
        }
    };
    let code = rt.block_on(serve(cfg, token, child_env));
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    exit_code(code)
}

async fn serve(cfg: Config, token: Option<auth::Secret>, env: env::ChildEnv) -> i32 {
    process::Processes::global();
    let execd = match tokio::net::TcpListener::bind(cfg.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("gatehouse-execd: cannot listen on {}: {e}", cfg.listen);
            return i32::from(STARTUP_FAILED);
        }
    };
    let execd_port = execd
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(cfg.listen.port());
    let egress = if cfg.no_egress {
        None
    } else {
        match tokio::net::TcpListener::bind(cfg.egress_listen).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(addr = %cfg.egress_listen, error = %e,
                    "egress stub not served (port taken, e.g. by an egress sidecar)");
                None
            }
        }
    };
    let egress_port = egress
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.port());
    let state = Arc::new(state::AppState {
        commands: commands::Registry::default(),
        sessions: sessions::Sessions::default(),
        shell: env.shell(cfg.shell.as_deref()),
        env: env.clone(),
        max_upload_bytes: cfg.max_upload_bytes,
        max_json_bytes: cfg.max_json_bytes,
        execd_port,
        egress_port,
    });
    let egress_api = egress_port.map(|_| routes::egress::api_router());
    let app = routes::execd_router(state.clone(), token.clone(), egress_api);
    tracing::info!(
        listen = %cfg.listen, port = execd_port, egress_port = ?egress_port,
        auth = token.is_some(), shell = %state.shell,
        "gatehouse-execd serving"
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(execd, app).await {
            tracing::error!(error = %e, "execd server stopped");
        }
    });
    if let Some(l) = egress {
        let app = routes::egress::router(token);
        tokio::spawn(async move {
            if let Err(e) = axum::serve(l, app).await {
                tracing::error!(error = %e, "egress server stopped");
            }
        });
    }
    supervisor::supervise(&cfg.entrypoint, &env).await
}
