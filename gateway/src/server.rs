//! Wiring: configuration → authenticators, role table, audit sink → a Pingora server
//! whose one service serves HTTP with hyper ([`crate::http`]).

use crate::backend_client::BackendClient;
use crate::config::{AuthMode, GatewayConfig};
use crate::http::service::{ConnLimits, HttpApp};
use crate::http::upstream::Upstream;
use crate::routes::console::Console;
use crate::shutdown::LastWords;
use crate::state::{Gateway, OidcRuntime};
use crate::upgrade::UpgradeOptions;
use anyhow::Context;
use gatehouse_authn::oidc::login::idp_http_client;
use gatehouse_authn::oidc::{
    BearerAuthenticator, JwksCache, OidcLogin, SessionAuthenticator, SessionStore,
};
use gatehouse_authn::{
    ApiKeyAuthenticator, Authenticator, Chain, SecretString, TrustedHeaderAuthenticator,
};
use gatehouse_authz::{PolicyStore, RoleTable};
use gatehouse_scope::ScopeKeys;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::listening::Service;
use std::sync::Arc;
use std::time::Duration;

/// What a built server shares with the reloader ([`crate::reload`]).
pub struct Reloadable {
    /// The named API keys.
    pub keys: Arc<crate::reload::ReloadableKeys>,
    /// The role table.
    pub policy: Arc<PolicyStore>,
}

