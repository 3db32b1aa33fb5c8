//! Many gateways, one truth (issue 20): two gateway processes on their own ports share one
//! real PostgreSQL and one backend, with console users logged in through the real dev IdP.
//!
//! - a session made on replica A works on B (same identity, same CSRF token);
//! - a logout on B is a 401 on A within a second (polled up to that deadline);
//! - a personal key B has used and cached, revoked through A, is refused by B within a
//!   second (its cache would have kept it 10 s);
//! - a sandbox deleted through A is a 404 through B at once; a metadata change through A
//!   that moves a sandbox out of a team is not answered from B's cached scope;
//! - A killed with SIGKILL under load: its clients move to B and keep their sessions,
//!   except one the store says has ended;
//! - a sign-in started on A completes on B (the IdP's callback reaches another replica),
//!   and its state cannot be used twice;
//! - a team quota of 2 is 2 however concurrent creates are spread over the replicas;
//! - a burst split over the replicas meets one rate limit, not one per replica.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::idp::{Idp, IdpOptions};
use gatehouse_tests::login::{login, login_across, LoginResult};
use gatehouse_tests::postgres::Postgres;
use gatehouse_tests::sandbox::httpd_body;
use gatehouse_tests::{free_port, Backend, BackendOptions};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

const ADMIN: &str = "replicas-admin-key-0123456789";
/// An operator of `team-r`.
const TEAM: &str = "replicas-team-r-key-0123456789";

/// The deadline within which a change made through one replica holds on the others.
const WITHIN: Duration = Duration::from_secs(1);

/// PostgreSQL, the backend, the IdP and two gateways sharing the store.
struct Replicas {
    a: Gateway,
    b: Gateway,
    idp: Idp,
    _backend: Backend,
    _pg: Postgres,
}

impl Replicas {
    async fn start() -> Self {
        Self::start_with("").await
    }

    /// Two replicas with `more` appended to both configurations.
    async fn start_with(more: &str) -> Self {
        let pg = Postgres::start().unwrap();
        let backend = Backend::start(BackendOptions::default()).await.unwrap();
        let (port_a, port_b) = (free_port(), free_port());
        // Both replicas stand behind one public address (A's here): the IdP sends every
        // browser back to it, and the "balancer" (the test) may pick either replica.
        let mut opts = IdpOptions::for_gateway(&format!("http://127.0.0.1:{port_a}"));
        // B is registered too: the IdP may send a user back to either replica.
        opts.redirect_uris
            .push(format!("http://127.0.0.1:{port_b}/auth/callback"));
        let idp = Idp::start(opts).await.unwrap();
        let extra = format!(
            "[oidc]\nissuer = \"{issuer}\"\nclient_id = \"{client}\"\nclient_secret = \"{secret}\"\n\
             redirect_url = \"http://127.0.0.1:{port_a}/auth/callback\"\n\n\
             [store]\ntype = \"postgres\"\nurl = \"{url}\"\nretry_ms = 200\n\n\
             [replication]\nsessions = \"store\"\npoll_ms = 500\n\n\
             [[auth.api_keys]]\nname = \"admin\"\nsha256 = \"{admin}\"\nrole = \"service_admin\"\n\n\
             [[auth.api_keys]]\nname = \"team-r-bot\"\nsha256 = \"{team}\"\nrole = \"operator\"\nteam = \"team-r\"\n\n{more}\n",
            issuer = idp.issuer,
            client = idp.client_id,
            secret = idp.client_secret,
            url = pg.url,
            admin = hex::encode(Sha256::digest(ADMIN.as_bytes())),
            team = hex::encode(Sha256::digest(TEAM.as_bytes())),
        );
        let a = Gateway::start_on(port_a, &backend.url, &backend.api_key, &extra)
            .await
            .unwrap();
        let b = Gateway::start_on(port_b, &backend.url, &backend.api_key, &extra)
            .await
            .unwrap();
        Self {
            a,
            b,
            idp,
            _backend: backend,
            _pg: pg,
        }
    }

