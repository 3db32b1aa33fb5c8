//! One conformance suite for both governance stores: SQLite in a temp dir and a real
//! PostgreSQL 15 cluster ([`gatehouse_tests::postgres`]). Plus the durable audit sink
//! against PostgreSQL going away and coming back, and against a process that died with
//! events in its spool.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_audit::{AuditEvent, AuditPrincipal, AuditSink, Outcome};
use gatehouse_store::{
    generate_key, hash_key, AuditQuery, Binding, BindingKind, Cursor, DurableAuditSink,
    DurableOptions, GovernanceStore, KeySpec, PostgresStore, QuotaStore, SigningKeyStore,
    SqliteStore, StoreError, StoredSigningKey, MAX_PAGE,
};
use gatehouse_tests::postgres::Postgres;
use std::sync::Arc;
use std::time::Duration;

#[path = "store_conformance/replicas.rs"]
mod replicas;

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn event(n: usize, at_ms: i64, actor: &str, team: &str, outcome: Outcome) -> AuditEvent {
    AuditEvent {
        id: uuid::Uuid::new_v4().to_string(),
        time: gatehouse_store::ms_to_rfc3339(at_ms),
        request_id: format!("req-{n}"),
        principal: AuditPrincipal {
            subject: actor.into(),
            team: Some(team.into()),
            role: Some("operator".into()),
            auth_method: "session".into(),
            key_name: None,
        },
        action: Some(
            if n % 2 == 0 {
                "sandbox.create"
            } else {
                "sandbox.delete"
            }
            .into(),
        ),
        sandbox_id: Some(format!("sbx-{}", n % 3)),
        method: "POST".into(),
        path: "/v1/sandboxes?secret=x".into(),
        status: 202,
        outcome,
        reason: None,
        duration_ms: 1.25,
        on_behalf_of: None,
        peer: Some("127.0.0.1".into()),
    }
}

async fn all(store: &dyn GovernanceStore, mut q: AuditQuery) -> Vec<AuditEvent> {
    let mut out = Vec::new();
    q.limit = MAX_PAGE;
    loop {
        let page = store.query_audit(&q).await.unwrap();
        out.extend(page.events);
        match page.next {
            Some(c) => q.after = Some(c),
            None => return out,
        }
    }
}

async fn count(store: &dyn GovernanceStore) -> usize {
    all(store, AuditQuery::all()).await.len()
}

