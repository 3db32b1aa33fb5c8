//! Path normalization: one canonical spelling per path, computed before any routing
//! decision, so that the path the gateway authorizes is the path it forwards.
//!
//! Rules, applied to the path only (never the query):
//!
//! * the path must start with `/`; a `?` or `#` in it is an error (the caller passed more
//!   than the path);
//! * raw control characters and raw backslashes are errors;
//! * every `%` must be followed by two hex digits;
//! * escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, every other
//!   escape is kept with upper-case hex. Decoding happens exactly once, so `%252F` stays
//!   `%252F` and never becomes `/`;
//! * escapes that would change the path's structure or smuggle bytes are errors: `%2F`
//!   (`/`), `%5C` (`\`) and every encoded control character (`%00`-`%1F`, `%7F`);
//! * characters that RFC 3986 does not allow in a path (space, `"`, `<`, `>`, `[`, `]`,
//!   `^`, `` ` ``, `{`, `|`, `}` and non-ASCII) are percent-encoded;
//! * empty segments (`//`) collapse, `.` segments vanish, `..` removes the previous
//!   segment (a `..` above `/` is an error), and a trailing slash is dropped.
//!
//! The leading `/v1` segment is a mount: `/v1/sandboxes` and `/sandboxes` are the same
//! API path, `/sandboxes`.

/// Where the API is mounted in the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mount {
    /// The API at the root: `/sandboxes`.
    Root,
    /// The API under `/v1`: `/v1/sandboxes`.
    V1,
}

impl Mount {
    /// The path prefix of the mount: `""` or `"/v1"`.
    pub const fn prefix(self) -> &'static str {
        match self {
            Mount::Root => "",
            Mount::V1 => "/v1",
        }
    }
}

/// A path in canonical form, split into its mount and its API path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath {
    /// The canonical full path, mount included: what the gateway forwards.
    pub path: String,
    /// The mount the path was under.
    pub mount: Mount,
    /// The path without the mount prefix, always starting with `/`: what routes match.
    pub api_path: String,
}

/// Why a path was rejected. The message is meant for the API caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("the request path must start with '/'")]
    NotAbsolute,
    /// A raw control character (`0x00`-`0x1F`, `0x7F`).
    #[error("the request path contains a control character")]
    ControlChar,
    /// A raw backslash.
    #[error("the request path contains a backslash")]
    Backslash,
    /// A `?` or `#`: the caller passed a query or fragment as part of the path.
    #[error("the request path contains '{0}'; pass only the path, without query or fragment")]
    QueryOrFragment(char),
    /// A `%` not followed by two hex digits.
    #[error("the request path contains a '%' that is not followed by two hex digits")]
    InvalidEscape,
    /// An escape that would change the path's structure (`%2F`, `%5C`).
    #[error("the request path contains the ambiguous escape {0}; it is not accepted")]
    AmbiguousEncoding(String),
    /// An encoded control character (`%00`-`%1F`, `%7F`).
    #[error("the request path contains the encoded control character {0}")]
    EncodedControl(String),
    /// A `..` segment that would climb above `/`.
    #[error("the request path climbs above the root with '..'")]
    AboveRoot,
}

/// Normalizes a request path (no query) as the module documentation describes.
pub fn normalize(raw_path: &str) -> Result<NormalizedPath, PathError> {
    let rest = raw_path.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
    let mut out = String::with_capacity(raw_path.len());
    // Byte offsets in `out` where each kept segment's `/` starts.
    let mut starts: Vec<usize> = Vec::new();
    for raw_seg in rest.split('/') {
        let start = out.len();
        out.push('/');
        push_canonical_segment(&mut out, raw_seg)?;
        match &out[start + 1..] {
            "" | "." => out.truncate(start),
            ".." => {
                out.truncate(start);
                let prev = starts.pop().ok_or(PathError::AboveRoot)?;
                out.truncate(prev);
            }
            _ => starts.push(start),
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    let (mount, api_path) = match out.strip_prefix("/v1") {
        Some("") => (Mount::V1, "/".to_owned()),
        Some(tail) if tail.starts_with('/') => (Mount::V1, tail.to_owned()),
        _ => (Mount::Root, out.clone()),
    };
    Ok(NormalizedPath {
        path: out,
        mount,
        api_path,
    })
}

/// Appends the canonical form of one raw segment (which holds no raw `/`) to `out`.
fn push_canonical_segment(out: &mut String, seg: &str) -> Result<(), PathError> {
    let bytes = seg.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let v = match (bytes.get(i + 1), bytes.get(i + 2)) {
                    (Some(&h), Some(&l)) => hex_pair(h, l).ok_or(PathError::InvalidEscape)?,
                    _ => return Err(PathError::InvalidEscape),
                };
                if v == b'/' || v == b'\\' {
                    return Err(PathError::AmbiguousEncoding(escaped(v)));
                }
                if v.is_ascii_control() {
                    return Err(PathError::EncodedControl(escaped(v)));
                }
                if is_unreserved(v) {
                    out.push(char::from(v));
                } else {
                    push_escape(out, v);
                }
                i += 3;
                continue;
            }
            _ if b.is_ascii_control() => return Err(PathError::ControlChar),
            b'\\' => return Err(PathError::Backslash),
            b'?' | b'#' => return Err(PathError::QueryOrFragment(char::from(b))),
            _ if is_unreserved(b) || is_sub_delim(b) || b == b':' || b == b'@' => {
                out.push(char::from(b));
            }
            // Not allowed raw in a path (space, quotes, brackets, non-ASCII bytes, ...).
            _ => push_escape(out, b),
        }
        i += 1;
    }
    Ok(())
}

fn hex_pair(h: u8, l: u8) -> Option<u8> {
    let hi = char::from(h).to_digit(16)?;
    let lo = char::from(l).to_digit(16)?;
    u8::try_from(hi * 16 + lo).ok()
}

/// Appends `%XX`, upper-case hex.
fn push_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0F)]));
}

fn escaped(b: u8) -> String {
    let mut s = String::with_capacity(3);
    push_escape(&mut s, b);
    s
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

#[cfg(test)]
mod tests;
