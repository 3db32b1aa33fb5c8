//! Filesystem helpers shared by the file and directory routes: `FileInfo`, modes,
//! ownership, globbing and byte ranges.

use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::accounts::Accounts;
use crate::commands::runner::expand_home;
use crate::error::{ApiError, ApiResult};
use crate::state::Shared;

/// `FileInfo` of the execd contract.
#[derive(Debug, Clone, Serialize)]
pub struct FileInfo {
    /// Absolute path.
    pub path: String,
    /// file, directory, symlink or other.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Size in bytes.
    pub size: u64,
    /// RFC 3339 modification time.
    pub modified_at: String,
    /// RFC 3339 creation time (birth time when known, else modification time).
    pub created_at: String,
    /// Owner name (or uid).
    pub owner: String,
    /// Group name (or gid).
    pub group: String,
    /// Permission bits written as octal digits (0o644 is `644`).
    pub mode: u32,
}

/// `Permission` of the execd contract (also used for uploads and mkdir).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Permission {
    /// Octal digits as a decimal number (`755`); absent or 0 leaves the mode alone.
    #[serde(default)]
    pub mode: Option<u32>,
    /// Owner name or uid.
    #[serde(default)]
    pub owner: Option<String>,
    /// Group name or gid.
    #[serde(default)]
    pub group: Option<String>,
}

/// Resolve an API path: `~` expands to `HOME`, relative paths are taken from the agent's
/// working directory.
pub fn resolve(state: &Shared, p: &str) -> ApiResult<PathBuf> {
    if p.is_empty() {
        return Err(ApiError::bad_request("empty path"));
    }
    if p.contains('\0') {
        return Err(ApiError::bad_request("path contains a NUL byte"));
    }
    let p = PathBuf::from(expand_home(state, p));
    if p.is_absolute() {
        return Ok(p);
    }
    let cwd = std::env::current_dir().map_err(|e| ApiError::internal("current dir", e))?;
    Ok(cwd.join(p))
}

fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Permission bits (`0o755`) to the API's decimal-digit form (`755`).
pub fn mode_to_api(bits: u32) -> u32 {
    format!("{:o}", bits & 0o7777).parse().unwrap_or(0)
}

/// The API's decimal-digit form (`755`) to permission bits (`0o755`).
pub fn mode_from_api(m: u32) -> ApiResult<u32> {
    u32::from_str_radix(&m.to_string(), 8)
        .ok()
        .filter(|b| *b <= 0o7777)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid mode {m}: expected octal digits such as 644 or 755"
            ))
        })
}

/// Build a `FileInfo` from `lstat` metadata.
pub fn file_info(path: &Path, meta: &Metadata, acc: &Accounts) -> FileInfo {
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "directory"
    } else if ft.is_file() {
        "file"
    } else {
        "other"
    };
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let created = meta.created().unwrap_or(modified);
    FileInfo {
        path: path.to_string_lossy().into_owned(),
        kind,
        size: meta.len(),
        modified_at: rfc3339(modified),
        created_at: rfc3339(created),
        owner: acc.user_name(meta.uid()),
        group: acc.group_name(meta.gid()),
        mode: mode_to_api(meta.permissions().mode() & 0o777),
    }
}

/// Apply mode and ownership from `perm` to `path`.
pub fn apply_permission(path: &Path, perm: &Permission, acc: &Accounts) -> ApiResult<()> {
    if let Some(m) = perm.mode.filter(|m| *m != 0) {
        let bits = mode_from_api(m)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(bits))
            .map_err(|e| ApiError::io("chmod", path, e))?;
    }
    let uid = match perm.owner.as_deref().filter(|o| !o.is_empty()) {
        Some(o) => Some(
            acc.uid_of(o)
                .ok_or_else(|| ApiError::bad_request(format!("unknown user '{o}'")))?,
        ),
        None => None,
    };
    let gid = match perm.group.as_deref().filter(|g| !g.is_empty()) {
        Some(g) => Some(
            acc.gid_of(g)
                .ok_or_else(|| ApiError::bad_request(format!("unknown group '{g}'")))?,
        ),
        None => None,
    };
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::chown(path, uid, gid).map_err(|e| ApiError::io("chown", path, e))?;
    }
    Ok(())
}

