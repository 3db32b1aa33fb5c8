//! Server-side validation rules, as the upstream server applies them.
//!
//! Every function returns an [`ApiError`] with status 400 and the upstream code, so the
//! API layer only has to pass it on.

use crate::error::{codes, ApiError};
use crate::model::PlatformSpec;
use std::collections::BTreeMap;

/// Metadata keys under this prefix belong to the system.
pub use crate::wire::labels::RESERVED_PREFIX;

/// Longest label name or value (Kubernetes).
const MAX_LABEL: usize = 63;
/// Longest DNS subdomain prefix of a label key (Kubernetes).
const MAX_PREFIX: usize = 253;

fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters.
pub fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LABEL
        && is_alnum(b[0])
        && is_alnum(b[b.len() - 1])
        && b.iter()
            .all(|&c| is_alnum(c) || matches!(c, b'-' | b'_' | b'.'))
}

/// A label value: empty, or a label name.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_label_name(s)
}

/// A lowercase RFC 1123 DNS label (namespaces, ServiceAccount names): the one check the
/// backend's Kubernetes driver and the gateway's platform config share.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LABEL
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// A lowercase RFC 1123 DNS subdomain of at most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= MAX_PREFIX && s.split('.').all(is_dns_label)
}

/// A label key: `name` or `prefix/name` with a DNS-subdomain prefix.
pub fn is_label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(key),
    }
}

/// Checks one metadata entry: reserved prefix first, then the label rules.
pub fn metadata_entry(key: &str, value: &str) -> Result<(), ApiError> {
    if key.starts_with(RESERVED_PREFIX) {
        return Err(ApiError::bad_request(
            codes::INVALID_METADATA_LABEL,
            format!(
                "Metadata key '{key}' uses the reserved prefix '{RESERVED_PREFIX}'. \
                 Keys under this prefix are managed by the system and cannot be set via metadata."
            ),
        ));
    }
    if !is_label_key(key) {
        return Err(ApiError::bad_request(
            codes::INVALID_METADATA_LABEL,
            format!(
                "Metadata key '{key}' is invalid: must be either a name or a DNS-subdomain prefix \
                 and name separated by /, where the name is up to 63 characters and matches \
                 [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, and the optional prefix is a valid DNS \
                 subdomain up to 253 characters."
            ),
        ));
    }
    if !is_label_value(value) {
        return Err(ApiError::bad_request(
            codes::INVALID_METADATA_LABEL,
            format!(
                "Metadata value '{value}' for key '{key}' is invalid: must be 63 characters or \
                 less, start/end with an alphanumeric character, and contain only alphanumeric, \
                 '-', '_', or '.' characters."
            ),
        ));
    }
    Ok(())
}

/// Checks every entry of a metadata map.
pub fn metadata<'a, I>(entries: I) -> Result<(), ApiError>
where
    I: IntoIterator<Item = (&'a String, &'a String)>,
{
    entries
        .into_iter()
        .try_for_each(|(k, v)| metadata_entry(k, v))
}

/// Timeout bounds from the server configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutLimits {
    /// Smallest accepted timeout in seconds (upstream: 60).
    pub min_seconds: i64,
    /// Largest accepted timeout in seconds; `None` for no cap.
    pub max_seconds: Option<i64>,
}

impl Default for TimeoutLimits {
    fn default() -> Self {
        Self {
            min_seconds: 60,
            max_seconds: None,
        }
    }
}

/// Checks a create timeout; `None` means no expiry and is always accepted.
pub fn timeout(seconds: Option<i64>, limits: TimeoutLimits) -> Result<(), ApiError> {
    let Some(t) = seconds else { return Ok(()) };
    if t < limits.min_seconds {
        return Err(ApiError::invalid(format!(
            "Sandbox timeout {t}s is below the minimum of {}s.",
            limits.min_seconds
        )));
    }
    if let Some(max) = limits.max_seconds {
        if t > max {
            return Err(ApiError::invalid(format!(
                "Sandbox timeout {t}s exceeds configured maximum of {max}s."
            )));
        }
    }
    // Ten thousand years is far beyond any sane TTL and keeps timestamps representable.
    if t > 315_576_000_000 {
        return Err(ApiError::invalid(format!(
            "Sandbox timeout {t}s is too large to represent safely."
        )));
    }
    Ok(())
}

/// Checks an entrypoint: at least one element, a non-empty command.
pub fn entrypoint(ep: &[String]) -> Result<(), ApiError> {
    match ep.first() {
        Some(cmd) if !cmd.trim().is_empty() => Ok(()),
        _ => Err(ApiError::bad_request(
            codes::INVALID_ENTRYPOINT,
            "Entrypoint must contain at least one command.",
        )),
    }
}

/// Checks a platform constraint and returns it normalized to lowercase.
pub fn platform(p: &PlatformSpec) -> Result<PlatformSpec, ApiError> {
    let os = p.os.trim().to_ascii_lowercase();
    let arch = p.arch.trim().to_ascii_lowercase();
    if !matches!(os.as_str(), "linux" | "windows") {
        return Err(ApiError::invalid(format!(
            "Unsupported platform.os '{}'. Supported values: ['linux', 'windows'].",
            p.os
        )));
    }
    if !matches!(arch.as_str(), "amd64" | "arm64") {
        return Err(ApiError::invalid(format!(
            "Unsupported platform.arch '{}'. Supported values: ['amd64', 'arm64'].",
            p.arch
        )));
    }
    Ok(PlatformSpec { os, arch })
}

