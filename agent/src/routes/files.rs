//! `/files` routes: info, remove, mv, permissions, search, replace, download.

use std::collections::BTreeMap;
use std::io::{BufRead, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{query_all, query_one, query_required, JsonBody};
use crate::accounts::Accounts;
use crate::error::{ApiError, ApiResult};
use crate::fsutil::{
    apply_permission, file_info, glob_match, parse_range, resolve, FileInfo, Permission,
};
use crate::state::Shared;

/// Most entries a search returns.
pub const MAX_SEARCH_RESULTS: usize = 100_000;

/// Run blocking filesystem work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal("blocking task", e))?
}

/// `GET /files/info?path=...` (repeatable): map of requested path to `FileInfo`.
pub async fn info(
    State(state): State<Shared>,
    uri: Uri,
) -> ApiResult<Json<BTreeMap<String, FileInfo>>> {
    let paths = query_all(&uri, "path");
    let resolved: Vec<(String, PathBuf)> = paths
        .into_iter()
        .map(|p| resolve(&state, &p).map(|r| (p, r)))
        .collect::<ApiResult<_>>()?;
    blocking(move || {
        let acc = Accounts::load();
        let mut out = BTreeMap::new();
        for (orig, path) in resolved {
            let meta =
                std::fs::symlink_metadata(&path).map_err(|e| ApiError::io("stat", &path, e))?;
            out.insert(orig, file_info(&path, &meta, &acc));
        }
        Ok(Json(out))
    })
    .await
}

/// `DELETE /files?path=...`: remove files (missing ones are ignored; directories refused).
pub async fn remove(State(state): State<Shared>, uri: Uri) -> ApiResult<StatusCode> {
    for p in query_all(&uri, "path") {
        let path = resolve(&state, &p)?;
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(ApiError::io("stat", &path, e)),
            Ok(m) if m.is_dir() => {
                return Err(ApiError::bad_request(format!(
                    "{} is a directory; use DELETE /directories",
                    path.display()
                )))
            }
            Ok(_) => std::fs::remove_file(&path).map_err(|e| ApiError::io("remove", &path, e))?,
        }
    }
    Ok(StatusCode::OK)
}

/// `RenameFileItem`.
#[derive(Debug, Deserialize)]
pub struct RenameItem {
    src: String,
    dest: String,
}

/// `POST /files/mv`: rename or move; the destination must not exist (parents are created).
pub async fn rename(
    State(state): State<Shared>,
    JsonBody(items): JsonBody<Vec<RenameItem>>,
) -> ApiResult<StatusCode> {
    for item in items {
        let src = resolve(&state, &item.src)?;
        let dest = resolve(&state, &item.dest)?;
        std::fs::symlink_metadata(&src).map_err(|e| ApiError::io("mv source", &src, e))?;
        if std::fs::symlink_metadata(&dest).is_ok() {
            return Err(ApiError::Conflict(format!(
                "destination {} already exists",
                dest.display()
            )));
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| ApiError::io("create parent", parent, e))?;
        }
        std::fs::rename(&src, &dest).map_err(|e| ApiError::io("mv", &src, e))?;
    }
    Ok(StatusCode::OK)
}

/// `POST /files/permissions`: map of path to `Permission`.
pub async fn chmod(
    State(state): State<Shared>,
    JsonBody(req): JsonBody<BTreeMap<String, Permission>>,
) -> ApiResult<StatusCode> {
    let acc = Accounts::load();
    for (p, perm) in req {
        let path = resolve(&state, &p)?;
        std::fs::symlink_metadata(&path).map_err(|e| ApiError::io("chmod", &path, e))?;
        apply_permission(&path, &perm, &acc)?;
    }
    Ok(StatusCode::OK)
}

/// `GET /files/search?path=DIR&pattern=GLOB`: regular files under DIR whose name (or, for
/// patterns with `/`, path relative to DIR) matches; symlinks are not followed.
pub async fn search(State(state): State<Shared>, uri: Uri) -> ApiResult<Json<Vec<FileInfo>>> {
    let root = resolve(&state, &query_required(&uri, "path")?)?;
    let pattern = query_one(&uri, "pattern").unwrap_or_else(|| "**".to_owned());
    blocking(move || {
        let meta = std::fs::metadata(&root).map_err(|e| ApiError::io("search", &root, e))?;
        if !meta.is_dir() {
            return Err(ApiError::bad_request(format!(
                "{} is not a directory",
                root.display()
            )));
        }
        let acc = Accounts::load();
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut entries: Vec<_> = rd.filter_map(Result::ok).collect();
            entries.sort_by_key(|e| std::cmp::Reverse(e.file_name()));
            for e in entries {
                let Ok(m) = e.metadata() else { continue };
                let path = e.path();
                if m.is_dir() {
                    stack.push(path);
                    continue;
                }
                if !m.is_file() {
                    continue;
                }
                let subject = if pattern.contains('/') {
                    path.strip_prefix(&root)
                        .unwrap_or(&path)
                        .to_string_lossy()
                        .into_owned()
                } else {
                    e.file_name().to_string_lossy().into_owned()
                };
                if glob_match(&pattern, &subject) {
                    out.push(file_info(&path, &m, &acc));
                    if out.len() >= MAX_SEARCH_RESULTS {
                        return Ok(Json(out));
                    }
                }
            }
        }
        Ok(Json(out))
    })
    .await
}

/// `ReplaceFileContentItem`.
#[derive(Debug, Deserialize)]
pub struct ReplaceItem {
    old: String,
    new: String,
}

