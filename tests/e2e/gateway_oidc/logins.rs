//! The gateway's own auth routes: where a login may return to, bad input, logout at the
//! gateway and back-channel logout from the IdP.

use super::{me, stack, Console};
use gatehouse_tests::login::idp_logout;
use gatehouse_tests::wait_for;
use serde_json::Value;
use std::time::Duration;

/// A client that follows no redirects.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `v` percent-encoded for a query (every byte but ASCII letters and digits).
fn form(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `return_to` only accepts same-origin relative paths.
#[tokio::test]
async fn return_to_accepts_only_same_origin_paths() {
    let st = stack("").await;
    for bad in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
        "console",
    ] {
        let url = format!("{}/auth/login?return_to={}", st.gw.url, form(bad));
        let r = no_redirects().get(url).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.headers().get("location").is_none());
    }
}

/// Logout ends the session and points the browser at the IdP's end-session endpoint.
#[tokio::test]
async fn logout_ends_the_session_and_points_at_the_idp() {
    let c = Console::start().await;
    let r = c
        .alice
        .client
        .post(c.st.gw.at("/auth/logout"))
        .header("X-CSRF-Token", &c.csrf["alice"])
        .header("Origin", c.origin())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["redirect"]
            .as_str()
            .unwrap()
            .starts_with(&c.st.idp.issuer),
        "{v}"
    );
    assert_eq!(me(&c.alice.client, &c.st.gw).await.0, 401);
    c.assert_no_session_secret_leaked();
}

/// Back-channel logout: carol signs out at the IdP, the IdP tells the gateway, and only
/// her session ends.
#[tokio::test]
async fn backchannel_logout_ends_only_that_users_session() {
    let c = Console::start().await;
    let gw = &c.st.gw;
    idp_logout(&c.carol, &c.st.idp).await.unwrap();
    wait_for(
        "carol's session to end",
        Duration::from_secs(15),
        || async { (me(&c.carol.client, gw).await.0 == 401).then_some(()) },
    )
    .await
    .unwrap();
    assert_eq!(
        me(&c.bob.client, gw).await.0,
        200,
        "other users keep their sessions"
    );
    c.assert_no_session_secret_leaked();
}

/// A callback this browser did not start (no login cookie), or with parts missing, gets a
/// clear error and creates no session; so does the IdP reporting an error.
#[tokio::test]
async fn forged_callbacks_create_no_session() {
    let st = stack("").await;
    let c = no_redirects();
    for q in ["code=abc&state=forged", "state=only", "code=only", ""] {
        let r = c
            .get(st.gw.at(&format!("/auth/callback?{q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{q}");
        assert!(
            r.headers().get("set-cookie").is_none(),
            "{q}: no session for a forged callback"
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "GATEWAY::LOGIN_STATE", "{q}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let r = c
        .get(st.gw.at("/auth/callback?error=access_denied&state=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Back-channel logout with no token or a forged one gets the spec's error shape; unknown
/// auth routes and logout without a session are refused.
#[tokio::test]
async fn backchannel_and_unknown_auth_routes_refuse_bad_input() {
    let st = stack("").await;
    let c = no_redirects();
    for body in ["", "logout_token=not.a.jwt", "other=1"] {
        let r = c
            .post(st.gw.at("/auth/backchannel-logout"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request");
    }
    let r = c.get(st.gw.at("/auth/nothing")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c.post(st.gw.at("/auth/logout")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}
