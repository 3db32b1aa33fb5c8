//! Access control: the token hand-over, the constant-time header check, and the
//! non-dumpable process flag.
//!
//! The token is never logged, never passed to children, and (with `--token-file`) never
//! left on disk.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::config::{Config, TOKEN_ENV};
use crate::error::ApiError;

/// Header carrying the token on execd requests (OpenSandbox contract).
pub const TOKEN_HEADER: &str = "x-execd-access-token";
/// Header the egress API uses for its optional auth (accepted on the egress port).
pub const EGRESS_AUTH_HEADER: &str = "opensandbox-egress-auth";

/// A secret that never prints itself.
#[derive(Clone)]
pub struct Secret(Arc<Vec<u8>>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// Wrap raw bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Arc::new(bytes))
    }

    /// Constant-time comparison with `candidate`.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        bool::from(self.0.as_slice().ct_eq(candidate))
    }
}

/// Why the agent refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No token and no `--insecure-no-token`.
    #[error("no access token: pass --token-file PATH or set {TOKEN_ENV} (or --insecure-no-token for local development)")]
    Missing,
    /// The token file could not be read.
    #[error("cannot read token file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The token is empty after trimming.
    #[error("the access token is empty")]
    Empty,
}

/// Load the token per the configuration. `Ok(None)` only with `--insecure-no-token`.
///
/// `env_token` is the value of `EXECD_ACCESS_TOKEN` at start (passed in so tests need not
/// touch the process environment).
pub fn load_token(cfg: &Config, env_token: Option<String>) -> Result<Option<Secret>, TokenError> {
    if let Some(path) = &cfg.token_file {
        if env_token.is_some() {
            tracing::warn!("both --token-file and {TOKEN_ENV} given; using the file");
        }
        let secret = read_token_file(path)?;
        return Ok(Some(secret));
    }
    if let Some(v) = env_token {
        let trimmed = v.trim();
        if trimmed.is_empty() {
            return Err(TokenError::Empty);
        }
        return Ok(Some(Secret::new(trimmed.as_bytes().to_vec())));
    }
    if cfg.insecure_no_token {
        tracing::warn!("serving WITHOUT an access token (--insecure-no-token)");
        return Ok(None);
    }
    Err(TokenError::Missing)
}

fn read_token_file(path: &Path) -> Result<Secret, TokenError> {
    let raw = std::fs::read(path).map_err(|source| TokenError::Read {
        path: path.display().to_string(),
        source,
    })?;
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!(path = %path.display(), error = %e,
            "could not unlink the token file; processes in the sandbox may read it");
    }
    let text = String::from_utf8_lossy(&raw);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(TokenError::Empty);
    }
    Ok(Secret::new(trimmed.as_bytes().to_vec()))
}

/// Make this process non-dumpable: same-uid processes without `CAP_SYS_PTRACE` can then
/// neither ptrace it nor read `/proc/<pid>/{mem,environ}`.
pub fn make_non_dumpable() {
    use rustix::process::{set_dumpable_behavior, DumpableBehavior};
    if let Err(e) = set_dumpable_behavior(DumpableBehavior::NotDumpable) {
        tracing::warn!(error = %e, "prctl(PR_SET_DUMPABLE, 0) failed");
    }
}

/// What a listener requires.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    /// `None` = no token configured (insecure mode).
    pub token: Option<Secret>,
    /// Header names accepted as carrying the token.
    pub headers: &'static [&'static str],
    /// Answer 401 as `text/plain` (the egress contract) instead of the JSON error shape.
    pub plain_text: bool,
}

/// Middleware: reject with 401 unless one of the policy's headers carries the token.
pub async fn require_token(
    State(policy): State<Arc<AuthPolicy>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(token) = &policy.token else {
        return next.run(req).await;
    };
    let ok = policy.headers.iter().any(|h| {
        req.headers()
            .get(*h)
            .is_some_and(|v| token.matches(v.as_bytes()))
    });
    if ok {
        next.run(req).await
    } else if policy.plain_text {
        (
            axum::http::StatusCode::UNAUTHORIZED,
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            ApiError::Unauthorized.to_string(),
        )
            .into_response()
    } else {
        ApiError::Unauthorized.into_response()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cfg(args: &[&str]) -> Config {
        let mut v = vec!["gatehouse-execd"];
        v.extend_from_slice(args);
        Config::parse_from(v)
    }

    #[test]
    fn secret_compares_and_redacts() {
        let s = Secret::new(b"abc".to_vec());
        assert!(s.matches(b"abc"));
        assert!(!s.matches(b"abd"));
        assert!(!s.matches(b"ab"));
        assert!(!format!("{s:?}").contains("abc"));
    }

    #[test]
    fn missing_token_refuses_unless_insecure() {
        assert!(matches!(
            load_token(&cfg(&[]), None),
            Err(TokenError::Missing)
        ));
        assert!(load_token(&cfg(&["--insecure-no-token"]), None)
            .unwrap()
            .is_none());
        let s = load_token(&cfg(&[]), Some(" tok \n".into()))
            .unwrap()
            .unwrap();
        assert!(s.matches(b"tok"));
    }

    #[test]
    fn process_becomes_non_dumpable() {
        use rustix::process::{dumpable_behavior, DumpableBehavior};
        make_non_dumpable();
        assert_eq!(dumpable_behavior().unwrap(), DumpableBehavior::NotDumpable);
    }

    #[test]
    fn token_file_is_read_then_unlinked() {
        let path = std::env::temp_dir().join(format!("gh-tok-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, "filetok\n").unwrap();
        let c = cfg(&["--token-file", path.to_str().unwrap()]);
        let s = load_token(&c, None).unwrap().unwrap();
        assert!(s.matches(b"filetok"));
        assert!(!path.exists());
    }
}
