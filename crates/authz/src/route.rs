//! Route patterns: parsing, matching against a normalized API path, and overlap checks.
//!
//! A pattern is an API path (without the `/v1` mount) whose segments are literals,
//! `{name}` (exactly one non-empty segment) or, last only, `{name*}` (one or more
//! remaining segments: the proxy tail).

use crate::action::Action;
use crate::normalize::normalize;

/// The outcome of routing a request: which table entry matched and what it captured.
///
/// Captured values are in the path's canonical form (see [`crate::normalize()`]): escapes of
/// unreserved characters are decoded, every other escape is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The action of the matched entry.
    pub action: Action,
    /// The matched entry's path pattern, e.g. `/sandboxes/{sandboxId}`.
    pub pattern: String,
    /// The `{sandboxId}` parameter, when the pattern has one.
    pub sandbox_id: Option<String>,
    /// The `{port}` parameter, when the pattern has one.
    pub port: Option<String>,
    /// The `{name*}` tail, segments joined with `/` (e.g. `a/b`), when the pattern has one.
    pub tail: Option<String>,
    /// Every captured parameter, `(name, value)`, in pattern order (the tail included).
    pub params: Vec<(String, String)>,
}

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    Param(String),
    Tail(String),
}

/// A parsed path pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    text: String,
    segs: Vec<Seg>,
}

impl Pattern {
    /// Parses a pattern; the error says what is wrong with it.
    pub(crate) fn parse(text: &str) -> Result<Pattern, String> {
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| format!("path '{text}' must start with '/'"))?;
        let mut segs = Vec::new();
        if !rest.is_empty() {
            for raw in rest.split('/') {
                if matches!(segs.last(), Some(Seg::Tail(_))) {
                    return Err(format!(
                        "path '{text}': a {{name*}} tail must be the last segment"
                    ));
                }
                segs.push(parse_seg(text, raw)?);
            }
        }
        if let Some(Seg::Lit(first)) = segs.first() {
            if first == "v1" {
                return Err(format!(
                    "path '{text}': write API paths without the /v1 mount; one entry serves both mounts"
                ));
            }
        }
        let mut names: Vec<&str> = Vec::new();
        for seg in &segs {
            if let Seg::Param(n) | Seg::Tail(n) = seg {
                if names.contains(&n.as_str()) {
                    return Err(format!("path '{text}': parameter '{n}' appears twice"));
                }
                names.push(n);
            }
        }
        Ok(Pattern {
            text: text.to_owned(),
            segs,
        })
    }

    /// The pattern as written in the table.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The name of the `{name*}` tail, when the pattern ends with one.
    pub(crate) fn tail_name(&self) -> Option<&str> {
        match self.segs.last() {
            Some(Seg::Tail(n)) => Some(n),
            _ => None,
        }
    }

    /// The pattern with parameter names erased, e.g. `/sandboxes/{}/proxy/{}/{*}`.
    pub(crate) fn shape(&self) -> String {
        let mut s = String::new();
        for seg in &self.segs {
            s.push('/');
            match seg {
                Seg::Lit(l) => s.push_str(l),
                Seg::Param(_) => s.push_str("{}"),
                Seg::Tail(_) => s.push_str("{*}"),
            }
        }
        if s.is_empty() {
            s.push('/');
        }
        s
    }

    /// Matches the segments of an API path. Returns the captures, or `None`.
    pub(crate) fn captures(&self, path: &[&str]) -> Option<Vec<(String, String)>> {
        let mut caps = Vec::new();
        for (i, seg) in self.segs.iter().enumerate() {
            match seg {
                Seg::Lit(l) => {
                    if path.get(i) != Some(&l.as_str()) {
                        return None;
                    }
                }
                Seg::Param(n) => {
                    let v = path.get(i).filter(|v| valid_value(v))?;
                    caps.push((n.clone(), (*v).to_owned()));
                }
                Seg::Tail(n) => {
                    let rest = path.get(i..).filter(|r| !r.is_empty())?;
                    if !rest.iter().all(|v| valid_value(v)) {
                        return None;
                    }
                    caps.push((n.clone(), rest.join("/")));
                    return Some(caps);
                }
            }
        }
        (path.len() == self.segs.len()).then_some(caps)
    }

    /// True when some path matches both patterns.
    pub(crate) fn overlaps(&self, other: &Pattern) -> bool {
        let (a, b) = (self.bounds(), other.bounds());
        let n = a.0.max(b.0);
        if n > a.1 || n > b.1 {
            return false;
        }
        self.segs.iter().zip(&other.segs).all(|pair| match pair {
            (Seg::Lit(x), Seg::Lit(y)) => x == y,
            _ => true,
        })
    }

    /// The least and greatest number of path segments the pattern matches.
    fn bounds(&self) -> (usize, usize) {
        match self.segs.last() {
            Some(Seg::Tail(_)) => (self.segs.len(), usize::MAX),
            _ => (self.segs.len(), self.segs.len()),
        }
    }
}

/// Splits a normalized API path into segments: `/` has none.
pub(crate) fn split_path(api_path: &str) -> Vec<&str> {
    match api_path.strip_prefix('/') {
        Some("") | None => Vec::new(),
        Some(rest) => rest.split('/').collect(),
    }
}

/// A parameter value: one non-empty segment (never a `/`, never a dot segment).
fn valid_value(v: &str) -> bool {
    !v.is_empty() && v != "." && v != ".." && !v.contains('/')
}

fn parse_seg(text: &str, raw: &str) -> Result<Seg, String> {
    if let Some(inner) = raw.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        let (name, tail) = match inner.strip_suffix('*') {
            Some(n) => (n, true),
            None => (inner, false),
        };
        if !valid_name(name) {
            return Err(format!(
                "path '{text}': bad parameter '{raw}' (use {{name}} or {{name*}}, name of letters, digits, '_')"
            ));
        }
        return Ok(if tail {
            Seg::Tail(name.to_owned())
        } else {
            Seg::Param(name.to_owned())
        });
    }
    let canonical = normalize(&format!("/{raw}")).map(|p| p.path);
    if raw.is_empty() || raw == "." || raw == ".." || canonical.as_deref() != Ok(&format!("/{raw}"))
    {
        return Err(format!(
            "path '{text}': segment '{raw}' is not a canonical path segment (no empty, '.', '..', braces or non-canonical escapes)"
        ));
    }
    Ok(Seg::Lit(raw.to_owned()))
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests;