/// Checks environment variable names: non-empty, no `=` and no NUL.
pub fn env(env: &BTreeMap<String, Option<String>>) -> Result<(), ApiError> {
    for (k, v) in env {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            return Err(ApiError::invalid(format!(
                "Environment variable name '{k}' is invalid: it must be non-empty and contain \
                 neither '=' nor NUL."
            )));
        }
        if v.as_deref().is_some_and(|v| v.contains('\0')) {
            return Err(ApiError::invalid(format!(
                "Environment variable '{k}' has a value containing NUL."
            )));
        }
    }
    Ok(())
}

/// Parses a Kubernetes CPU quantity (`"500m"`, `"0.5"`, `"2"`) into nano-CPUs.
pub fn cpu_nanos(q: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::invalid(format!(
            "resourceLimits.cpu '{q}' is invalid: use cores (\"1\", \"0.5\") or millicores (\"500m\")."
        ))
    };
    let s = q.trim();
    let (num, scale) = match s.strip_suffix('m') {
        Some(n) => (n, 1_000_000.0),
        None => (s, 1_000_000_000.0),
    };
    if num.is_empty() || !num.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        return Err(bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    let nanos = v * scale;
    if !nanos.is_finite() || !(1_000_000.0..=1e15).contains(&nanos) {
        return Err(bad());
    }
    Ok(nanos as i64)
}

/// Parses a Kubernetes memory quantity (`"512Mi"`, `"1Gi"`, `"1G"`, `"1048576"`) into bytes.
pub fn memory_bytes(q: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::invalid(format!(
            "resourceLimits.memory '{q}' is invalid: use bytes or a suffix Ki, Mi, Gi, Ti, k, M, G, T \
             (e.g. \"512Mi\"), at least 6Mi."
        ))
    };
    let s = q.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" | "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    if num.is_empty() {
        return Err(bad());
    }
    let v: f64 = num.parse().map_err(|_| bad())?;
    let bytes = v * mult;
    // Docker refuses containers with less than 6 MiB.
    if !bytes.is_finite() || !(6.0 * 1024.0 * 1024.0..=9.0e18).contains(&bytes) {
        return Err(bad());
    }
    Ok(bytes as i64)
}

/// Resource caps ready for a runtime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU limit in nano-CPUs.
    pub nano_cpus: Option<i64>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<i64>,
}

/// Parses `resourceLimits`; unknown resource names are rejected rather than ignored.
pub fn resources(limits: &BTreeMap<String, String>) -> Result<Resources, ApiError> {
    let mut r = Resources::default();
    for (k, v) in limits {
        match k.as_str() {
            "cpu" => r.nano_cpus = Some(cpu_nanos(v)?),
            "memory" => r.memory_bytes = Some(memory_bytes(v)?),
            other => {
                return Err(ApiError::invalid(format!(
                "resourceLimits.{other} is not supported by this runtime; supported: cpu, memory."
            )))
            }
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn label_keys() {
        assert!(is_label_key("team"));
        assert!(is_label_key("example.com/team"));
        assert!(is_label_key("a.b-c_d"));
        assert!(!is_label_key("-team"));
        assert!(!is_label_key("team-"));
        assert!(!is_label_key("Example.com/team"));
        assert!(!is_label_key("/team"));
        assert!(!is_label_key("a/"));
        assert!(!is_label_key(&"a".repeat(64)));
        assert!(!is_label_key("has space"));
    }

    #[test]
    fn reserved_prefix_is_rejected_first() {
        let e = metadata_entry("opensandbox.io/owner", "x").unwrap_err();
        assert_eq!(e.code, codes::INVALID_METADATA_LABEL);
        assert!(e.message.contains("reserved"));
    }

    #[test]
    fn values() {
        assert!(is_label_value(""));
        assert!(is_label_value("v1.2_3-x"));
        assert!(!is_label_value("a b"));
        assert!(!is_label_value(&"v".repeat(64)));
    }

    #[test]
    fn timeouts() {
        let l = TimeoutLimits {
            min_seconds: 60,
            max_seconds: Some(3600),
        };
        assert!(timeout(None, l).is_ok());
        assert!(timeout(Some(60), l).is_ok());
        assert!(timeout(Some(59), l).is_err());
        assert!(timeout(Some(3601), l).is_err());
        assert!(timeout(Some(-1), l).is_err());
    }

    #[test]
    fn quantities() {
        assert_eq!(cpu_nanos("500m").unwrap(), 500_000_000);
        assert_eq!(cpu_nanos("2").unwrap(), 2_000_000_000);
        assert_eq!(cpu_nanos("0.25").unwrap(), 250_000_000);
        assert!(cpu_nanos("-1").is_err());
        assert!(cpu_nanos("lots").is_err());
        assert!(cpu_nanos("0").is_err());
        assert_eq!(memory_bytes("512Mi").unwrap(), 512 * 1024 * 1024);
        assert_eq!(memory_bytes("1G").unwrap(), 1_000_000_000);
        assert!(memory_bytes("512MB").is_err());
        assert!(memory_bytes("1Ki").is_err());
        assert!(memory_bytes("").is_err());
    }

    #[test]
    fn unknown_resources_are_rejected() {
        let m = BTreeMap::from([("gpu".to_string(), "1".to_string())]);
        assert!(resources(&m).is_err());
    }

    proptest! {
        #[test]
        fn valid_keys_are_accepted(name in "[a-z0-9]([a-z0-9._-]{0,20}[a-z0-9])?") {
            prop_assert!(is_label_key(&name));
        }

        #[test]
        fn label_checks_never_panic(s in "\\PC{0,80}") {
            let _ = is_label_key(&s);
            let _ = is_label_value(&s);
            let _ = cpu_nanos(&s);
            let _ = memory_bytes(&s);
        }
    }
}
