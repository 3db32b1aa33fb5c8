//! Conformance cases of issue 20 (replicas): [`SessionStore`], [`ChangeLog`] and
//! [`LoginStateStore`], run
//! against both stores by `sqlite_store_conforms` and `postgres_store_conforms`.

use gatehouse_store::{
    generate_key, Binding, BindingKind, ChangeKind, ChangeLog, GovernanceStore, KeySpec,
    LoginStateStore, SessionStore, StoredLoginState, StoredSession,
};

fn session(hash: &str, subject: &str, sid: Option<&str>, now: i64) -> StoredSession {
    StoredSession {
        id_hash: hash.into(),
        subject: subject.into(),
        team: Some("team-a".into()),
        groups: vec!["ops".into(), "dev ops".into()],
        sid: sid.map(Into::into),
        id_token: Some("h.p.s".into()),
        created_ms: now,
        expires_ms: now + 3_600_000,
        seen_ms: now,
    }
}

/// What every change after `after` says, as `kind item`.
async fn changes<S: ChangeLog>(store: &S, after: i64) -> Vec<String> {
    store
        .changes_after(after, 100)
        .await
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", c.kind, c.item))
        .collect()
}

/// Sessions round-trip by hash; ending them (one, by sid, by subject) logs the change with
/// its sid; expiry purges log nothing; key revocation and binding edits log themselves;
/// the log is ordered, paged and pruned.
pub async fn sessions_and_changes<S>(store: &S)
where
    S: GovernanceStore + SessionStore + ChangeLog,
{
    let now = chrono::Utc::now().timestamp_millis();
    let start = store.head().await.unwrap();

    // Sessions.
    let s1 = session("h1", "alice", Some("sid-1"), now);
    store.put_session(&s1).await.unwrap();
    store
        .put_session(&session("h2", "alice", Some("sid-2"), now))
        .await
        .unwrap();
    store
        .put_session(&session("h3", "bob", None, now))
        .await
        .unwrap();
    assert_eq!(store.session("h1").await.unwrap(), Some(s1.clone()));
    assert_eq!(store.session("nope").await.unwrap(), None);
    store.touch_session("h1", now + 5).await.unwrap();
    store.touch_session("h1", now + 2).await.unwrap();
    assert_eq!(
        store.session("h1").await.unwrap().unwrap().seen_ms,
        now + 5,
        "seen never moves back"
    );
    assert!(
        store.head().await.unwrap() == start,
        "creating and using sessions are not changes"
    );
    assert_eq!(
        store.delete_session("h1").await.unwrap().map(|s| s.subject),
        Some("alice".into())
    );
    assert_eq!(store.delete_session("h1").await.unwrap(), None);
    assert_eq!(changes(store, start).await, ["session h1", "sid sid-1"]);
    let after_one = store.head().await.unwrap();
    let ended = store
        .delete_sessions_matching(Some("sid-2"), None)
        .await
        .unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].id_hash, "h2");
    let ended = store
        .delete_sessions_matching(None, Some("bob"))
        .await
        .unwrap();
    assert_eq!(ended.len(), 1);
    assert!(store
        .delete_sessions_matching(None, None)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        changes(store, after_one).await,
        ["session h2", "sid sid-2", "session h3"]
    );

    // Expired sessions are purged without a change.
    let mut old = session("h4", "carol", Some("sid-4"), now - 10_000);
    old.expires_ms = now - 1;
    store.put_session(&old).await.unwrap();
    let before_purge = store.head().await.unwrap();
    assert_eq!(store.purge_sessions(now).await.unwrap(), 1);
    assert_eq!(store.session("h4").await.unwrap(), None);
    assert!(changes(store, before_purge).await.is_empty());

    // Personal keys: revocation is a change, a last-used write is not.
    let key = generate_key(
        KeySpec {
            name: "ci".into(),
            subject: "alice".into(),
            team: None,
            role: "operator".into(),
            expires_ms: None,
        },
        now,
    );
    store.create_key(&key.record).await.unwrap();
    let before_key = store.head().await.unwrap();
    store.touch_key(&key.record.id, now + 1).await.unwrap();
    assert!(changes(store, before_key).await.is_empty());
    assert!(store.revoke_key(&key.record.id, now + 2).await.unwrap());
    assert_eq!(
        changes(store, before_key).await,
        [format!("api_key {}", key.record.hash)]
    );

    // Bindings and what the gateway publishes itself.
    let before_bindings = store.head().await.unwrap();
    store
        .put_binding(&Binding {
            kind: BindingKind::Group,
            name: "replicas".into(),
            role: "operator".into(),
            team: None,
            created_by: "t".into(),
            created_ms: now,
        })
        .await
        .unwrap();
    store.publish(ChangeKind::Sandbox, "sbx-9").await.unwrap();
    let tail = changes(store, before_bindings).await;
    assert!(tail.first().is_some_and(|c| c == "bindings "), "{tail:?}");
    assert_eq!(tail.last().map(String::as_str), Some("sandbox sbx-9"));

    // Ordered, paged, every kind known.
    let all = store.changes_after(start, 100).await.unwrap();
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(all.iter().all(|c| ChangeKind::parse(&c.kind).is_some()));
    let page = store.changes_after(start, 2).await.unwrap();
    assert_eq!(page, all[..2]);
    assert_eq!(store.head().await.unwrap(), all.last().unwrap().seq);

    // Pruned by age; the position keeps counting up.
    let head = store.head().await.unwrap();
    assert!(store.prune_changes(now + 60_000).await.unwrap() >= all.len() as u64);
    assert!(store.changes_after(0, 100).await.unwrap().is_empty());
    store.publish(ChangeKind::Sandbox, "sbx-10").await.unwrap();
    assert!(store.head().await.unwrap() > head);
}

/// Sign-ins in progress: taken once, never after their expiry, expired ones pruned.
pub async fn login_states(store: &dyn LoginStateStore) {
    let now = 1_800_000_000_000;
    let s = StoredLoginState {
        verifier: "v".repeat(43),
        nonce: "n".into(),
        return_to: "/console/".into(),
        expires_ms: now + 600_000,
    };
    store.put_login_state("h1", &s, now).await.unwrap();
    assert!(
        store.put_login_state("h1", &s, now).await.is_err(),
        "a state is stored once"
    );
    assert_eq!(
        store.take_login_state("h1", now).await.unwrap(),
        Some(s.clone())
    );
    assert_eq!(
        store.take_login_state("h1", now).await.unwrap(),
        None,
        "single use"
    );
    store.put_login_state("h2", &s, now).await.unwrap();
    assert_eq!(
        store.take_login_state("h2", now + 600_000).await.unwrap(),
        None,
        "expired"
    );
    store.put_login_state("h3", &s, now).await.unwrap();
    // A later sign-in prunes the expired one.
    store
        .put_login_state("h4", &s, now + 700_000)
        .await
        .unwrap();
    assert_eq!(store.take_login_state("h3", now).await.unwrap(), None);
}
