//! `/directories` routes: list, create (`mkdir -p` + permissions), remove (`rm -rf`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::Json;

use super::files::blocking;
use super::{query_all, query_one, query_required, JsonBody};
use crate::accounts::Accounts;
use crate::error::{ApiError, ApiResult};
use crate::fsutil::{apply_permission, file_info, resolve, FileInfo, Permission};
use crate::state::Shared;

/// Most entries a listing returns.
pub const MAX_LIST_ENTRIES: usize = 100_000;

fn walk(
    dir: &Path,
    depth: u32,
    max: u32,
    acc: &Accounts,
    out: &mut Vec<FileInfo>,
) -> ApiResult<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| ApiError::io("list", dir, e))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if out.len() >= MAX_LIST_ENTRIES {
            return Ok(());
        }
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        out.push(file_info(&path, &meta, acc));
        if meta.is_dir() && depth + 1 < max {
            walk(&path, depth + 1, max, acc, out)?;
        }
    }
    Ok(())
}

/// `GET /directories/list?path=&depth=1`: entries below `path` in lexical order, each
/// directory's descendants right after it; symlinks are reported, never followed.
pub async fn list(State(state): State<Shared>, uri: Uri) -> ApiResult<Json<Vec<FileInfo>>> {
    let root: PathBuf = resolve(&state, &query_required(&uri, "path")?)?;
    let depth = match query_one(&uri, "depth") {
        None => 1,
        Some(d) => d.parse::<u32>().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid depth '{d}': expected a non-negative integer"
            ))
        })?,
    };
    blocking(move || {
        let meta = std::fs::symlink_metadata(&root).map_err(|e| ApiError::io("list", &root, e))?;
        if meta.file_type().is_symlink() {
            return Err(ApiError::bad_request(format!(
                "{} is a symbolic link; pass the real directory",
                root.display()
            )));
        }
        if !meta.is_dir() {
            return Err(ApiError::bad_request(format!(
                "{} is not a directory",
                root.display()
            )));
        }
        let mut out = Vec::new();
        if depth > 0 {
            walk(&root, 0, depth, &Accounts::load(), &mut out)?;
        }
        Ok(Json(out))
    })
    .await
}

/// `POST /directories`: map of path to `Permission`.
pub async fn create(
    State(state): State<Shared>,
    JsonBody(req): JsonBody<BTreeMap<String, Permission>>,
) -> ApiResult<StatusCode> {
    let acc = Accounts::load();
    for (p, perm) in req {
        let path = resolve(&state, &p)?;
        std::fs::create_dir_all(&path).map_err(|e| ApiError::io("mkdir", &path, e))?;
        apply_permission(&path, &perm, &acc)?;
    }
    Ok(StatusCode::OK)
}

/// `DELETE /directories?path=...`: recursive removal; missing directories are ignored.
pub async fn remove(State(state): State<Shared>, uri: Uri) -> ApiResult<StatusCode> {
    let paths: Vec<PathBuf> = query_all(&uri, "path")
        .iter()
        .map(|p| resolve(&state, p))
        .collect::<ApiResult<_>>()?;
    blocking(move || {
        for path in paths {
            if path == Path::new("/") {
                return Err(ApiError::bad_request("refusing to remove /"));
            }
            match std::fs::symlink_metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ApiError::io("rmdir", &path, e)),
                Ok(m) if !m.is_dir() => {
                    return Err(ApiError::bad_request(format!(
                        "{} is not a directory; use DELETE /files",
                        path.display()
                    )))
                }
                Ok(_) => {
                    std::fs::remove_dir_all(&path).map_err(|e| ApiError::io("rmdir", &path, e))?
                }
            }
        }
        Ok(StatusCode::OK)
    })
    .await
}
