//! `POST /files/upload`: multipart pairs of a `metadata` part (JSON `FileMetadata`) then a
//! `file` part, as the SDK sends them (chunked or with a length). Each file is streamed
//! to a temporary file beside its target and renamed into place; the request is refused
//! with 413 once the files exceed the configured maximum.

use std::path::{Path, PathBuf};

use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, StatusCode};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::accounts::Accounts;
use crate::error::{ApiError, ApiResult};
use crate::fsutil::{apply_permission, resolve, Permission};
use crate::state::Shared;

/// Largest accepted metadata part.
const MAX_METADATA: usize = 64 * 1024;

/// `FileMetadata` of the execd contract.
#[derive(Debug, Deserialize)]
struct FileMetadata {
    path: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    mode: Option<u32>,
}

fn multipart_error(e: MultipartError, limit: u64) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit }
    } else {
        ApiError::bad_request(format!("invalid multipart body: {}", e.body_text()))
    }
}

/// The upload handler.
pub async fn upload(
    State(state): State<Shared>,
    headers: HeaderMap,
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<StatusCode> {
    let limit = state.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut mp = mp.map_err(|e| {
        ApiError::bad_request(format!("expected multipart/form-data: {}", e.body_text()))
    })?;
    let acc = Accounts::load();
    let mut pending: Option<FileMetadata> = None;
    let mut total: u64 = 0;
    let mut files = 0usize;
    while let Some(mut field) = mp
        .next_field()
        .await
        .map_err(|e| multipart_error(e, limit))?
    {
        match field.name() {
            Some("metadata") => {
                if pending.is_some() {
                    return Err(ApiError::bad_request(
                        "two metadata parts in a row; each must be followed by a file part",
                    ));
                }
                let mut raw = Vec::new();
                while let Some(chunk) =
                    field.chunk().await.map_err(|e| multipart_error(e, limit))?
                {
                    raw.extend_from_slice(&chunk);
                    if raw.len() > MAX_METADATA {
                        return Err(ApiError::bad_request("metadata part too large"));
                    }
                }
                let meta: FileMetadata = serde_json::from_slice(&raw)
                    .map_err(|e| ApiError::bad_request(format!("invalid metadata JSON: {e}")))?;
                if meta.path.is_empty() {
                    return Err(ApiError::bad_request("metadata path is empty"));
                }
                pending = Some(meta);
            }
            Some("file") => {
                let meta = pending.take().ok_or_else(|| {
                    ApiError::bad_request("file part without a preceding metadata part")
                })?;
                let target = resolve(&state, &meta.path)?;
                write_file(&mut field, &target, &mut total, limit).await?;
                let perm = Permission {
                    mode: meta.mode,
                    owner: meta.owner,
                    group: meta.group,
                };
                apply_permission(&target, &perm, &acc)?;
                files += 1;
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unexpected multipart part {:?}; expected 'metadata' and 'file'",
                    other.unwrap_or("")
                )))
            }
        }
    }
    if pending.is_some() {
        return Err(ApiError::bad_request(
            "metadata part without a following file part",
        ));
    }
    if files == 0 {
        return Err(ApiError::bad_request("no file parts in the upload"));
    }
    Ok(StatusCode::OK)
}

fn temp_beside(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.upload-{}", uuid::Uuid::new_v4().simple()))
}

async fn write_file(
    field: &mut Field<'_>,
    target: &Path,
    total: &mut u64,
    limit: u64,
) -> ApiResult<()> {
    if let Some(parent) = target.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| ApiError::io("create parent", parent, e))?;
    }
    if tokio::fs::metadata(target).await.is_ok_and(|m| m.is_dir()) {
        return Err(ApiError::bad_request(format!(
            "{} is a directory",
            target.display()
        )));
    }
    let tmp = temp_beside(target);
    let result = copy_field(field, &tmp, total, limit).await;
    let result = match result {
        Ok(()) => tokio::fs::rename(&tmp, target)
            .await
            .map_err(|e| ApiError::io("rename upload", target, e)),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

async fn copy_field(
    field: &mut Field<'_>,
    tmp: &Path,
    total: &mut u64,
    limit: u64,
) -> ApiResult<()> {
    let mut file = tokio::fs::File::create(tmp)
        .await
        .map_err(|e| ApiError::io("create", tmp, e))?;
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, limit))? {
        *total += chunk.len() as u64;
        if *total > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::io("write", tmp, e))?;
    }
    file.flush()
        .await
        .map_err(|e| ApiError::io("flush", tmp, e))?;
    Ok(())
}