/// The suite every implementation must pass.
async fn conformance(store: &dyn GovernanceStore) {
    store.prepare().await.unwrap();
    store.prepare().await.unwrap(); // migrations are idempotent
    store.ping().await.unwrap();
    assert_eq!(count(store).await, 0);

    // 30 events: 10 ms apart, except that 6..=9 share one millisecond (keyset ties).
    let events: Vec<AuditEvent> = (0..30)
        .map(|n| {
            let at = if (6..=9).contains(&n) {
                T0 + 60
            } else {
                T0 + 10 * n as i64
            };
            let (actor, team) = if n % 3 == 0 {
                ("alice", "team-a")
            } else {
                ("bob", "team-b")
            };
            let outcome = if n % 5 == 0 {
                Outcome::Denied
            } else {
                Outcome::Allowed
            };
            let mut e = event(n, at, actor, team, outcome);
            if n == 1 {
                // A platform controller's event names the tenant it acted for.
                e.principal.subject = "key:onboarding".into();
                e.on_behalf_of = Some(gatehouse_audit::OnBehalfOf {
                    team: Some("team-a".into()),
                    owner: Some("alice".into()),
                });
            }
            e
        })
        .collect();
    assert_eq!(store.insert_audit(&events).await.unwrap(), 30);
    // Idempotent by id: replaying everything adds nothing.
    assert_eq!(store.insert_audit(&events).await.unwrap(), 0);
    assert_eq!(store.insert_audit(&events[3..7]).await.unwrap(), 0);
    assert_eq!(count(store).await, 30);

    // Round trip: what was recorded is what is read (the query string never stored).
    let got = all(store, AuditQuery::all()).await;
    let e0 = got.iter().find(|e| e.id == events[0].id).unwrap();
    let mut expect = events[0].clone();
    expect.path = "/v1/sandboxes".into();
    assert_eq!(e0, &expect);
    let e1 = got.iter().find(|e| e.id == events[1].id).unwrap();
    assert_eq!(e1.on_behalf_of, events[1].on_behalf_of);
    assert!(e1.on_behalf_of.is_some());

    // Keyset pages of 7: newest first, no overlap, no gap, ties broken by id.
    let mut q = AuditQuery::all();
    q.limit = 7;
    let mut paged = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.query_audit(&q).await.unwrap();
        pages += 1;
        assert!(page.events.len() <= 7);
        paged.extend(page.events);
        match page.next {
            Some(c) => {
                let opaque = c.encode();
                q.after = Some(Cursor::decode(&opaque).unwrap());
            }
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(paged.len(), 30);
    let keys: Vec<(i64, String)> = paged
        .iter()
        .map(|e| (gatehouse_store::event_ms(e), e.id.clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted, "newest first, then id descending");
    sorted.dedup();
    assert_eq!(sorted.len(), 30);

    // Filters.
    let by = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery::all();
        f(&mut q);
        q
    };
    let alice = all(store, by(|q| q.actor = Some("alice".into()))).await;
    assert_eq!(alice.len(), 10);
    assert!(alice.iter().all(|e| e.principal.subject == "alice"));
    assert_eq!(
        all(store, by(|q| q.team = Some("team-b".into())))
            .await
            .len(),
        20
    );
    assert_eq!(
        all(store, by(|q| q.sandbox_id = Some("sbx-1".into())))
            .await
            .len(),
        10
    );
    assert_eq!(
        all(store, by(|q| q.action = Some("sandbox.delete".into())))
            .await
            .len(),
        15
    );
    assert_eq!(
        all(store, by(|q| q.outcome = Some(Outcome::Denied)))
            .await
            .len(),
        6
    );
    let window = all(
        store,
        by(|q| {
            q.since_ms = Some(T0 + 100);
            q.until_ms = Some(T0 + 200);
        }),
    )
    .await;
    assert_eq!(window.len(), 10, "events 10..=19");
    let both = all(
        store,
        by(|q| {
            q.actor = Some("alice".into());
            q.outcome = Some(Outcome::Denied);
        }),
    )
    .await;
    assert_eq!(both.len(), 2, "n = 0 and 15");
    // Values are bound, never spliced into SQL.
    let hostile = all(store, by(|q| q.actor = Some("x' OR '1'='1".into()))).await;
    assert!(hostile.is_empty());
    assert_eq!(count(store).await, 30);
    // Page bounds.
    for limit in [0, MAX_PAGE + 1] {
        let mut q = AuditQuery::all();
        q.limit = limit;
        assert!(matches!(
            store.query_audit(&q).await,
            Err(StoreError::Invalid(_))
        ));
    }

    // Bindings: create, replace, list, delete; the version moves on every change.
    let v0 = store.bindings_version().await.unwrap();
    let mut b = Binding {
        kind: BindingKind::Group,
        name: "platform".into(),
        role: "operator".into(),
        team: Some("team-a".into()),
        created_by: "root".into(),
        created_ms: T0,
    };
    store.put_binding(&b).await.unwrap();
    let alice_b = Binding {
        kind: BindingKind::Subject,
        name: "alice".into(),
        role: "viewer".into(),
        team: None,
        created_by: "root".into(),
        created_ms: T0,
    };
    store.put_binding(&alice_b).await.unwrap();
    b.role = "service_admin".into();
    store.put_binding(&b).await.unwrap();
    let v1 = store.bindings_version().await.unwrap();
    assert!(v1 >= v0 + 3, "{v0} -> {v1}");
    assert_eq!(
        store.list_bindings().await.unwrap(),
        vec![b.clone(), alice_b.clone()]
    );
    assert!(store
        .delete_binding(BindingKind::Group, "platform")
        .await
        .unwrap());
    assert!(!store
        .delete_binding(BindingKind::Group, "platform")
        .await
        .unwrap());
    assert_eq!(store.list_bindings().await.unwrap(), vec![alice_b]);
    assert!(store.bindings_version().await.unwrap() > v1);

    // API keys: only the hash is stored; revoke once; last-used; expiry.
    let spec = |name: &str, subject: &str, expires_ms| KeySpec {
        name: name.into(),
        subject: subject.into(),
        team: Some("team-a".into()),
        role: "operator".into(),
        expires_ms,
    };
    let k1 = generate_key(spec("ci", "alice", None), T0);
    let k2 = generate_key(spec("old", "alice", Some(T0 + 5)), T0 + 1);
    let k3 = generate_key(spec("bobs", "bob", None), T0 + 2);
    for k in [&k1, &k2, &k3] {
        store.create_key(&k.record).await.unwrap();
    }
    let found = store
        .key_by_hash(&hash_key(&k1.secret))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, k1.record);
    assert!(found.is_usable(T0 + 10));
    assert!(store
        .key_by_hash(&hash_key("gk_nope"))
        .await
        .unwrap()
        .is_none());
    let k2s = store.key_by_id(&k2.record.id).await.unwrap().unwrap();
    assert!(k2s.is_usable(T0 + 4) && !k2s.is_usable(T0 + 5));
    let mine = store.list_keys(Some("alice")).await.unwrap();
    assert_eq!(
        mine.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
        ["old", "ci"],
        "newest first"
    );
    assert_eq!(store.list_keys(None).await.unwrap().len(), 3);
    store.touch_key(&k1.record.id, T0 + 7).await.unwrap();
    assert!(store.revoke_key(&k1.record.id, T0 + 8).await.unwrap());
    assert!(!store.revoke_key(&k1.record.id, T0 + 9).await.unwrap());
    let k1s = store.key_by_id(&k1.record.id).await.unwrap().unwrap();
    assert_eq!(
        (k1s.last_used_ms, k1s.revoked_ms),
        (Some(T0 + 7), Some(T0 + 8))
    );
    assert!(!k1s.is_usable(T0 + 10));
    // The secret is nowhere in the stored record.
    assert!(!format!("{k1s:?}").contains(&k1.secret));
}

