//! Container labels: what the driver writes on each sandbox container and how user
//! metadata is recovered from them.
//!
//! Docker merges the image's labels into the container's, so recovering metadata drops
//! every reserved (`opensandbox.io/`) key and every label whose key and value come from
//! the image.

use chrono::{DateTime, Utc};
use gatehouse_lifecycle::validate::RESERVED_PREFIX;
use gatehouse_lifecycle::{SandboxSpec, StringMap};
use std::collections::HashMap;

pub use gatehouse_lifecycle::wire::labels::{
    CREATED_AT, EXPIRES_AT, ID, INSTANCE, MANAGED_BY, MANAGED_BY_VALUE, MANUAL_CLEANUP,
};

/// The label filters selecting every container this driver instance manages.
pub fn managed_filter(instance: &str) -> Vec<String> {
    vec![
        format!("{MANAGED_BY}={MANAGED_BY_VALUE}"),
        format!("{INSTANCE}={instance}"),
    ]
}

/// Every label to write on the container of `spec`: user metadata plus the reserved ones
/// (which win over any metadata key of the same name).
pub fn for_spec(spec: &SandboxSpec, instance: &str) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = spec
        .metadata
        .iter()
        .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(ID.into(), spec.id.clone());
    labels.insert(MANAGED_BY.into(), MANAGED_BY_VALUE.into());
    labels.insert(INSTANCE.into(), instance.into());
    labels.insert(
        CREATED_AT.into(),
        gatehouse_lifecycle::time::format(&spec.created_at),
    );
    match &spec.expires_at {
        Some(t) => {
            labels.insert(EXPIRES_AT.into(), gatehouse_lifecycle::time::format(t));
        }
        None => {
            labels.insert(MANUAL_CLEANUP.into(), "true".into());
        }
    }
    labels
}

/// User metadata of a container: its labels minus reserved keys minus labels inherited
/// from the image (same key and same value as the image's label).
pub fn metadata(container: &HashMap<String, String>, image: &HashMap<String, String>) -> StringMap {
    container
        .iter()
        .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX))
        .filter(|(k, v)| image.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A timestamp label, if present and well-formed.
pub fn timestamp(labels: &HashMap<String, String>, key: &str) -> Option<DateTime<Utc>> {
    labels
        .get(key)
        .and_then(|v| gatehouse_lifecycle::time::parse(v).ok())
}

/// Whether a container's labels say it is the sandbox `id` managed by this driver instance.
pub fn is_managed(labels: &HashMap<String, String>, id: &str, instance: &str) -> bool {
    labels.get(ID).map(String::as_str) == Some(id)
        && labels.get(MANAGED_BY).map(String::as_str) == Some(MANAGED_BY_VALUE)
        && labels.get(INSTANCE).map(String::as_str) == Some(instance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_lifecycle::validate::Resources;
    use std::collections::BTreeMap;

    fn spec(expires: bool) -> SandboxSpec {
        let created = gatehouse_lifecycle::time::parse("2025-01-02T03:04:05Z").unwrap();
        SandboxSpec {
            id: "abc".into(),
            image: "img".into(),
            image_auth: None,
            entrypoint: vec!["sh".into()],
            env: BTreeMap::new(),
            metadata: BTreeMap::from([
                ("team".to_string(), "core".to_string()),
                ("opensandbox.io/id".to_string(), "spoofed".to_string()),
            ]),
            resources: Resources::default(),
            expires_at: expires.then(|| created + chrono::Duration::hours(1)),
            created_at: created,
            platform: None,
            extensions: Default::default(),
            execd_token: None,
        }
    }

    #[test]
    fn writes_reserved_and_user_labels() {
        let l = for_spec(&spec(true), "default");
        assert_eq!(l[ID], "abc");
        assert_eq!(l[MANAGED_BY], MANAGED_BY_VALUE);
        assert_eq!(l[CREATED_AT], "2025-01-02T03:04:05.000000Z");
        assert_eq!(l[EXPIRES_AT], "2025-01-02T04:04:05.000000Z");
        assert!(!l.contains_key(MANUAL_CLEANUP));
        assert_eq!(l["team"], "core");
        assert!(is_managed(&l, "abc", "default"));
        assert!(!is_managed(&l, "other", "default"));
    }

    #[test]
    fn manual_cleanup_without_expiry() {
        let l = for_spec(&spec(false), "default");
        assert_eq!(l[MANUAL_CLEANUP], "true");
        assert!(!l.contains_key(EXPIRES_AT));
        assert_eq!(timestamp(&l, CREATED_AT), Some(spec(false).created_at));
        assert_eq!(timestamp(&l, EXPIRES_AT), None);
    }

    #[test]
    fn metadata_round_trip_excludes_reserved_and_image_labels() {
        let mut container = for_spec(&spec(true), "default");
        container.insert("org.gatehouse.image".into(), "busybox".into());
        container.insert("maintainer".into(), "someone-else".into());
        let image = HashMap::from([
            ("org.gatehouse.image".to_string(), "busybox".to_string()),
            ("maintainer".to_string(), "image-author".to_string()),
        ]);
        let md = metadata(&container, &image);
        assert_eq!(
            md,
            BTreeMap::from([
                ("team".to_string(), "core".to_string()),
                // Same key as the image but another value: set by the user, kept.
                ("maintainer".to_string(), "someone-else".to_string()),
            ])
        );
    }

    #[test]
    fn metadata_without_image_labels() {
        let container = HashMap::from([
            ("a".to_string(), "1".to_string()),
            (ID.to_string(), "x".to_string()),
        ]);
        assert_eq!(
            metadata(&container, &HashMap::new()),
            BTreeMap::from([("a".into(), "1".into())])
        );
    }
}
