//! The engine connection: address parsing, API version negotiation, and the error and
//! timeout handling every call goes through.
//!
//! The client starts at bollard's API version and [`Docker::negotiate_version`] lowers it
//! to the engine's (1.41 for Docker 20.10). bollard 0.21 actually sends unversioned paths
//! (`/containers/json`, not `/v1.53/containers/json`: its URL builder joins the absolute
//! path over the versioned one), so the engine answers with its own newest API and the
//! negotiated version is informational; should a versioned path be sent and refused
//! ("client version 1.53 is too new. Maximum supported API version is 1.41"), negotiation
//! retries at the version the engine names. While the engine is unreachable calls fail
//! with `Unavailable` and negotiation is retried before the next call, so the backend starts
//! while the engine is down and recovers when it returns. An engine that answers without a
//! usable version gets [`SAFE_VERSION`].

use bollard::errors::Error as BollardError;
use bollard::{ClientVersion, Docker, API_DEFAULT_VERSION};
use gatehouse_lifecycle::RuntimeError;
use std::future::Future;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

/// Engine name used in errors and logs.
pub const RUNTIME: &str = "DOCKER";

/// Version spoken before negotiation succeeds: Docker 20.10's API.
pub const SAFE_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 41,
};

/// How the engine is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A unix socket path.
    Unix(String),
    /// Plain HTTP, `host:port`.
    Http(String),
}

impl Target {
    /// Parses `unix:///path`, `/path`, `tcp://host:port` or `http://host:port`.
    pub fn parse(host: &str) -> Result<Self, String> {
        let h = host.trim();
        if let Some(p) = h.strip_prefix("unix://") {
            return Ok(Self::Unix(p.to_string()));
        }
        if h.starts_with('/') {
            return Ok(Self::Unix(h.to_string()));
        }
        for scheme in ["tcp://", "http://"] {
            if let Some(rest) = h.strip_prefix(scheme) {
                let rest = rest.trim_end_matches('/');
                if rest.is_empty() {
                    return Err(format!("docker host \"{host}\" has no address"));
                }
                return Ok(Self::Http(format!("tcp://{rest}")));
            }
        }
        Err(format!(
            "docker host \"{host}\" is not supported: use unix:///path, tcp://host:port or http://host:port"
        ))
    }

    /// A bollard client for this target at `version`.
    fn client(&self, timeout: Duration, version: &ClientVersion) -> Result<Docker, BollardError> {
        let secs = timeout.as_secs().max(1);
        match self {
            Self::Unix(path) => Docker::connect_with_unix(path, secs, version),
            Self::Http(addr) => Docker::connect_with_http(addr, secs, version),
        }
    }
}

/// A failed engine call.
#[derive(Debug)]
pub enum CallError {
    /// The call did not finish within the API timeout.
    Timeout(Duration),
    /// bollard reported an error.
    Api(BollardError),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout(d) => write!(f, "no answer within {}s", d.as_secs()),
            Self::Api(e) => write!(f, "{e}"),
        }
    }
}

impl From<BollardError> for CallError {
    fn from(e: BollardError) -> Self {
        Self::Api(e)
    }
}

impl CallError {
    /// The HTTP status the engine answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(BollardError::DockerResponseServerError { status_code, .. }) => {
                Some(*status_code)
            }
            _ => None,
        }
    }

    /// The engine's message, or the error text.
    pub fn message(&self) -> String {
        match self {
            Self::Api(BollardError::DockerResponseServerError { message, .. }) => message.clone(),
            other => other.to_string(),
        }
    }

    /// Whether the engine could not be reached (connection failure or timeout).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Timeout(_) => true,
            Self::Api(e) => matches!(
                e,
                BollardError::SocketNotFoundError(_)
                    | BollardError::RequestTimeoutError
                    | BollardError::IOError { .. }
                    | BollardError::HyperLegacyError { .. }
                    | BollardError::HyperResponseError { .. }
            ),
        }
    }

    /// `Unavailable` for connection failures, else `Failed` with `code`.
    pub fn into_runtime(self, code: &'static str, op: &'static str) -> RuntimeError {
        if self.is_unavailable() {
            RuntimeError::Unavailable {
                runtime: RUNTIME,
                code: crate::codes::ENGINE_UNAVAILABLE,
                detail: format!("{op}: {self}"),
            }
        } else {
            RuntimeError::Failed {
                code,
                op,
                detail: self.message(),
            }
        }
    }
}

/// Runs `fut` under `limit`.
pub async fn timed<T, F>(limit: Duration, fut: F) -> Result<T, CallError>
where
    F: Future<Output = Result<T, BollardError>>,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(CallError::Api),
        Err(_) => Err(CallError::Timeout(limit)),
    }
}

