//! Console sessions: who each user is, CSRF on mutations, scope like every other
//! principal, refused cookies, expiry, and that session credentials stop at the gateway.

use super::{body, me, stack, Console};
use gatehouse_tests::login::login;
use gatehouse_tests::sandbox::script_body;
use gatehouse_tests::wait_for;
use serde_json::Value;
use std::time::Duration;

/// Each user logs in over HTTP through the provider's own form and gets their team, role
/// and permissions, and a CSRF token of their own.
#[tokio::test]
async fn each_user_logs_in_with_their_team_and_role() {
    let c = Console::start().await;
    assert!(
        c.alice.final_location.ends_with("/console/sandboxes"),
        "{}",
        c.alice.final_location
    );
    for (who, l, team, role) in [
        ("alice", &c.alice, "team-a", "operator"),
        ("bob", &c.bob, "team-a", "read_only"),
        ("carol", &c.carol, "team-b", "operator"),
    ] {
        let (s, v) = me(&l.client, &c.st.gw).await;
        assert_eq!(s, 200, "{who}: {v}");
        assert_eq!(v["subject"], who);
        assert_eq!(v["team"], team);
        assert_eq!(v["role"], role, "{who}: {v}");
        assert_eq!(v["authMethod"], "session");
        let perms: Vec<&str> = v["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(
            perms.contains(&"sandbox:create"),
            role == "operator",
            "{who}: {perms:?}"
        );
        assert!(perms.contains(&"sandbox:list"));
        assert_eq!(v["csrfToken"].as_str(), Some(c.csrf[who].as_str()));
    }
    assert_ne!(c.csrf["alice"], c.csrf["bob"]);
}

/// Mutations on a session need its own CSRF token and a same-origin `Origin`.
#[tokio::test]
async fn session_mutations_need_the_csrf_token_and_same_origin() {
    let c = Console::start().await;
    let (alice, origin) = (&c.alice, c.origin());
    let (mine, bobs) = (c.csrf["alice"].as_str(), c.csrf["bob"].as_str());
    let (s, v) = c
        .post(alice, "/v1/sandboxes", &body(), None, Some(&origin))
        .await;
    assert_eq!(
        (s, v["code"].as_str().unwrap_or("")),
        (403, "GATEWAY::CSRF")
    );
    for (csrf, origin, why) in [
        (bobs, Some(origin.as_str()), "another session's token"),
        (mine, Some("http://evil.example"), "cross-origin"),
        (mine, None, "no Origin"),
    ] {
        let (s, _) = c
            .post(alice, "/v1/sandboxes", &body(), Some(csrf), origin)
            .await;
        assert_eq!(s, 403, "{why}");
    }
    c.alice_creates(&body()).await;
}

