//! Shared helpers: start the real binary on free loopback ports with a temp token file.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_gatehouse-execd");
/// Token used by every test agent.
pub const TOKEN: &str = "test-token-5f1c";

#[path = "../../../tests/harness/ports.rs"]
mod ports;
pub use ports::free_port;

/// A fresh scratch directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for Scratch {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Create a scratch directory.
pub fn scratch(tag: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("gh-execd-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

/// A running agent, killed on drop.
pub struct Agent {
    pub child: Child,
    pub port: u16,
    pub egress_port: u16,
    pub http: reqwest::Client,
}

impl Agent {
    /// Start with a token file and extra CLI arguments.
    pub async fn start(extra: &[&str]) -> Agent {
        let dir = scratch("tok");
        let tok = dir.join("token");
        std::fs::write(&tok, format!("{TOKEN}\n")).unwrap();
        let (port, egress_port) = (free_port(), free_port());
        let mut cmd = Command::new(BIN);
        cmd.args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--egress-listen", &format!("127.0.0.1:{egress_port}")])
            .args(["--token-file", tok.to_str().unwrap()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().unwrap();
        let agent = Agent {
            child,
            port,
            egress_port,
            http: reqwest::Client::new(),
        };
        agent.wait_ready().await;
        assert!(!tok.exists(), "token file must be unlinked after start");
        agent
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let r = self
                .http
                .get(self.url("/ping"))
                .header("X-EXECD-ACCESS-TOKEN", TOKEN)
                .send()
                .await;
            if r.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("agent did not become ready");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn egress_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.egress_port)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(self.url(path))
            .header("X-EXECD-ACCESS-TOKEN", TOKEN)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .header("X-EXECD-ACCESS-TOKEN", TOKEN)
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .delete(self.url(path))
            .header("X-EXECD-ACCESS-TOKEN", TOKEN)
    }

    /// POST a JSON body to an SSE route and collect all events.
    pub async fn events(&self, path: &str, body: serde_json::Value) -> Vec<serde_json::Value> {
        let resp = self.post(path).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}: {:?}", resp.text().await);
        parse_events(&resp.text().await.unwrap())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parse the execd event framing (`{json}` + blank line), ignoring pings.
pub fn parse_events(text: &str) -> Vec<serde_json::Value> {
    text.split("\n\n")
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| {
            serde_json::from_str::<serde_json::Value>(f.trim_start_matches("data:").trim()).unwrap()
        })
        .filter(|v| v["type"] != "ping")
        .collect()
}

/// Concatenate the text of events of one type.
pub fn texts(events: &[serde_json::Value], kind: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == kind)
        .map(|e| e["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}