/// `ReplaceFileContentResult`.
#[derive(Debug, Serialize)]
pub struct ReplaceResult {
    #[serde(rename = "replacedCount")]
    replaced_count: usize,
}

fn replace_bytes(content: &[u8], old: &[u8], new: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(content.len());
    let mut count = 0;
    let mut i = 0;
    while i < content.len() {
        if content[i..].starts_with(old) {
            out.extend_from_slice(new);
            i += old.len();
            count += 1;
        } else {
            out.push(content[i]);
            i += 1;
        }
    }
    (out, count)
}

/// `POST /files/replace[?verbose=true]`: replace all occurrences per file.
pub async fn replace(
    State(state): State<Shared>,
    uri: Uri,
    JsonBody(req): JsonBody<BTreeMap<String, ReplaceItem>>,
) -> ApiResult<Response> {
    let verbose = query_one(&uri, "verbose").is_some_and(|v| v == "true" || v == "1");
    let mut jobs = Vec::new();
    for (p, item) in req {
        if item.old.is_empty() {
            return Err(ApiError::bad_request(format!(
                "'old' must not be empty (file {p})"
            )));
        }
        jobs.push((resolve(&state, &p)?, p, item));
    }
    let results = blocking(move || {
        let mut results = BTreeMap::new();
        for (path, orig, item) in jobs {
            let content = std::fs::read(&path).map_err(|e| ApiError::io("read", &path, e))?;
            let (updated, count) =
                replace_bytes(&content, item.old.as_bytes(), item.new.as_bytes());
            if count > 0 {
                std::fs::write(&path, updated).map_err(|e| ApiError::io("write", &path, e))?;
            }
            results.insert(
                orig,
                ReplaceResult {
                    replaced_count: count,
                },
            );
        }
        Ok(results)
    })
    .await?;
    Ok(if verbose {
        Json(results).into_response()
    } else {
        StatusCode::OK.into_response()
    })
}

fn disposition(path: &Path) -> HeaderValue {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    HeaderValue::from_str(&format!("attachment; filename=\"{safe}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

fn file_stream(file: std::fs::File, remaining: u64) -> Body {
    let file = tokio::fs::File::from_std(file);
    let stream =
        futures_util::stream::unfold((file, remaining), |(mut file, remaining)| async move {
            if remaining == 0 {
                return None;
            }
            let want = usize::try_from(remaining.min(64 * 1024)).unwrap_or(64 * 1024);
            let mut buf = vec![0u8; want];
            match tokio::io::AsyncReadExt::read(&mut file, &mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    let left = remaining - n as u64;
                    Some((
                        Ok::<_, std::io::Error>(bytes::Bytes::from(buf)),
                        (file, left),
                    ))
                }
                Err(e) => Some((Err(e), (file, 0))),
            }
        });
    Body::from_stream(stream)
}

/// `GET /files/download?path=[&offset=&limit=]`: the file (honouring one `Range`), or, with
/// offset/limit, lines `offset..offset+limit` (1-based) as text.
pub async fn download(
    State(state): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let path = resolve(&state, &query_required(&uri, "path")?)?;
    let offset = query_one(&uri, "offset");
    let limit = query_one(&uri, "limit");
    let meta = std::fs::metadata(&path).map_err(|e| ApiError::io("download", &path, e))?;
    if meta.is_dir() {
        return Err(ApiError::bad_request(format!(
            "{} is a directory",
            path.display()
        )));
    }
    let file = std::fs::File::open(&path).map_err(|e| ApiError::io("open", &path, e))?;
    if offset.is_some() || limit.is_some() {
        let (Some(o), Some(l)) = (offset, limit) else {
            return Err(ApiError::bad_request(
                "both offset and limit must be given for line-based reading",
            ));
        };
        let parse = |v: &str, n: &str| {
            v.parse::<usize>()
                .ok()
                .filter(|x| *x >= 1)
                .ok_or_else(|| ApiError::bad_request(format!("{n} must be a positive integer")))
        };
        let (o, l) = (parse(&o, "offset")?, parse(&l, "limit")?);
        let text = blocking(move || {
            let mut out = Vec::new();
            let reader = std::io::BufReader::new(file);
            for line in reader.split(b'\n').skip(o - 1).take(l) {
                let line = line.map_err(|e| ApiError::internal("read lines", e))?;
                out.extend_from_slice(&line);
                out.push(b'\n');
            }
            Ok(out)
        })
        .await?;
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
    }
    let size = meta.len();
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(h) => parse_range(h, size).map_err(ApiError::RangeNotSatisfiable)?,
        None => None,
    };
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_DISPOSITION, disposition(&path))
        .header(header::ACCEPT_RANGES, "bytes");
    let body = match range {
        Some((start, end)) => {
            let mut file = file;
            file.seek(SeekFrom::Start(start))
                .map_err(|e| ApiError::io("seek", &path, e))?;
            let len = end - start + 1;
            builder = builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"))
                .header(header::CONTENT_LENGTH, len);
            file_stream(file, len)
        }
        None => {
            builder = builder.header(header::CONTENT_LENGTH, size);
            file_stream(file, size)
        }
    };
    builder
        .body(body)
        .map_err(|e| ApiError::internal("build response", e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn replace_counts_non_overlapping() {
        assert_eq!(replace_bytes(b"aaaa", b"aa", b"b"), (b"bb".to_vec(), 2));
        assert_eq!(
            replace_bytes(b"host=localhost", b"localhost", b"0.0.0.0"),
            (b"host=0.0.0.0".to_vec(), 1)
        );
        assert_eq!(replace_bytes(b"none", b"x", b"y"), (b"none".to_vec(), 0));
    }
}
