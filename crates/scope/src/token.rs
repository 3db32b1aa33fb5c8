//! Canonical, label-safe tokens for owner and team identities.
//!
//! `canonical(raw)` = a readable slug of `raw` (lowercase ASCII letters, digits and `-`, at
//! most 36 characters) + `.` + 21 base32hex characters of SHA-256(`raw`). The slug helps a
//! human; the digest (104 bits) makes tokens of different identities differ, including
//! identities whose slugs coincide (`Alice`, `alice`, `a.lice`). The result always matches
//! the Kubernetes label-value rule and is at most 58 characters.

use data_encoding::BASE32HEX_NOPAD;
use sha2::{Digest, Sha256};

const SLUG_MAX: usize = 36;

/// The label-safe token of an identity.
pub fn canonical(raw: &str) -> String {
    let digest = Sha256::digest(raw.as_bytes());
    let hash = BASE32HEX_NOPAD.encode(&digest[..13]).to_ascii_lowercase();
    let mut slug = String::with_capacity(SLUG_MAX);
    let mut dash = false;
    for c in raw.chars() {
        if slug.len() >= SLUG_MAX {
            break;
        }
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
            dash = false;
        } else if !slug.is_empty() && !dash {
            slug.push('-');
            dash = true;
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        hash
    } else {
        format!("{slug}.{hash}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_lifecycle::validate::is_label_value;
    use proptest::prelude::*;

    #[test]
    fn readable_and_distinct() {
        let a = canonical("alice@example.com");
        assert!(a.starts_with("alice-example-com."), "{a}");
        assert_ne!(canonical("Alice"), canonical("alice"));
        assert_ne!(canonical("a.lice"), canonical("a-lice"));
        assert_eq!(canonical("alice"), canonical("alice"));
        assert!(is_label_value(&canonical("李")));
    }

    proptest! {
        #[test]
        fn always_label_safe(raw in "\\PC{0,300}") {
            let t = canonical(&raw);
            prop_assert!(is_label_value(&t) && !t.is_empty() && t.len() <= 58, "{}", t);
        }

        #[test]
        fn different_identities_get_different_tokens(a in "\\PC{0,40}", b in "\\PC{0,40}") {
            prop_assume!(a != b);
            prop_assert_ne!(canonical(&a), canonical(&b));
        }
    }
}
