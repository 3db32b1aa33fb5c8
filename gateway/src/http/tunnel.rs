//! Protocol switches (WebSocket through the server-proxy route): once the backend
//! answers `101 Switching Protocols`, both connections are upgraded and bytes are copied
//! both ways until either side closes.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// Joins the client's and the backend's upgraded connections in a task of their own.
pub fn spawn(client: OnUpgrade, backend: OnUpgrade) {
    tokio::spawn(async move {
        let (client, backend) = match tokio::try_join!(client, backend) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade did not complete");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut backend = TokioIo::new(backend);
        match tokio::io::copy_bidirectional(&mut client, &mut backend).await {
            Ok((up, down)) => tracing::debug!(bytes.up = up, bytes.down = down, "tunnel closed"),
            Err(e) => tracing::debug!(error = %e, "tunnel broke off"),
        }
    });
}