/// The signing keys the gateway's replicas share: insert once per kid, read the live
/// ones oldest first (seed intact), purge the expired.
async fn signing_keys(store: &dyn SigningKeyStore) {
    let key = |kid: &str, active: i64, seed: u8| StoredSigningKey {
        kid: kid.into(),
        seed: [seed; 32],
        created_ms: T0,
        active_ms: active,
        retire_ms: active + 1000,
        expire_ms: active + 2000,
    };
    assert!(store
        .insert_signing_key(&key("k2", T0 + 1000, 2))
        .await
        .unwrap());
    assert!(store.insert_signing_key(&key("k1", T0, 1)).await.unwrap());
    assert!(
        !store
            .insert_signing_key(&key("k1", T0 + 5, 9))
            .await
            .unwrap(),
        "a kid is stored once; a racing replica's insert changes nothing"
    );
    let live = store.signing_keys(T0).await.unwrap();
    let kids: Vec<&str> = live.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["k1", "k2"]);
    assert_eq!(live[0].seed, [1; 32]);
    assert_eq!(live[0].retire_ms, T0 + 1000);
    assert!(
        !format!("{:?}", live[0]).contains("seed"),
        "Debug hides the seed"
    );
    // k1 expires at T0 + 2000: no longer listed, then purged.
    let later = store.signing_keys(T0 + 2000).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(store.purge_signing_keys(T0 + 2000).await.unwrap(), 1);
    assert_eq!(store.signing_keys(0).await.unwrap().len(), 1);
}

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("g.db")).await.unwrap();
    assert_eq!(store.kind(), "sqlite");
    conformance(&store).await;
    signing_keys(&store).await;
    replicas::sessions_and_changes(&store).await;
    replicas::login_states(&store).await;
    // Reopening keeps the data and re-applies no migration.
    drop(store);
    let again = SqliteStore::open(&dir.path().join("g.db")).await.unwrap();
    assert_eq!(count(&again).await, 30);
}