    async fn login(&self, user: &str) -> LoginResult {
        login(&self.a.url, &self.idp, user, "/console/")
            .await
            .unwrap()
    }
}

/// A client that sends `user`'s session cookie to any replica.
fn with_cookie(user: &LoginResult) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        reqwest::header::COOKIE,
        user.cookie_header().parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(h)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn keyed(key: &str) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("OPEN-SANDBOX-API-KEY", key.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(h)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn send_json(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn get(c: &reqwest::Client, url: String) -> (u16, Value) {
    let r = c.get(url).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// `GET /auth/me` on `gw` as `c`.
async fn me(c: &reqwest::Client, gw: &Gateway) -> (u16, Value) {
    get(c, gw.at("/auth/me")).await
}

/// Polls `probe` until it returns `true` or [`WITHIN`] has passed since `since`; whether it
/// did in time.
async fn holds_within<F, Fut>(since: Instant, mut probe: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if probe().await {
            return true;
        }
        if since.elapsed() > WITHIN {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sessions, logout, personal keys and sandbox scopes across two replicas.
#[tokio::test]
async fn replicas_share_sessions_revocations_and_scopes() {
    let r = Replicas::start().await;
    let alice = r.login("alice").await;
    let c = with_cookie(&alice);

    // Logged in through A, known to B: same identity, same CSRF token.
    let (sa, on_a) = me(&c, &r.a).await;
    let (sb, on_b) = me(&c, &r.b).await;
    assert_eq!((sa, sb), (200, 200), "{on_a} {on_b}");
    assert_eq!(on_b["subject"], "alice");
    assert_eq!(on_b["team"], "team-a");
    assert_eq!(on_b["authMethod"], "session");
    assert_eq!(on_a["csrfToken"], on_b["csrfToken"]);
    let csrf = on_b["csrfToken"].as_str().unwrap().to_string();

    // A session mutation on B with the token A handed out: a create in alice's scope.
    let created: Value = c
        .post(r.b.at("/v1/sandboxes"))
        .header("X-CSRF-Token", &csrf)
        .header("Origin", &r.b.url)
        .json(&httpd_body(json!({})))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mine = created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_string();
    // The scope tokens the gateway injected (canonical forms of alice and team-a).
    let scope_md = json!({
        "access.team": created["metadata"]["access.team"].clone(),
        "access.owner": created["metadata"]["access.owner"].clone(),
    });
    assert!(scope_md["access.team"].is_string(), "{created}");

    // Scope: B caches alice's sandbox as team-a; service_admin moves it to team-b through
    // A; B must not answer alice from its cached scope.
    let (s, _) = get(&c, r.b.at(&format!("/v1/sandboxes/{mine}"))).await;
    assert_eq!(s, 200);
    let admin = keyed(ADMIN);
    let moved = admin
        .patch(r.a.at(&format!("/v1/sandboxes/{mine}/metadata")))
        .json(&json!({"access.team": "team-b", "access.owner": "carol"}))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200, "{}", moved.text().await.unwrap());
    let (s, v) = get(&c, r.b.at(&format!("/v1/sandboxes/{mine}"))).await;
    assert_eq!(s, 404, "B answered from a stale scope: {v}");

    // A sandbox alice reads through B, deleted through A: 404 through B at once.
    let other: Value = admin
        .post(r.a.at("/v1/sandboxes"))
        .json(&httpd_body(scope_md.clone()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other = other["id"].as_str().unwrap().to_string();
    let (s, _) = get(&c, r.b.at(&format!("/v1/sandboxes/{other}"))).await;
    assert_eq!(s, 200);
    let del = admin
        .delete(r.a.at(&format!("/v1/sandboxes/{other}")))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let (s, _) = get(&c, r.b.at(&format!("/v1/sandboxes/{other}"))).await;
    assert_eq!(s, 404);

    // A personal key B has used (and cached), revoked through A: refused by B within a
    // second, though B's key cache would have kept it for 10 s.
    let key: Value = admin
        .post(r.a.at("/gatehouse/v1/keys"))
        .json(&json!({"name": "ci", "team": "team-a", "role": "operator"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = key["key"]
        .as_str()
        .unwrap_or_else(|| panic!("{key}"))
        .to_string();
    let (s, _) = me(&keyed(&secret), &r.b).await;
    assert_eq!(s, 200);
    let revoked = admin
        .delete(r.a.at(&format!(
            "/gatehouse/v1/keys/{}",
            key["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    let since = Instant::now();
    let refused = holds_within(since, || async { me(&keyed(&secret), &r.b).await.0 == 401 }).await;
    assert!(refused, "B still accepts the revoked key after {WITHIN:?}");

    // Logout on B: A refuses the session within a second.
    let out = c
        .post(r.b.at("/auth/logout"))
        .header("X-CSRF-Token", &csrf)
        .header("Origin", &r.b.url)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    let since = Instant::now();
    let ended = holds_within(since, || async { me(&c, &r.a).await.0 == 401 }).await;
    assert!(ended, "A still accepts the session after {WITHIN:?}");
    let (s, v) = me(&c, &r.a).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (401, Some("GATEWAY::SESSION_EXPIRED"))
    );

    // Cookies, keys and tokens never reach a log or the audit trail.
    for gw in [&r.a, &r.b] {
        assert!(!gw.exposes(&alice.session_cookie));
        assert!(!gw.exposes(&secret));
        assert!(!gw.exposes(&csrf));
    }
    let _ = admin
        .delete(r.a.at(&format!("/v1/sandboxes/{mine}")))
        .send()
        .await;
}

/// Replica A is killed with SIGKILL while clients use it; they move to B and keep their
/// sessions, except the one the store says has ended. A restarted A knows them all again.
#[tokio::test]
async fn a_killed_replica_loses_no_session() {
    let mut r = Replicas::start().await;
    let users = ["alice", "bob", "carol"];
    let mut logins = Vec::new();
    for u in users {
        logins.push(r.login(u).await);
    }
    let clients: Vec<reqwest::Client> = logins.iter().map(with_cookie).collect();
    // bob signs out (on A) before the crash.
    let (_, bob_me) = me(&clients[1], &r.a).await;
    let out = clients[1]
        .post(r.a.at("/auth/logout"))
        .header("X-CSRF-Token", bob_me["csrfToken"].as_str().unwrap())
        .header("Origin", &r.a.url)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);

    // Load on A from alice and carol; A dies in the middle of it.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for c in [clients[0].clone(), clients[2].clone()] {
        let (url, stop) = (r.a.at("/v1/sandboxes"), stop.clone());
        load.push(tokio::spawn(async move {
            let mut ok = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match c.get(&url).send().await {
                    Ok(resp) if resp.status() == 200 => ok += 1,
                    Ok(resp) => panic!("A answered {} before dying", resp.status()),
                    Err(_) => break,
                }
            }
            ok
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    r.a.kill();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in load {
        assert!(l.await.unwrap() > 0, "the load reached A before it died");
    }

    // The clients move to B: sessions intact, bob's still ended.
    for (i, u) in users.iter().enumerate() {
        let (s, v) = me(&clients[i], &r.b).await;
        if *u == "bob" {
            assert_eq!(s, 401, "bob signed out: {v}");
        } else {
            assert_eq!((s, v["subject"].as_str()), (200, Some(*u)), "{v}");
            let (s, _) = get(&clients[i], r.b.at("/v1/sandboxes")).await;
            assert_eq!(s, 200);
        }
    }
    // A comes back knowing every session from the store.
    r.a.restart().await.unwrap();
    let (s, v) = me(&clients[2], &r.a).await;
    assert_eq!((s, v["subject"].as_str()), (200, Some("carol")), "{v}");
    assert_eq!(me(&clients[1], &r.a).await.0, 401);
}

/// A create as `key` on `gw`: the status and the body.
async fn create(gw: &Gateway, key: &str) -> (u16, Value) {
    let r = keyed(key)
        .post(gw.at("/v1/sandboxes"))
        .json(&httpd_body(json!({})))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// The ids `key` lists through `gw`.
async fn listed(gw: &Gateway, key: &str) -> Vec<String> {
    let (s, v) = get(&keyed(key), gw.at("/v1/sandboxes?pageSize=100")).await;
    assert_eq!(s, 200, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_team_quota_of_two_is_two_across_replicas() {
    let r = Replicas::start().await;
    let (s, q) = send_json(
        keyed(ADMIN)
            .put(r.a.at("/gatehouse/v1/quotas/teams/team-r"))
            .json(&json!({"maxSandboxes": 2})),
    )
    .await;
    assert_eq!(s, 200, "{q}");
    let (s, first) = create(&r.b, TEAM).await;
    assert_eq!(s, 202, "{first}");

    // Four creates at once, two on each replica, with one slot left: each replica alone
    // counts one live sandbox, so without a shared lock both would admit one.
    let (a1, b1, a2, b2) = tokio::join!(
        create(&r.a, TEAM),
        create(&r.b, TEAM),
        create(&r.a, TEAM),
        create(&r.b, TEAM)
    );
    let answers = [a1, b1, a2, b2];
    let made = answers.iter().filter(|(s, _)| *s == 202).count();
    let refused: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 403)
        .map(|(_, v)| v)
        .collect();
    assert_eq!((made, refused.len()), (1, 3), "{answers:?}");
    for e in refused {
        assert_eq!(e["code"], "GATEWAY::QUOTA_EXCEEDED", "{e}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("maxSandboxes is 2; 2 in use"),
            "{e}"
        );
    }
    assert_eq!(listed(&r.a, TEAM).await.len(), 2);
    assert_eq!(listed(&r.b, TEAM).await.len(), 2);
    for id in listed(&r.a, TEAM).await {
        let s = keyed(TEAM)
            .delete(r.b.at(&format!("/v1/sandboxes/{id}")))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(s, 204);
    }
}

#[tokio::test]
async fn a_burst_split_across_replicas_meets_one_rate_limit() {
    // 4 at once and one a second for the operator role, shared by two replicas: each
    // enforces half (burst 2, one request every 2 s).
    let r = Replicas::start_with(
        "[rate_limits]\nreplicas = 2\n\n[rate_limits.roles.operator]\nper_second = 1\nburst = 4\n",
    )
    .await;
    let c = keyed(TEAM);
    let mut ok = 0;
    let mut limited = 0;
    for i in 0..12 {
        let gw = if i % 2 == 0 { &r.a } else { &r.b };
        let resp = c.get(gw.at("/v1/sandboxes")).send().await.unwrap();
        match resp.status().as_u16() {
            200 => ok += 1,
            429 => {
                limited += 1;
                assert_eq!(
                    resp.headers()["ratelimit-limit"].to_str().unwrap(),
                    "4",
                    "the caller is told the one limit, not a replica's share"
                );
                let e: Value = resp.json().await.unwrap();
                assert_eq!(e["code"], "GATEWAY::RATE_LIMITED", "{e}");
            }
            s => panic!("unexpected {s}"),
        }
    }
    // One limit of 4 (plus at most one token each replica refilled meanwhile), not 4 on
    // each replica.
    assert!((4..=6).contains(&ok), "{ok} of 12 went through");
    assert_eq!(ok + limited, 12);
}

#[tokio::test]
async fn a_sign_in_started_on_one_replica_completes_on_another() {
    let r = Replicas::start().await;
    let user = login_across(&r.a.url, &r.b.url, &r.idp, "alice", "/console/")
        .await
        .unwrap();
    assert!(
        user.callback_url.starts_with(&r.b.url),
        "{}",
        user.callback_url
    );
    assert_eq!(user.final_location, "/console/");
    let c = with_cookie(&user);
    for gw in [&r.a, &r.b] {
        let (s, v) = me(&c, gw).await;
        assert_eq!((s, v["subject"].as_str()), (200, Some("alice")), "{v}");
    }
    // The sign-in's state was taken by B: the same callback on A is refused.
    let replay = user.callback_url.replacen(&r.b.url, &r.a.url, 1);
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(replay)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["code"], "GATEWAY::LOGIN_STATE", "{e}");
}
