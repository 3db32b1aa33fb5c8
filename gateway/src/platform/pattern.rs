//! Allowlist patterns of `[[platform.controllers]]`: a literal, or a literal with `*`
//! wildcards (each matches any run of characters, the empty one included), e.g.
//! `tenant-*`, `*-creds`, `*`.

/// Whether `value` matches `pattern`.
pub fn matches(pattern: &str, value: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return false;
    };
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole value must be the literal.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Whether any of `patterns` matches `value`.
pub fn any(patterns: &[String], value: &str) -> bool {
    patterns.iter().any(|p| matches(p, value))
}

/// `allowed: a, b` or `none are allowed`, for error messages.
pub fn listed(patterns: &[String]) -> String {
    if patterns.is_empty() {
        "none are allowed".into()
    } else {
        format!("allowed: {}", patterns.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_wildcards() {
        assert!(matches("team-a", "team-a"));
        assert!(!matches("team-a", "team-ab"));
        assert!(!matches("team-a", "xteam-a"));
        assert!(matches("tenant-*", "tenant-"));
        assert!(matches("tenant-*", "tenant-42"));
        assert!(!matches("tenant-*", "tenant"));
        assert!(!matches("tenant-*", "kube-system"));
        assert!(matches("*-creds", "a-creds"));
        assert!(!matches("*-creds", "a-creds-x"));
        assert!(matches("a*b*c", "abc"));
        assert!(matches("a*b*c", "a-b-b-c"));
        assert!(!matches("a*b*c", "ac"));
        assert!(
            !matches("ab*ba", "aba"),
            "the prefix and suffix may not overlap"
        );
        assert!(matches("*", ""));
        assert!(matches("*", "anything"));
        assert!(any(&["x".into(), "y*".into()], "yes"));
        assert!(!any(&[], "x"));
        assert_eq!(listed(&[]), "none are allowed");
        assert_eq!(listed(&["a".into(), "b*".into()]), "allowed: a, b*");
    }
}
