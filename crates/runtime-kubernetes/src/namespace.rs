//! Per-tenant namespaces: `namespace_template` (e.g. `sandbox-{team}`) resolved from the
//! reserved scope metadata the gateway writes (`access.team`, `access.owner`), always
//! within the configured allowlist.

use crate::config::is_dns_label;
use gatehouse_lifecycle::StringMap;

/// Metadata key holding the caller's team token (set by the gateway's scope step).
pub const TEAM_KEY: &str = "access.team";
/// Metadata key holding the caller's owner token.
pub const OWNER_KEY: &str = "access.owner";

/// The placeholders a template may use, with the metadata key each reads.
const PLACEHOLDERS: [(&str, &str); 2] = [("{team}", TEAM_KEY), ("{owner}", OWNER_KEY)];

/// Checks a template: only `{team}` / `{owner}` placeholders, at least one of them, and a
/// DNS-1123 label once filled in.
pub fn check_template(t: &str) -> Result<(), String> {
    let mut rest = t.to_string();
    let mut used = false;
    for (ph, _) in PLACEHOLDERS {
        if rest.contains(ph) {
            used = true;
            rest = rest.replace(ph, "x");
        }
    }
    if !used {
        return Err(format!("\"{t}\" must use {{team}} or {{owner}}"));
    }
    if rest.contains(['{', '}']) {
        return Err(format!(
            "\"{t}\" has an unknown placeholder (only {{team}} and {{owner}} exist)"
        ));
    }
    if !is_dns_label(&rest) {
        return Err(format!(
            "\"{t}\" must give a DNS-1123 label (lower-case letters, digits, '-')"
        ));
    }
    Ok(())
}

/// A metadata value made safe for a namespace name: lower-cased, every other character
/// than `[a-z0-9-]` turned into `-`, dashes trimmed.
pub fn sanitize(v: &str) -> String {
    let s: String = v
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.trim_matches('-').to_string()
}

/// The namespace `template` names for `metadata`: `None` when a placeholder's key is
/// missing (the sandbox then goes to the default namespace).
pub fn resolve(template: &str, metadata: &StringMap) -> Option<String> {
    let mut out = template.to_string();
    for (ph, key) in PLACEHOLDERS {
        if out.contains(ph) {
            let v = sanitize(metadata.get(key)?);
            if v.is_empty() {
                return None;
            }
            out = out.replace(ph, &v);
        }
    }
    let out = out.trim_matches('-');
    Some(
        out.chars()
            .take(63)
            .collect::<String>()
            .trim_end_matches('-')
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn templates() {
        assert!(check_template("sandbox-{team}").is_ok());
        assert!(check_template("{owner}-{team}").is_ok());
        assert!(check_template("fixed").is_err());
        assert!(check_template("sandbox-{tenant}").is_err());
        assert!(check_template("Sandbox-{team}").is_err());
    }

    #[test]
    fn resolution() {
        let md = BTreeMap::from([(TEAM_KEY.to_string(), "Core.4KQ7ab".to_string())]);
        assert_eq!(
            resolve("sandbox-{team}", &md).as_deref(),
            Some("sandbox-core-4kq7ab")
        );
        assert_eq!(resolve("sandbox-{owner}", &md), None);
        let long = BTreeMap::from([(TEAM_KEY.to_string(), "a".repeat(80))]);
        assert_eq!(resolve("sandbox-{team}", &long).map(|s| s.len()), Some(63));
    }
}