/// Glob match with `*`, `?`, `[...]` (`!`/`^` negates) and `\` escapes. `**` also matches
/// `/`; a single `*` and `?` do not.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_at(&p, &t)
}

fn glob_at(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') => {
            let double = p.get(1) == Some(&'*');
            let rest = if double { &p[2..] } else { &p[1..] };
            for i in 0..=t.len() {
                if glob_at(rest, &t[i..]) {
                    return true;
                }
                if i < t.len() && t[i] == '/' && !double {
                    return false;
                }
            }
            false
        }
        Some('?') => t.first().is_some_and(|c| *c != '/') && glob_at(&p[1..], &t[1..]),
        Some('[') => match (class_match(&p[1..], t.first().copied()), t.first()) {
            (Some((true, used)), Some(_)) => glob_at(&p[1 + used..], &t[1..]),
            (None, Some('[')) => glob_at(&p[1..], &t[1..]), // unterminated class: literal '['
            _ => false,
        },
        Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && glob_at(&p[2..], &t[1..]),
        Some(c) => t.first() == Some(c) && glob_at(&p[1..], &t[1..]),
    }
}

/// Match a `[...]` class (pattern starts after `[`); returns (matched, chars consumed incl. `]`).
fn class_match(p: &[char], c: Option<char>) -> Option<(bool, usize)> {
    let c = c?;
    let mut i = 0;
    let negate = matches!(p.first(), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

/// Parse a single-range `Range: bytes=...` header for a file of `size` bytes.
/// `Ok(None)`: no usable range (serve the whole file); `Err`: not satisfiable.
pub fn parse_range(header: &str, size: u64) -> Result<Option<(u64, u64)>, String> {
    let spec = header
        .trim()
        .strip_prefix("bytes=")
        .ok_or_else(|| format!("unsupported range unit in '{header}'"))?;
    let first = spec.split(',').next().unwrap_or("").trim();
    let (a, b) = first
        .split_once('-')
        .ok_or_else(|| format!("malformed range '{first}'"))?;
    let bad = || format!("malformed range '{first}'");
    let (start, end) = if a.is_empty() {
        let n: u64 = b.trim().parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(format!("range '{first}' selects no bytes"));
        }
        (size.saturating_sub(n), size.saturating_sub(1))
    } else {
        let s: u64 = a.trim().parse().map_err(|_| bad())?;
        let e = if b.trim().is_empty() {
            size.saturating_sub(1)
        } else {
            let e: u64 = b.trim().parse().map_err(|_| bad())?;
            if e < s {
                return Err(bad());
            }
            e.min(size.saturating_sub(1))
        };
        (s, e)
    };
    if size == 0 || start >= size {
        return Err(format!("range '{first}' is outside the file (size {size})"));
    }
    Ok(Some((start, end)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_as_octal_digits() {
        assert_eq!(mode_to_api(0o755), 755);
        assert_eq!(mode_to_api(0o644), 644);
        assert_eq!(mode_from_api(755).unwrap(), 0o755);
        assert!(mode_from_api(789).is_err());
    }

    #[test]
    fn globs() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "a.txt.bak"));
        assert!(glob_match("**", "anything"));
        assert!(glob_match("file?.rs", "file1.rs"));
        assert!(glob_match("[ab]*.log", "b-1.log"));
        assert!(!glob_match("[!ab]*.log", "b-1.log"));
        assert!(glob_match("[0-9].md", "7.md"));
        assert!(glob_match("src/**/*.rs", "src/a/b/c.rs"));
        assert!(!glob_match("src/*.rs", "src/a/c.rs"));
        assert!(glob_match(r"\*lit", "*lit"));
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100).unwrap(), Some((50, 99)));
        assert!(parse_range("bytes=100-", 100).is_err());
        assert!(parse_range("items=0-1", 100).is_err());
        assert!(parse_range("bytes=5-1", 100).is_err());
    }
}
