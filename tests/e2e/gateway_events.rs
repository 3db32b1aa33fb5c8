//! The lifecycle event stream (`GET /gatehouse/v1/events`), one behaviour per test, each
//! on a fresh stack: in front of our backend (its extension feed) and in front of the
//! real upstream `opensandbox-server` (the gateway's poll), with users signed in through
//! the dev IdP, behind the trusted proxy, and with API keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_tests::api::send;
use gatehouse_tests::login::{login, LoginResult};
use gatehouse_tests::principals::{alice, bob, carol, keyed};
use gatehouse_tests::sandbox::{create_id, delete, httpd_body, with_limits};
use gatehouse_tests::sse::{client, kinds_of, EventStream, Received};
use gatehouse_tests::stacks::{KeyedStack, OidcStack, UpstreamStack, ADMIN_KEY};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn body() -> Value {
    httpd_body(json!({}))
}

fn is(kind: &'static str, id: &str) -> impl Fn(&Received) -> bool {
    let id = id.to_string();
    move |e: &Received| e.event == kind && e.data["sandboxId"] == id.as_str()
}

/// A session's stream client: its cookie, no timeout.
fn session_client(l: &LoginResult) -> reqwest::Client {
    client(&[("cookie", &l.cookie_header())])
}

/// `/auth/me`'s CSRF token for a session.
async fn csrf(l: &LoginResult, gw: &str) -> String {
    let v: Value = l
        .client
        .get(format!("{gw}/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["csrfToken"].as_str().unwrap().to_string()
}

/// A console-style mutation: session cookie, CSRF token, same origin.
async fn console(
    l: &LoginResult,
    gw: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let token = csrf(l, gw).await;
    let mut rb = l
        .client
        .request(method.parse().unwrap(), format!("{gw}{path}"))
        .header("X-CSRF-Token", token)
        .header("Origin", gw);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    gatehouse_tests::api::send_req(rb).await
}

/// alice, signed in through the IdP, follows the stream: her sandbox goes created →
/// running → deleted, each naming her as the actor, and carol's (team-b) never shows;
/// carol's own stream shows hers and never alice's.
#[tokio::test]
async fn alice_sees_her_sandbox_go_created_running_deleted_and_never_carols() {
    let st = OidcStack::start("", "").await.unwrap();
    let gw = st.gw.url.clone();
    let a = login(&gw, &st.idp, "alice", "/console/").await.unwrap();
    let c = login(&gw, &st.idp, "carol", "/console/").await.unwrap();
    let events = st.gw.at("/gatehouse/v1/events");
    let mut alice_stream = EventStream::open(&session_client(&a), &events, None)
        .await
        .unwrap();
    let mut carol_stream = EventStream::open(&session_client(&c), &events, None)
        .await
        .unwrap();

    let (s, v) = console(&c, &gw, "POST", "/v1/sandboxes", Some(&body())).await;
    assert_eq!(s, 202, "{v}");
    let carols = v["id"].as_str().unwrap().to_string();
    let (s, v) = console(&a, &gw, "POST", "/v1/sandboxes", Some(&body())).await;
    assert_eq!(s, 202, "{v}");
    let alices = v["id"].as_str().unwrap().to_string();
    let seen = alice_stream
        .until(WAIT, is("running", &alices))
        .await
        .unwrap();
    let (s, _) = console(&a, &gw, "DELETE", &format!("/v1/sandboxes/{alices}"), None).await;
    assert_eq!(s, 204);
    let answered = std::time::Instant::now();
    let mut seen2 = alice_stream
        .until(WAIT, is("deleted", &alices))
        .await
        .unwrap();
    eprintln!(
        "backend feed: deleted event {:?} after the 204 (a figure, not an assertion)",
        answered.elapsed()
    );
    let mut all = seen;
    all.append(&mut seen2);
    assert_eq!(
        kinds_of(&all, &alices),
        ["created", "running", "deleted"],
        "{all:?}"
    );
    for e in &all {
        assert_ne!(
            e.data["sandboxId"],
            carols.as_str(),
            "alice saw carol's sandbox: {e:?}"
        );
        assert!(e.id.is_some(), "{e:?}");
        assert!(e.data["time"].is_string(), "{e:?}");
    }
    let created = all.iter().find(|e| e.event == "created").unwrap();
    assert_eq!(created.data["actor"]["subject"], "alice", "{created:?}");
    assert_eq!(created.data["actor"]["authMethod"], "session");
    let deleted = all.iter().find(|e| e.event == "deleted").unwrap();
    assert_eq!(deleted.data["actor"]["subject"], "alice", "{deleted:?}");

    let theirs = carol_stream
        .until(WAIT, is("created", &carols))
        .await
        .unwrap();
    assert!(theirs
        .iter()
        .all(|e| e.data["sandboxId"] != alices.as_str()));
    // Carol's stream after alice's delete: still nothing of alice's.
    let later = carol_stream.drain(Duration::from_secs(2)).await;
    assert!(
        later.iter().all(|e| e.data["sandboxId"] != alices.as_str()),
        "{later:?}"
    );
    // No session secret in the gateway's log.
    assert!(!st.gw.settled_log().contains(&a.session_cookie));
}

/// A client that reconnects with `Last-Event-ID` gets exactly what it missed, in order,
/// as a client that stayed connected saw it.
#[tokio::test]
async fn reconnecting_with_last_event_id_loses_nothing() {
    let st = KeyedStack::start().await.unwrap();
    let admin = client(&[("OPEN-SANDBOX-API-KEY", ADMIN_KEY)]);
    let url = st.gw.at("/gatehouse/v1/events");
    let mut steady = EventStream::open(&admin, &url, None).await.unwrap();
    let mut first = EventStream::open(&admin, &url, None).await.unwrap();
    let s1 = create_id(&keyed(ADMIN_KEY), &st.gw.url, &body())
        .await
        .unwrap();
    let got = first.until(WAIT, is("created", &s1)).await.unwrap();
    let last = got.last().unwrap().id.clone().unwrap();
    drop(first);
    // While it is away: another sandbox, and the first one deleted.
    let s2 = create_id(&keyed(ADMIN_KEY), &st.gw.url, &body())
        .await
        .unwrap();
    assert_eq!(delete(&keyed(ADMIN_KEY), &st.gw.url, &s1).await, 204);
    let reference = steady.until(WAIT, is("deleted", &s1)).await.unwrap();
    let after: Vec<String> = reference
        .iter()
        .skip_while(|e| e.id.as_deref() != Some(&last))
        .skip(1)
        .filter_map(|e| e.id.clone())
        .collect();
    assert!(after.len() >= 2, "{reference:?}");
    let mut resumed = EventStream::open(&admin, &url, Some(&last)).await.unwrap();
    let replay = resumed.until(WAIT, is("deleted", &s1)).await.unwrap();
    let ids: Vec<String> = replay.iter().filter_map(|e| e.id.clone()).collect();
    assert_eq!(ids, after, "replayed {replay:?}");
    assert!(kinds_of(&replay, &s2).contains(&"created".to_string()));
    // An id this gateway never issued: a reset first, then live events.
    let mut stale = EventStream::open(&admin, &url, Some("1-1")).await.unwrap();
    assert_eq!(stale.next(WAIT).await.unwrap().event, "reset");
    let _ = delete(&keyed(ADMIN_KEY), &st.gw.url, &s2).await;
}

/// `?sandbox=` and `?type=` narrow the stream; bad filters are 400 in the API's error
/// shape; read_only may follow, nobody unauthenticated may.
#[tokio::test]
async fn filters_narrow_the_stream_and_bad_ones_are_refused() {
    let st = KeyedStack::start().await.unwrap();
    let url = st.gw.at("/gatehouse/v1/events");
    for q in [
        "?type=exploded",
        "?type=",
        "?sandbox=a%2Fb",
        "?colour=red",
        "?type=created&type=deleted",
    ] {
        let (s, v) = send(&alice(), "GET", &format!("{url}{q}"), None).await;
        assert_eq!(s, 400, "{q}: {v}");
        assert_eq!(v["code"], "GATEWAY::INVALID_QUERY", "{q}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    }
    let (s, v) = send(&reqwest::Client::new(), "GET", &url, None).await;
    assert_eq!(s, 401, "{v}");
    // bob (read_only) may follow his team's events.
    EventStream::open(&bob(), &url, None).await.unwrap();

    let s1 = create_id(&alice(), &st.gw.url, &body()).await.unwrap();
    let s2 = create_id(&alice(), &st.gw.url, &body()).await.unwrap();
    let only = format!("{url}?sandbox={s1}&type=deleted");
    let mut narrow = EventStream::open(&alice(), &only, None).await.unwrap();
    let mut deletes = EventStream::open(&alice(), &format!("{url}?type=deleted,expired"), None)
        .await
        .unwrap();
    assert_eq!(delete(&alice(), &st.gw.url, &s2).await, 204);
    assert_eq!(delete(&alice(), &st.gw.url, &s1).await, 204);
    let got = narrow.until(WAIT, is("deleted", &s1)).await.unwrap();
    assert_eq!(got.len(), 1, "only s1's delete: {got:?}");
    let got = deletes.until(WAIT, is("deleted", &s1)).await.unwrap();
    assert!(got.iter().all(|e| e.event == "deleted"), "{got:?}");
    assert_eq!(kinds_of(&got, &s2), ["deleted"]);
    // carol (team-b) asking for alice's sandbox by id gets a stream with nothing in it.
    let mut prying = EventStream::open(&carol(), &format!("{url}?sandbox={s1}"), None)
        .await
        .unwrap();
    assert!(prying.drain(Duration::from_secs(1)).await.is_empty());
}

/// In front of the unchanged upstream server the gateway derives the events from a
/// poll (and its own mutations): alice sees her sandbox created, running and deleted,
/// naming her, and never carol's.
#[tokio::test]
async fn in_front_of_the_upstream_server_events_come_from_the_poll() {
    let st = UpstreamStack::start().await.unwrap();
    let url = st.gw.at("/gatehouse/v1/events");
    let mut a = EventStream::open(&alice(), &url, None).await.unwrap();
    let body = with_limits(httpd_body(json!({})));
    let theirs = create_id(&carol(), &st.gw.url, &body).await.unwrap();
    let mine = create_id(&alice(), &st.gw.url, &body).await.unwrap();
    let mut seen = a
        .until(Duration::from_secs(120), is("running", &mine))
        .await
        .unwrap();
    assert_eq!(delete(&alice(), &st.gw.url, &mine).await, 204);
    let answered = std::time::Instant::now();
    seen.append(&mut a.until(WAIT, is("deleted", &mine)).await.unwrap());
    eprintln!(
        "poll source: deleted event {:?} after the 204 (a figure, not an assertion)",
        answered.elapsed()
    );
    assert_eq!(
        kinds_of(&seen, &mine),
        ["created", "running", "deleted"],
        "{seen:?}"
    );
    assert!(
        seen.iter().all(|e| e.data["sandboxId"] != theirs.as_str()),
        "{seen:?}"
    );
    // Her sandbox's events (the engine may hold other tests' sandboxes in her team).
    let of_mine = |kind: &str| {
        seen.iter()
            .find(|e| e.event == kind && e.data["sandboxId"] == mine.as_str())
            .unwrap()
    };
    let created = of_mine("created");
    assert_eq!(created.data["actor"]["subject"], "alice", "{created:?}");
    assert_eq!(created.data["source"], "poll");
    let deleted = of_mine("deleted");
    assert_eq!(deleted.data["actor"]["subject"], "alice", "{deleted:?}");
    let _ = delete(&carol(), &st.gw.url, &theirs).await;
    assert!(st.gw.log().contains("poll"), "the gateway says it polls");
}