/// A lazily negotiated engine client.
pub struct Client {
    target: Target,
    timeout: Duration,
    /// The client, once its version is settled.
    conn: RwLock<Option<Docker>>,
    negotiating: tokio::sync::Mutex<()>,
}

impl Client {
    /// A client for `target`; nothing is dialed yet.
    pub fn new(target: Target, timeout: Duration) -> Self {
        Self {
            target,
            timeout,
            conn: RwLock::new(None),
            negotiating: tokio::sync::Mutex::new(()),
        }
    }

    /// The API timeout of every call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn negotiated(&self) -> Option<Docker> {
        let guard = self.conn.read().unwrap_or_else(PoisonError::into_inner);
        guard.clone()
    }

    fn store(&self, docker: Docker) {
        let mut guard = self.conn.write().unwrap_or_else(PoisonError::into_inner);
        *guard = Some(docker);
    }

    /// The client to use: negotiates first when that has not succeeded yet.
    pub async fn get(&self) -> Result<Docker, RuntimeError> {
        self.get_within(self.timeout).await
    }

    /// Like [`Client::get`], with a negotiation deadline of `limit`.
    pub async fn get_within(&self, limit: Duration) -> Result<Docker, RuntimeError> {
        if let Some(d) = self.negotiated() {
            return Ok(d);
        }
        let _guard = self.negotiating.lock().await;
        if let Some(d) = self.negotiated() {
            return Ok(d);
        }
        match negotiate(&self.target, self.timeout, limit).await {
            Ok(docker) => {
                tracing::info!(api_version = %docker.client_version(), "docker API version negotiated");
                self.store(docker.clone());
                Ok(docker)
            }
            Err(e) if e.is_unavailable() => Err(RuntimeError::Unavailable {
                runtime: RUNTIME,
                code: crate::codes::ENGINE_UNAVAILABLE,
                detail: format!("connect: {e}"),
            }),
            Err(e) => {
                // The engine answered but its version could not be determined: speak the
                // safe version rather than fail every call.
                tracing::warn!(error = %e, version = %SAFE_VERSION, "docker API version negotiation failed; using the safe version");
                let docker = self
                    .target
                    .client(self.timeout, &SAFE_VERSION)
                    .map_err(|e| {
                        CallError::Api(e).into_runtime(crate::codes::INIT_ERROR, "connect")
                    })?;
                self.store(docker.clone());
                Ok(docker)
            }
        }
    }
}

/// Finds the newest API version both bollard and the engine speak.
async fn negotiate(
    target: &Target,
    timeout: Duration,
    limit: Duration,
) -> Result<Docker, CallError> {
    let first = target.client(timeout, API_DEFAULT_VERSION)?;
    match timed(limit, first.negotiate_version()).await {
        Ok(d) => Ok(d),
        Err(e) => {
            let Some(max) = (e.status() == Some(400))
                .then(|| max_version(&e.message()))
                .flatten()
            else {
                return Err(e);
            };
            let version = if max < *API_DEFAULT_VERSION {
                max
            } else {
                *API_DEFAULT_VERSION
            };
            let second = target.client(timeout, &version)?;
            timed(limit, second.negotiate_version()).await
        }
    }
}

/// The version in "... Maximum supported API version is 1.41".
pub fn max_version(message: &str) -> Option<ClientVersion> {
    const MARK: &str = "Maximum supported API version is ";
    let start = message.find(MARK)? + MARK.len();
    let rest = &message[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (major, minor) = rest[..end].trim_end_matches('.').split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("unix:///tmp/d.sock"),
            Ok(Target::Unix("/tmp/d.sock".into()))
        );
        assert_eq!(
            Target::parse("/var/run/docker.sock"),
            Ok(Target::Unix("/var/run/docker.sock".into()))
        );
        assert_eq!(
            Target::parse("tcp://127.0.0.1:2375"),
            Ok(Target::Http("tcp://127.0.0.1:2375".into()))
        );
        assert_eq!(
            Target::parse("http://h:1/"),
            Ok(Target::Http("tcp://h:1".into()))
        );
        assert!(Target::parse("ssh://h").is_err());
        assert!(Target::parse("tcp://").is_err());
    }

    #[test]
    fn parses_the_engine_maximum() {
        let v =
            max_version("client version 1.53 is too new. Maximum supported API version is 1.41")
                .unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(max_version("something else").is_none());
    }

    #[test]
    fn classifies_errors() {
        assert!(CallError::Timeout(Duration::from_secs(1)).is_unavailable());
        assert!(CallError::Api(BollardError::SocketNotFoundError("x".into())).is_unavailable());
        let e = CallError::Api(BollardError::DockerResponseServerError {
            status_code: 404,
            message: "no".into(),
        });
        assert!(!e.is_unavailable());
        assert_eq!(e.status(), Some(404));
        assert!(matches!(
            e.into_runtime("C", "op"),
            RuntimeError::Failed { code: "C", .. }
        ));
    }
}