/// Roles and scope apply to session users through the same table as to every other
/// principal.
#[tokio::test]
async fn session_users_are_scoped_like_everyone_else() {
    let c = Console::start().await;
    let gw = &c.st.gw;
    let id = c.alice_creates(&body()).await;
    let list =
        |l: &gatehouse_tests::login::LoginResult| l.client.get(gw.at("/v1/sandboxes")).send();
    let v: Value = list(&c.bob).await.unwrap().json().await.unwrap();
    assert_eq!(
        v["items"][0]["id"],
        id.as_str(),
        "bob sees team-a's sandbox"
    );
    let v: Value = list(&c.carol).await.unwrap().json().await.unwrap();
    assert_eq!(v["pagination"]["totalItems"], 0, "carol does not");
    let r = c
        .bob
        .client
        .delete(gw.at(&format!("/v1/sandboxes/{id}")))
        .header("X-CSRF-Token", &c.csrf["bob"])
        .header("Origin", c.origin())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .carol
        .client
        .get(gw.at(&format!("/v1/sandboxes/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// Tampered and unknown session cookies are refused as expired sessions; no cookie is
/// no session.
#[tokio::test]
async fn tampered_unknown_and_missing_cookies_are_refused() {
    let st = stack("").await;
    let alice = login(&st.gw.url, &st.idp, "alice", "/console/")
        .await
        .unwrap();
    for cookie in [
        format!("gatehouse_session={}x", alice.session_cookie),
        "gatehouse_session=AAAA".to_string(),
    ] {
        let r = reqwest::Client::new()
            .get(st.gw.at("/auth/me"))
            .header("Cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "GATEWAY::SESSION_EXPIRED");
    }
    assert_eq!(me(&reqwest::Client::new(), &st.gw).await.0, 401);
}

/// Sessions end after their timeout.
#[tokio::test]
async fn sessions_expire() {
    let st = stack("absolute_timeout_seconds = 2\nidle_timeout_seconds = 2").await;
    let l = login(&st.gw.url, &st.idp, "alice", "/console/")
        .await
        .unwrap();
    assert_eq!(me(&l.client, &st.gw).await.0, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (s, v) = me(&l.client, &st.gw).await;
    assert_eq!(s, 401, "{v}");
}

/// Answers every request on 44772 with the request headers it received, `|`-separated.
const ECHO_HEADERS: &str = concat!(
    "printf '%s\\n' 'h=\"\"; while read -r l; do l=${l%$(printf \"\\r\")}; [ -z \"$l\" ] && break; h=\"$h$l|\"; done' ",
    "'printf \"HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nConnection: close\\r\\n\\r\\n%s\" \"$h\"' > /tmp/echo.sh; ",
    "exec nc -ll -p 44772 -e sh /tmp/echo.sh"
);

/// The session cookie and the Authorization header never reach the backend or a sandbox
/// (other cookies do): the sandbox echoes the request headers it received.
#[tokio::test]
async fn session_cookie_and_credentials_never_reach_the_sandbox() {
    let c = Console::start().await;
    let web = c.alice_creates(&script_body(ECHO_HEADERS)).await;
    let cookie = format!("gatehouse_session={}; app=1", c.alice.session_cookie);
    let echo = c.st.gw.at(&format!("/v1/sandboxes/{web}/proxy/44772/echo"));
    let seen = wait_for("the sandbox echo", Duration::from_secs(30), || async {
        let r = reqwest::Client::new()
            .get(&echo)
            .header("Cookie", &cookie)
            .header("Authorization", "Basic c2VjcmV0")
            .send()
            .await
            .ok()?;
        if r.status() != 200 {
            return None;
        }
        r.text().await.ok()
    })
    .await
    .unwrap();
    let lower = seen.to_ascii_lowercase();
    assert!(lower.contains("get /echo http/1.1"), "{seen}");
    assert!(
        lower.contains("cookie: app=1"),
        "other cookies pass: {seen}"
    );
    assert!(
        !lower.contains("gatehouse_session") && !seen.contains(&c.alice.session_cookie),
        "the session cookie is stripped: {seen}"
    );
    assert!(
        !lower.contains("authorization") && !lower.contains("open-sandbox-api-key"),
        "no credentials reach the sandbox: {seen}"
    );
    assert!(!lower.contains("x-opensandbox-user"), "{seen}");
    c.assert_no_session_secret_leaked();
}

/// Audit events carry the session principal; no token or cookie appears anywhere.
#[tokio::test]
async fn session_mutations_are_audited_without_secrets() {
    let c = Console::start().await;
    c.alice_creates(&body()).await;
    let session_create = |e: &Value| {
        e["action"] == "sandbox:create"
            && e["principal"]["subject"] == "alice"
            && e["principal"]["auth_method"] == "session"
    };
    wait_for(
        "the create's audit event",
        Duration::from_secs(10),
        || async {
            c.st.gw
                .audit_events()
                .iter()
                .any(session_create)
                .then_some(())
        },
    )
    .await
    .unwrap();
    c.assert_no_session_secret_leaked();
}
