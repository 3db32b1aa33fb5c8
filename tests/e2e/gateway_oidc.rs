//! Console users through OIDC against the real development IdP (`oidc-provider`), one
//! scenario per test, each on a fresh [`OidcStack`]:
//! - `sessions`: headless logins, roles and scope per user, CSRF, session cookies
//!   (tampered, unknown, expired) and what reaches the sandbox;
//! - `logins`: `return_to` open-redirect attempts, bad input on the auth routes, logout
//!   and back-channel logout;
//! - `bearer`: bearer JWTs (bad iss/aud, expired, `alg: none`, HS256 signed with the
//!   public key, unknown kid), key rotation at the IdP and the IdP going down;
//!
//! and everywhere, that tokens and cookies never leak into the log or the audit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "gateway_oidc/bearer.rs"]
mod bearer;
#[path = "gateway_oidc/logins.rs"]
mod logins;
#[path = "gateway_oidc/sessions.rs"]
mod sessions;

use gatehouse_tests::gateway::Gateway;
use gatehouse_tests::login::{login, LoginResult};
use gatehouse_tests::stacks::OidcStack;
use gatehouse_tests::test_image;
use serde_json::{json, Value};
use std::collections::HashMap;

/// A stack whose gateway refreshes the IdP's keys at most every second and allows 2 s of
/// clock leeway; `session` is the `[oidc.session]` section's body.
async fn stack(session: &str) -> OidcStack {
    OidcStack::start(
        "jwks_min_refresh_seconds = 1\nleeway_seconds = 2",
        &format!("[oidc.session]\n{session}"),
    )
    .await
    .unwrap()
}

/// `GET /auth/me` as `c`.
async fn me(c: &reqwest::Client, gw: &Gateway) -> (u16, Value) {
    let r = c.get(gw.at("/auth/me")).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// A sandbox that sleeps.
fn body() -> Value {
    json!({"image": {"uri": test_image()}, "entrypoint": ["sleep", "600"], "timeout": 600})
}

/// A stack with alice, bob and carol logged in through the IdP's form, and each one's
/// CSRF token from `/auth/me`.
struct Console {
    st: OidcStack,
    alice: LoginResult,
    bob: LoginResult,
    carol: LoginResult,
    csrf: HashMap<&'static str, String>,
}

impl Console {
    async fn start() -> Self {
        let st = stack("").await;
        let gw = &st.gw.url;
        let alice = login(gw, &st.idp, "alice", "/console/sandboxes")
            .await
            .unwrap();
        let bob = login(gw, &st.idp, "bob", "/console/").await.unwrap();
        let carol = login(gw, &st.idp, "carol", "/console/").await.unwrap();
        let mut csrf = HashMap::new();
        for (who, l) in [("alice", &alice), ("bob", &bob), ("carol", &carol)] {
            let (s, v) = me(&l.client, &st.gw).await;
            assert_eq!(s, 200, "{who}: {v}");
            csrf.insert(who, v["csrfToken"].as_str().unwrap().to_string());
        }
        Self {
            st,
            alice,
            bob,
            carol,
            csrf,
        }
    }

    /// The gateway's own origin, as the console sends it.
    fn origin(&self) -> String {
        self.st.gw.url.clone()
    }

    /// A POST from `user`'s console session, with `csrf` and `origin` headers when given.
    async fn post(
        &self,
        user: &LoginResult,
        path: &str,
        body: &Value,
        csrf: Option<&str>,
        origin: Option<&str>,
    ) -> (u16, Value) {
        let mut rb = user.client.post(self.st.gw.at(path)).json(body);
        if let Some(t) = csrf {
            rb = rb.header("X-CSRF-Token", t);
        }
        if let Some(o) = origin {
            rb = rb.header("Origin", o);
        }
        let r = rb.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// A create from alice's console with her CSRF token and the right origin; the id.
    async fn alice_creates(&self, body: &Value) -> String {
        let origin = self.origin();
        let (s, v) = self
            .post(
                &self.alice,
                "/v1/sandboxes",
                body,
                Some(&self.csrf["alice"]),
                Some(&origin),
            )
            .await;
        assert_eq!(s, 202, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// No session cookie nor alice's CSRF token appears in the gateway's log or audit.
    fn assert_no_session_secret_leaked(&self) {
        let log = self.st.gw.settled_log();
        for secret in [
            &self.alice.session_cookie,
            &self.bob.session_cookie,
            &self.carol.session_cookie,
            &self.csrf["alice"],
        ] {
            assert!(
                !log.contains(secret.as_str()),
                "a session secret leaked into the log"
            );
            assert!(
                !self.st.gw.audit_raw().contains(secret.as_str()),
                "a session secret leaked into the audit"
            );
        }
    }
}
