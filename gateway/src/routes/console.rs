//! The console's built files (`console/dist`), served under `/console/`.
//!
//! Files are read once at start-up into memory, so serving them does no I/O. Hashed assets
//! (`/console/assets/...`) are cached for a year; `index.html`, which client-side routes
//! fall back to, is never cached. Every response carries a strict Content-Security-Policy.

use crate::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::http::inbound::Inbound;
use crate::reply::Reply;
use crate::state::Gateway;
use bytes::Bytes;
use std::collections::HashMap;
use std::path::Path;

/// The Content-Security-Policy of console responses.
pub const CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'";

/// One file.
#[derive(Debug, Clone)]
pub struct Asset {
    /// Contents.
    pub body: Bytes,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// `Cache-Control`.
    pub cache_control: &'static str,
}

/// The console bundle in memory.
#[derive(Debug, Default)]
pub struct Console {
    files: HashMap<String, Asset>,
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

impl Console {
    /// Loads every file under `dir`; a missing directory yields an empty console.
    pub fn load(dir: &Path) -> std::io::Result<Self> {
        let mut files = HashMap::new();
        if !dir.exists() {
            return Ok(Self { files });
        }
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d)? {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Ok(rel) = path.strip_prefix(dir) else {
                    continue;
                };
                let rel = rel.to_string_lossy().replace('\\', "/");
                let hashed = rel.starts_with("assets/");
                files.insert(
                    rel.clone(),
                    Asset {
                        body: Bytes::from(std::fs::read(&path)?),
                        content_type: content_type(&rel),
                        cache_control: if hashed {
                            "public, max-age=31536000, immutable"
                        } else {
                            "no-cache"
                        },
                    },
                );
            }
        }
        if let Some(index) = files.get_mut("index.html") {
            index.cache_control = "no-store";
        }
        Ok(Self { files })
    }

    /// Whether a bundle was found.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The asset for a path under `/console/` (without the prefix). Unknown paths without
    /// an extension fall back to `index.html` (client-side routes); unknown files are `None`.
    pub fn get(&self, rel: &str) -> Option<&Asset> {
        let rel = rel.trim_start_matches('/');
        if let Some(a) = self.files.get(rel) {
            return Some(a);
        }
        let last = rel.rsplit('/').next().unwrap_or("");
        if rel.is_empty() || !last.contains('.') {
            return self.files.get("index.html");
        }
        None
    }
}

/// Answers `GET`/`HEAD` `/console/...` from the bundle.
pub fn serve(gw: &Gateway, req: &Inbound, ctx: &RequestCtx) -> Result<Reply, GatewayError> {
    // The canonical path drops trailing slashes; only a literal `/console` redirects.
    if req.parts.uri.path() == "/console" {
        return Ok(Reply::redirect("/console/"));
    }
    let rel = ctx.path.trim_start_matches("/console/");
    let Some(asset) = gw.console.get(rel) else {
        let msg = if gw.console.is_empty() {
            "The console is not built (run `npm ci && npm run build` in console/)."
        } else {
            "No such console file."
        };
        return Err(GatewayError::new(404, "GATEWAY::NOT_FOUND", msg));
    };
    Ok(Reply {
        status: 200,
        headers: vec![
            ("content-type", asset.content_type.into()),
            ("cache-control", asset.cache_control.into()),
            ("content-security-policy", CSP.into()),
            ("x-content-type-options", "nosniff".into()),
            ("referrer-policy", "same-origin".into()),
            ("x-frame-options", "DENY".into()),
        ],
        body: asset.body.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_assets_and_falls_back_to_index() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("assets")).unwrap();
        std::fs::write(dir.path().join("index.html"), "<html></html>").unwrap();
        std::fs::write(dir.path().join("assets/app-1a2b.js"), "x").unwrap();
        let c = Console::load(dir.path()).unwrap();
        assert_eq!(c.get("").unwrap().cache_control, "no-store");
        assert_eq!(
            c.get("sandboxes/abc").unwrap().content_type,
            "text/html; charset=utf-8"
        );
        let js = c.get("assets/app-1a2b.js").unwrap();
        assert!(js.cache_control.contains("immutable"));
        assert!(c.get("assets/missing.js").is_none());
    }
}