#[tokio::test]
async fn postgres_store_conforms() {
    let pg = Postgres::start().unwrap();
    let store = PostgresStore::connect_lazy(&pg.url).unwrap();
    assert_eq!(store.kind(), "postgres");
    conformance(&store).await;
    store.prepare().await.unwrap();
    signing_keys(&store).await;
    replicas::sessions_and_changes(&store).await;
    replicas::login_states(&store).await;

    // Binding changes wake listeners at once (LISTEN/NOTIFY), not after the poll.
    store.wait_for_change(Duration::from_millis(100)).await; // opens the listener
    let waiter = store.clone();
    let woke = tokio::spawn(async move {
        let t = std::time::Instant::now();
        waiter.wait_for_change(Duration::from_secs(20)).await;
        t.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let b = Binding {
        kind: BindingKind::Subject,
        name: "notified".into(),
        role: "operator".into(),
        team: None,
        created_by: "t".into(),
        created_ms: T0,
    };
    store.put_binding(&b).await.unwrap();
    let waited = woke.await.unwrap();
    assert!(waited < Duration::from_secs(5), "woke after {waited:?}");

    // Every change wakes followers on the one channel, not only binding edits.
    use gatehouse_store::ChangeLog;
    let waiter = store.clone();
    let woke = tokio::spawn(async move {
        let t = std::time::Instant::now();
        waiter.wait_for_changes(Duration::from_secs(20)).await;
        t.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    store
        .publish(gatehouse_store::ChangeKind::Sandbox, "sbx-notified")
        .await
        .unwrap();
    let waited = woke.await.unwrap();
    assert!(waited < Duration::from_secs(5), "woke after {waited:?}");
}

fn options(dir: &std::path::Path) -> DurableOptions {
    DurableOptions {
        capacity: 1024,
        batch_size: 8,
        retry: Duration::from_millis(200),
        spool_dir: dir.to_path_buf(),
    }
}

async fn wait_rows(store: &dyn GovernanceStore, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let c = all(store, AuditQuery::all()).await.len();
        if c == n {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{c} rows, want {n}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// N events while PostgreSQL is down: spooled, then exactly N rows once it is back.
#[tokio::test]
async fn durable_sink_spools_through_a_postgres_outage() {
    let mut pg = Postgres::start().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let store: Arc<dyn GovernanceStore> = Arc::new(PostgresStore::connect_lazy(&pg.url).unwrap());
    let sink = DurableAuditSink::start(store.clone(), options(spool.path()))
        .await
        .unwrap();
    for n in 0..5 {
        sink.record(event(n, T0 + n as i64, "alice", "team-a", Outcome::Allowed));
    }
    sink.flush().await.unwrap();
    wait_rows(&*store, 5).await;
    assert_eq!(sink.spool_depth(), 0);

    pg.pause().unwrap();
    const N: usize = 40;
    let started = std::time::Instant::now();
    for n in 0..N {
        sink.record(event(
            100 + n,
            T0 + 1000 + n as i64,
            "bob",
            "team-b",
            Outcome::Denied,
        ));
    }
    // Recording never waits for the store.
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "{:?}",
        started.elapsed()
    );
    sink.flush().await.unwrap();
    assert_eq!(sink.spool_depth(), N as u64, "every event is in the spool");
    let spooled = std::fs::read_to_string(spool.path().join("audit.spool")).unwrap();
    assert_eq!(spooled.lines().count(), N);

    pg.resume().unwrap();
    wait_rows(&*store, 5 + N).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sink.spool_depth() > 0 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        std::fs::metadata(spool.path().join("audit.spool"))
            .unwrap()
            .len(),
        0
    );
    // Events recorded after the outage go straight in, after the replayed ones.
    sink.record(event(999, T0 + 5000, "carol", "team-a", Outcome::Allowed));
    sink.flush().await.unwrap();
    wait_rows(&*store, 6 + N).await;
    assert_eq!(sink.dropped(), 0);
}

/// A spool left behind by a process that died is replayed by the next one, once, even if
/// part of it had already reached the store.
#[tokio::test]
async fn spool_of_a_dead_process_is_replayed_once() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn GovernanceStore> =
        Arc::new(SqliteStore::open(&dir.path().join("g.db")).await.unwrap());
    let events: Vec<AuditEvent> = (0..12)
        .map(|n| event(n, T0 + n as i64, "alice", "team-a", Outcome::Allowed))
        .collect();
    // The dead process had inserted the first 4 but not yet truncated its spool, and its
    // last write was torn mid-line.
    store.insert_audit(&events[..4]).await.unwrap();
    let spool_dir = dir.path().join("spool");
    std::fs::create_dir_all(&spool_dir).unwrap();
    let mut text = String::new();
    for e in &events {
        text.push_str(&e.to_json().unwrap());
        text.push('\n');
    }
    text.push_str("{\"id\":\"torn");
    std::fs::write(spool_dir.join("audit.spool"), text).unwrap();

    let sink = DurableAuditSink::start(store.clone(), options(&spool_dir))
        .await
        .unwrap();
    assert_eq!(sink.spool_depth(), 13, "12 events and one torn line found");
    sink.record(event(50, T0 + 50, "bob", "team-b", Outcome::Error));
    sink.flush().await.unwrap();
    wait_rows(&*store, 13).await;
    assert_eq!(sink.spool_depth(), 0);
    let newest = store.query_audit(&AuditQuery::all()).await.unwrap().events;
    assert_eq!(newest[0].request_id, "req-50");
}

/// The idempotency and quota cases every store must pass.
async fn limits_conformance(stores: &gatehouse_store::LimitsStores) {
    use gatehouse_store::{Claim, ClaimSpec, LedgerEntry, QuotaLimits, StoredResponse, TeamQuota};
    let idem = &stores.idempotency;
    let spec = |key: &'static str, fp: &'static str, now_ms: i64| ClaimSpec {
        principal: "api_key:ci",
        key,
        fingerprint: fp,
        now_ms,
        lease_ms: 1_000,
    };
    // First claim wins; a duplicate waits; another body is a mismatch.
    assert_eq!(
        idem.claim_idempotency(&spec("k1", "fp-a", T0))
            .await
            .unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        idem.claim_idempotency(&spec("k1", "fp-a", T0 + 1))
            .await
            .unwrap(),
        Claim::InFlight
    );
    assert_eq!(
        idem.claim_idempotency(&spec("k1", "fp-b", T0 + 1))
            .await
            .unwrap(),
        Claim::Mismatch
    );
    // Another principal's key of the same name is its own.
    let other = ClaimSpec {
        principal: "session:alice",
        ..spec("k1", "fp-b", T0)
    };
    assert_eq!(
        idem.claim_idempotency(&other).await.unwrap(),
        Claim::Acquired
    );
    // Completed: replayed until it expires, then the key is free again.
    let answer = StoredResponse {
        status: 202,
        body: r#"{"id":"sbx-1"}"#.into(),
    };
    idem.complete_idempotency("api_key:ci", "k1", &answer, T0 + 10_000)
        .await
        .unwrap();
    assert_eq!(
        idem.claim_idempotency(&spec("k1", "fp-a", T0 + 5_000))
            .await
            .unwrap(),
        Claim::Done(answer.clone())
    );
    assert_eq!(
        idem.claim_idempotency(&spec("k1", "fp-b", T0 + 5_000))
            .await
            .unwrap(),
        Claim::Mismatch
    );
    assert_eq!(
        idem.claim_idempotency(&spec("k1", "fp-b", T0 + 10_000))
            .await
            .unwrap(),
        Claim::Acquired
    );
    // A claim whose holder died is taken over once its lease has run out, by one caller.
    assert_eq!(
        idem.claim_idempotency(&spec("k2", "fp-a", T0))
            .await
            .unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        idem.claim_idempotency(&spec("k2", "fp-a", T0 + 999))
            .await
            .unwrap(),
        Claim::InFlight
    );
    assert_eq!(
        idem.claim_idempotency(&spec("k2", "fp-a", T0 + 1_000))
            .await
            .unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        idem.claim_idempotency(&spec("k2", "fp-a", T0 + 1_001))
            .await
            .unwrap(),
        Claim::InFlight
    );
    // A released claim runs again.
    idem.release_idempotency("api_key:ci", "k2").await.unwrap();
    assert_eq!(
        idem.claim_idempotency(&spec("k2", "fp-a", T0 + 1_002))
            .await
            .unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        idem.purge_idempotency(T0 + 20_000).await.unwrap(),
        0,
        "nothing done has expired"
    );
    idem.complete_idempotency("api_key:ci", "k2", &answer, T0 + 15_000)
        .await
        .unwrap();
    assert_eq!(idem.purge_idempotency(T0 + 20_000).await.unwrap(), 1);

    // Team overrides.
    let q = &stores.quotas;
    assert_eq!(q.team_quota("team-a").await.unwrap(), None);
    let tq = TeamQuota {
        team: "team-a".into(),
        limits: QuotaLimits {
            max_sandboxes: Some(2),
            max_cpu_millis: None,
            max_memory_bytes: Some(1 << 30),
            max_timeout_seconds: Some(3600),
        },
        updated_by: "admin".into(),
        updated_ms: T0,
    };
    q.put_team_quota(&tq).await.unwrap();
    assert_eq!(q.team_quota("team-a").await.unwrap(), Some(tq.clone()));
    let changed = TeamQuota {
        limits: QuotaLimits {
            max_sandboxes: Some(5),
            ..tq.limits
        },
        ..tq.clone()
    };
    q.put_team_quota(&changed).await.unwrap();
    assert_eq!(q.team_quota("team-a").await.unwrap(), Some(changed));
    assert!(q.delete_team_quota("team-a").await.unwrap());
    assert!(!q.delete_team_quota("team-a").await.unwrap());

    // The ledger, per team and per team-less owner.
    let entry = |id: &str, team: Option<&str>, owner: &str| LedgerEntry {
        sandbox_id: id.into(),
        team: team.map(str::to_owned),
        owner: owner.into(),
        cpu_millis: 500,
        memory_bytes: 64 << 20,
        created_ms: T0,
    };
    q.record_sandbox(&entry("s1", Some("team-a"), "alice"))
        .await
        .unwrap();
    q.record_sandbox(&entry("s2", Some("team-a"), "bob"))
        .await
        .unwrap();
    q.record_sandbox(&entry("s3", None, "dave")).await.unwrap();
    let team_a = q.ledger(Some("team-a"), "alice").await.unwrap();
    assert_eq!(
        team_a
            .iter()
            .map(|e| e.sandbox_id.as_str())
            .collect::<Vec<_>>(),
        ["s1", "s2"]
    );
    assert_eq!(team_a[0], entry("s1", Some("team-a"), "alice"));
    assert_eq!(q.ledger(None, "dave").await.unwrap().len(), 1);
    assert!(q.ledger(None, "alice").await.unwrap().is_empty());
    q.forget_sandboxes(&["s1".into(), "s3".into()])
        .await
        .unwrap();
    assert_eq!(q.ledger(Some("team-a"), "x").await.unwrap().len(), 1);
    assert!(q.ledger(None, "dave").await.unwrap().is_empty());
}

#[tokio::test]
async fn sqlite_limits_conform() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("g.db")).await.unwrap();
    limits_conformance(&gatehouse_store::LimitsStores::of(store)).await;
}

#[tokio::test]
async fn postgres_limits_conform() {
    let pg = Postgres::start().unwrap();
    let store = PostgresStore::connect_lazy(&pg.url).unwrap();
    store.prepare().await.unwrap();
    limits_conformance(&gatehouse_store::LimitsStores::of(store)).await;

    // The quota lock is shared: a second store (another replica's pool) waits for it.
    let (one, other) = (
        PostgresStore::connect_lazy(&pg.url).unwrap(),
        PostgresStore::connect_lazy(&pg.url).unwrap(),
    );
    let held = QuotaStore::lock_quota(&one, "team\nt").await.unwrap();
    let waiting = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        QuotaStore::lock_quota(&other, "team\nt"),
    )
    .await;
    assert!(waiting.is_err(), "a second replica took a held quota lock");
    let free = QuotaStore::lock_quota(&other, "team\nother").await.unwrap();
    drop((held, free));
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        QuotaStore::lock_quota(&other, "team\nt"),
    )
    .await
    .expect("the lock is released when dropped")
    .unwrap();
}
