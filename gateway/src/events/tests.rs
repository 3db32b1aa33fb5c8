use super::*;
use gatehouse_scope::ScopeMode;

fn hub() -> EventHub {
    EventHub::new(EventsSection::default(), ScopeKeys::default())
}

fn incoming(kind: EventKind, id: &str, team: &str) -> Incoming {
    let mut metadata = StringMap::new();
    metadata.insert(
        "access.team".into(),
        gatehouse_scope::token::canonical(team),
    );
    metadata.insert("project".into(), "apollo".into());
    Incoming {
        kind,
        sandbox_id: id.into(),
        state: Some("Running".into()),
        reason: None,
        message: None,
        time: "2026-01-01T00:00:00Z".into(),
        expires_at: None,
        metadata,
        request_id: Some("req-1".into()),
    }
}

#[test]
fn events_are_scoped_to_the_team_and_admins_see_all() {
    let h = hub();
    let (mut rx, _) = h.subscribe(None);
    h.publish(incoming(EventKind::Created, "a", "team-a"), "backend");
    let e = rx.try_recv().unwrap();
    let alice = Scope::for_principal("alice", Some("team-a"), ScopeMode::Team);
    let carol = Scope::for_principal("carol", Some("team-b"), ScopeMode::Team);
    assert!(e.visible_to(Some(&alice), h.keys()));
    assert!(!e.visible_to(Some(&carol), h.keys()));
    assert!(e.visible_to(None, h.keys()));
    let frame = std::str::from_utf8(&e.frame).unwrap();
    assert!(frame.starts_with(&format!("id: {}-1\nevent: created\ndata: {{", h.boot)));
    assert!(frame.ends_with("}\n\n"));
    assert!(!frame.contains("apollo"), "metadata is not sent: {frame}");
    h.publish_reset("test");
    let reset = rx.try_recv().unwrap();
    assert!(
        reset.visible_to(Some(&carol), h.keys()),
        "a reset goes to everyone"
    );
}

#[test]
fn resume_replays_after_the_id_and_resets_when_it_is_gone() {
    let cfg = EventsSection {
        max_events: 100,
        ..EventsSection::default()
    };
    let h = EventHub::new(cfg, ScopeKeys::default());
    for i in 0..150 {
        h.publish(incoming(EventKind::Created, &format!("s{i}"), "t"), "poll");
    }
    let Resume::Replay(got) = h.subscribe(Some(&format!("{}-140", h.boot))).1 else {
        panic!("replay expected")
    };
    assert_eq!(
        got.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (141..=150).collect::<Vec<_>>()
    );
    assert!(matches!(
        h.subscribe(Some(&format!("{}-10", h.boot))).1,
        Resume::Reset
    ));
    assert!(matches!(h.subscribe(Some("123-1")).1, Resume::Reset));
    assert!(matches!(h.subscribe(Some("garbage")).1, Resume::Reset));
    assert!(matches!(h.subscribe(None).1, Resume::Replay(v) if v.is_empty()));
}