/// Builds the gateway and its Pingora server. Background tasks (audit writer, policy
/// watcher, admin listener) run on `rt`, which must outlive the server. With
/// `upgrade.upgrade` the listening socket is taken over from a running gateway
/// ([`crate::upgrade`]). Returns the server, what `SIGHUP` reloads, and what the process
/// writes before it exits ([`crate::shutdown`]).
pub fn build(
    cfg: &GatewayConfig,
    rt: &tokio::runtime::Runtime,
    upgrade: &UpgradeOptions,
) -> anyhow::Result<(Server, Reloadable, LastWords)> {
    let upstream = cfg.upstream()?;
    let metrics = Arc::new(crate::metrics::Metrics::new()?);
    if let Some(listen) = &cfg.admin.listen {
        let addr = cfg.admin.addr(listen)?;
        if upgrade.upgrade {
            crate::admin::spawn_when_free(addr, metrics.clone(), rt);
        } else {
            let addr = crate::admin::spawn(addr, metrics.clone(), rt)?;
            tracing::info!(admin = %addr, "admin listener: GET /metrics");
        }
    }

    let handles = rt
        .block_on(cfg.store.open_handles())
        .context("opening the governance store ([store])")?;
    let store = handles.governance.clone();
    // Migrate now when the store answers; otherwise the durable writer keeps trying (the
    // gateway starts, and spools audit events, while PostgreSQL is down).
    let prepared =
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), store.prepare()).await });
    match prepared {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "governance store not ready; retrying in the background")
        }
        Err(_) => tracing::warn!("governance store not answering; retrying in the background"),
    }
    let durable = Arc::new(
        rt.block_on(gatehouse_store::DurableAuditSink::start(
            store.clone(),
            gatehouse_store::DurableOptions::from_config(&cfg.store),
        ))
        .context("starting the durable audit writer ([store] spool_dir)")?,
    );
    let (queued, spooled) = (durable.clone(), durable.clone());
    let _ = metrics.gauges.audit_queue_depth.set(Arc::new(move || {
        i64::try_from(queued.queue_depth()).unwrap_or(i64::MAX)
    }));
    let _ = metrics.gauges.audit_spool_depth.set(Arc::new(move || {
        i64::try_from(spooled.spool_depth()).unwrap_or(i64::MAX)
    }));
    let limits = Arc::new(
        crate::limits::Limits::new(
            rt.block_on(cfg.store.open_limits())
                .context("opening the governance store for the limits ([store])")?,
            &cfg.quotas,
            &cfg.rate_limits,
        )
        .map_err(|(key, message)| anyhow::anyhow!("{key}: {message}"))?,
    );
    limits.spawn_upkeep(rt.handle());
    let personal_keys =
        crate::personal_keys::PersonalKeyAuthenticator::new(store.clone(), rt.handle().clone());
    // Personal `gk_` keys first: the named-key authenticator refuses keys it does not know.
    let mut authenticators: Vec<Box<dyn Authenticator>> = vec![Box::new(personal_keys.clone())];
    let backend_key = if cfg.auth.backend_key_passthrough {
        upstream.api_key.clone().map(SecretString::new)
    } else {
        None
    };
    let env = |name: &str| std::env::var(name).ok();
    let keys = crate::reload::ReloadableKeys::new(ApiKeyAuthenticator::new(
        backend_key,
        &cfg.auth.api_keys,
        &env,
    )?);
    authenticators.push(Box::new(crate::reload::KeysHandle(keys.clone())));
    let ring = crate::signing::build_ring(cfg, rt)?;
    let sandbox_identity = match &cfg.sandbox_identity {
        Some(si) => {
            // After the API keys (a request with a key is decided by the key), before the
            // OIDC bearer (which would refuse a token it did not issue).
            authenticators.push(Box::new(gatehouse_authn::SandboxTokenAuthenticator::new(
                ring.clone(),
                &si.issuer,
                &si.audience,
                &si.role,
            )));
            Some(crate::sandbox_identity::build(
                si,
                ring.clone(),
                &upstream,
                rt,
            )?)
        }
        None => None,
    };
    if let Some(sa) = crate::platform::kubernetes::build(&cfg.platform, rt)? {
        // Platform controllers by ServiceAccount token: only bearers carrying the
        // `kubernetes.io` claim, before the OIDC bearer (which would refuse them).
        authenticators.push(Box::new(sa));
    }
    let oidc = match &cfg.oidc {
        Some(o) => {
            let secret = o.secret(&env).map_err(anyhow::Error::msg)?;
            let http = idp_http_client().map_err(anyhow::Error::msg)?;
            let jwks = Arc::new(JwksCache::new(
                String::new(),
                http.clone(),
                Duration::from_secs(o.jwks_min_refresh_seconds),
            ));
            let login = OidcLogin::new(o.clone(), secret, http, jwks.clone());
            // Sessions in the store: sign-ins in progress too, so the IdP's callback may
            // reach any replica.
            let login = Arc::new(match cfg.replication.sessions {
                crate::replication::SessionPlacement::Store => login.with_shared_states(Arc::new(
                    crate::replication::StoreLoginStates::new(handles.login_states.clone()),
                )),
                crate::replication::SessionPlacement::Memory => login,
            });
            let sessions = Arc::new(match cfg.replication.sessions {
                crate::replication::SessionPlacement::Store => SessionStore::with_backend(
                    &o.session,
                    Arc::new(crate::replication::StoreSessionBackend::new(
                        handles.sessions.clone(),
                    )),
                    rt.handle().clone(),
                ),
                crate::replication::SessionPlacement::Memory => SessionStore::new(&o.session),
            });
            authenticators.push(Box::new(SessionAuthenticator::new(sessions.clone())));
            if o.bearer {
                authenticators.push(Box::new(BearerAuthenticator::new(
                    o,
                    o.issuer.clone(),
                    jwks.clone(),
                    sessions.revocations(),
                )));
            }
            let discover = login.clone();
            let discovered = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (done, m) = (discovered.clone(), metrics.clone());
            rt.spawn(async move {
                let mut failures = 0u32;
                loop {
                    match discover.discover(false).await {
                        Ok(()) => {
                            jwks.prime().await;
                            done.store(true, std::sync::atomic::Ordering::Release);
                            m.set_idp_ready(true);
                            tracing::info!(
                                issuer = discover.issuer(),
                                attempts = failures + 1,
                                "OpenID provider discovered"
                            );
                            break;
                        }
                        Err(e) => {
                            failures += 1;
                            // The IdP often starts after the gateway: one warning, then
                            // quiet retries until it answers.
                            if failures == 1 {
                                tracing::warn!(error = %e, "OpenID provider not reachable yet; retrying every 2 s");
                            } else {
                                tracing::debug!(error = %e, failures, "OpenID provider still not reachable");
                            }
                            tokio::time::sleep(Duration::from_secs(2)).await;
                        }
                    }
                }
            });
            let live = sessions.clone();
            let _ = metrics.gauges.live_sessions.set(Arc::new(move || {
                i64::try_from(live.live()).unwrap_or(i64::MAX)
            }));
            Some(Arc::new(OidcRuntime {
                login,
                sessions,
                secure: o.cookie_secure(),
                discovered,
            }))
        }
        None => None,
    };
    let mut identity_headers = Vec::new();
    if let Some(th) = &cfg.auth.trusted_header {
        let a = TrustedHeaderAuthenticator::new(th.clone()).context("auth.trusted_header")?;
        identity_headers.extend(a.identity_header_names().into_iter().cloned());
        if cfg.auth.mode == AuthMode::ApiKeyAndUser {
            authenticators.push(Box::new(a));
        }
    } else {
        let a =
            TrustedHeaderAuthenticator::new(Default::default()).context("auth.trusted_header")?;
        identity_headers.extend(a.identity_header_names().into_iter().cloned());
    }
    let chain = Chain::new(authenticators);

    let table = RoleTable::load(&cfg.policy.path)
        .with_context(|| format!("loading the role table {}", cfg.policy.path.display()))?;
    crate::check::cross_check(cfg, &table)?;
    if let Some(si) = &cfg.sandbox_identity {
        if !table.has_role(&si.role) {
            anyhow::bail!(
                "sandbox_identity.role: the role table {} has no role '{}'",
                cfg.policy.path.display(),
                si.role
            );
        }
    }
    let policy = Arc::new(PolicyStore::new(table));
    let bindings = Arc::new(crate::bindings::BindingsCache::new());
    let (fresh, aged) = (bindings.clone(), bindings.clone());
    let _ = metrics
        .gauges
        .bindings_fresh
        .set(Arc::new(move || i64::from(fresh.is_fresh())));
    let _ = metrics.gauges.bindings_age_seconds.set(Arc::new(move || {
        aged.age()
            .map_or(-1, |a| i64::try_from(a.as_secs()).unwrap_or(i64::MAX))
    }));
    // The bindings are read before the first request is served.
    rt.block_on(bindings.clone().start(store.clone()));
    let audit = {
        let _guard = rt.enter();
        let log_sink = gatehouse_audit::build(&cfg.audit.sink).context("opening the audit sink")?;
        let sink: Arc<dyn gatehouse_audit::AuditSink> =
            Arc::new(gatehouse_audit::TeeSink::new(vec![
                log_sink,
                durable.clone(),
            ]));
        policy.clone().spawn_watcher(
            cfg.policy.path.clone(),
            Duration::from_millis(cfg.policy.reload_interval_ms),
        );
        sink
    };

    let backend = BackendClient::new(
        upstream.clone(),
        Duration::from_millis(cfg.upstream.lookup_timeout_ms),
        Duration::from_secs(cfg.scope.cache_ttl_seconds),
        metrics.clone(),
    );
    let reloadable = Reloadable {
        keys,
        policy: policy.clone(),
    };
    let last_words = LastWords::new(audit.clone(), rt.handle().clone());
    let gateway = Gateway {
        chain,
        policy,
        upstream: Upstream {
            addr: upstream.addr,
            connect_timeout: Duration::from_millis(cfg.upstream.connect_timeout_ms),
            read_timeout: (cfg.upstream.read_timeout_ms > 0)
                .then(|| Duration::from_millis(cfg.upstream.read_timeout_ms)),
            proxy_read_timeout: (cfg.upstream.proxy_read_timeout_ms > 0)
                .then(|| Duration::from_millis(cfg.upstream.proxy_read_timeout_ms)),
            idle_timeout: Duration::from_millis(cfg.upstream.idle_timeout_ms),
            max_idle: cfg.upstream.max_idle_per_thread,
        },
        upstream_key: upstream
            .api_key
            .as_deref()
            .map(|k| {
                http::HeaderValue::from_str(k).map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
            })
            .transpose()
            .context("upstream.api_key is not a valid header value")?,
        backend,
        audit,
        store,
        changes: handles.changes.clone(),
        durable,
        personal_keys,
        bindings,
        keys: ScopeKeys {
            owner: cfg.scope.owner_metadata_key.clone(),
            team: cfg.scope.team_metadata_key.clone(),
            ..ScopeKeys::default()
        },
        platform: crate::platform::Platform::new(&cfg.platform),
        identity_headers,
        max_body: cfg.scope.max_body_bytes,
        max_response: cfg.scope.max_response_bytes,
        public_url: cfg.server.public_url.clone(),
        sandbox_origins: cfg.server.sandbox_domain.as_deref().map(|d| {
            crate::sandbox_origin::SandboxOrigins::new(
                d,
                ring.clone(),
                cfg.oidc.as_ref().is_some_and(|o| o.cookie_secure()),
            )
        }),
        caller: crate::pipeline::caller::CallerAssertions::new(ring),
        sandbox_identity,
        hosts: crate::hosts::PublicHosts::new(
            cfg.server.public_url.as_deref(),
            &cfg.server.allowed_hosts,
            &cfg.server.listen,
        ),
        own_cookies: {
            let mut c = vec![
                crate::cookies::LOGIN_COOKIE.to_string(),
                crate::sandbox_origin::SANDBOX_COOKIE.to_string(),
            ];
            if let Some(o) = &cfg.oidc {
                c.push(o.session.cookie_name.clone());
            }
            c
        },
        oidc,
        cors: crate::cors::Cors::new(&cfg.server.cors_allowed_origins),
        console: Arc::new(
            Console::load(&cfg.console.dir)
                .with_context(|| format!("reading {}", cfg.console.dir.display()))?,
        ),
        mode_name: match cfg.auth.mode {
            AuthMode::ApiKeyOnly => "api_key_only",
            AuthMode::ApiKeyAndUser => "api_key_and_user",
        },
        metrics,
        events: crate::events::start(
            &cfg.events,
            &upstream,
            ScopeKeys {
                owner: cfg.scope.owner_metadata_key.clone(),
                team: cfg.scope.team_metadata_key.clone(),
                ..ScopeKeys::default()
            },
            rt,
        ),
        limits,
    };

    let listen = crate::config::resolve_listen("server.listen", &cfg.server.listen)?;
    let conf = ServerConf {
        upgrade_sock: upgrade.sock_path(listen),
        threads: cfg.server.threads,
        grace_period_seconds: Some(cfg.server.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(cfg.server.graceful_shutdown_timeout_seconds),
        work_stealing: cfg.server.work_stealing,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(crate::upgrade::pingora_opt(upgrade), conf);
    if upgrade.upgrade {
        tracing::info!(
            sock = %upgrade.sock_path(listen),
            "upgrade: waiting for the running gateway's sockets (send it SIGQUIT)"
        );
    }
    // With --upgrade this receives the listening sockets of the old process.
    server.bootstrap();
    let limits = ConnLimits {
        header_read_timeout: Duration::from_millis(cfg.server.header_read_timeout_ms),
        max_head_bytes: cfg.server.max_header_bytes,
        max_headers: cfg.server.max_headers,
    };
    let gateway = Arc::new(gateway);
    {
        // Every replica follows the store's change log to keep its caches true.
        let _guard = rt.enter();
        crate::replication::Follower::new(
            handles.changes.clone(),
            handles.sessions.clone(),
            Duration::from_millis(cfg.replication.poll_ms),
            Duration::from_secs(cfg.replication.retention_seconds),
        )
        .spawn(gateway.clone());
    }
    let app = HttpApp::new(gateway, limits);
    let mut service = Service::new("gatehouse".to_owned(), app);
    // Bind once now so a port in use fails the start with a clear error instead of
    // Pingora logging "ready" and retrying (an upgrade inherits the socket instead).
    if !upgrade.upgrade {
        std::net::TcpListener::bind(listen)
            .with_context(|| format!("server.listen: cannot listen on {listen}"))?;
    }
    service.add_listener(
        ListenerConfig::tcp(listen.to_string()).l4_buffer(L4BufferSettings::new(
            cfg.server.read_buffer_bytes,
            cfg.server.write_buffer_bytes,
        )),
    );
    server.add_service(service);
    Ok((server, reloadable, last_words))
}
