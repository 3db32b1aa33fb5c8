//! The gateway in front of `gatehouse-backend` on the real Docker engine, one scenario per
//! test, each on a fresh [`KeyedStack`]:
//! - `scope`: the role matrix, team isolation through every per-sandbox route, list
//!   scoping, create injection, API keys, and the audit events each case writes;
//! - `requests`: header spoofing, path-normalization bypass attempts, bad bodies and
//!   request ids;
//! - `operations`: policy hot reload and the backend going down;
//! - `proxy`: the server proxy through the gateway (endpoints, large bodies, WebSocket
//!   upgrades);
//! - `paused`: a proxy request to a paused sandbox is answered at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "gateway_backend/operations.rs"]
mod operations;
#[path = "gateway_backend/paused.rs"]
mod paused;
#[path = "gateway_backend/proxy.rs"]
mod proxy;
#[path = "gateway_backend/requests.rs"]
mod requests;
#[path = "gateway_backend/scope.rs"]
mod scope;

use gatehouse_tests::principals::{alice, carol};
use gatehouse_tests::sandbox::{create_id, httpd_body, wait_state};
use gatehouse_tests::stacks::KeyedStack;
use serde_json::json;

/// A [`KeyedStack`] with one sandbox of alice's (team-a; her create asked for another
/// owner and team, which the gateway overrides; project apollo) and one of carol's
/// (team-b; project apollo).
struct TwoTeams {
    st: KeyedStack,
    a1: String,
    c1: String,
}

impl TwoTeams {
    async fn start() -> Self {
        let st = KeyedStack::start().await.unwrap();
        let spoofed =
            json!({"project": "apollo", "access.owner": "mallory", "access.team": "team-b"});
        let a1 = create_id(&alice(), &st.gw.url, &httpd_body(spoofed))
            .await
            .unwrap();
        let c1 = create_id(
            &carol(),
            &st.gw.url,
            &httpd_body(json!({"project": "apollo"})),
        )
        .await
        .unwrap();
        Self { st, a1, c1 }
    }

    /// [`TwoTeams::start`], with both sandboxes Running.
    async fn running() -> Self {
        let t = Self::start().await;
        wait_state(&alice(), &t.st.gw.url, &t.a1, "Running")
            .await
            .unwrap();
        wait_state(&carol(), &t.st.gw.url, &t.c1, "Running")
            .await
            .unwrap();
        t
    }

    /// The gateway URL of `/v1/sandboxes/{id}{rest}`.
    fn sandbox(&self, id: &str, rest: &str) -> String {
        self.st.gw.at(&format!("/v1/sandboxes/{id}{rest}"))
    }
}
