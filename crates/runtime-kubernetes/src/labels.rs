//! What the driver writes on each sandbox pod, and how a pod is read back.
//!
//! Labels (selectable): user metadata, `opensandbox.io/id`, managed-by and instance.
//! Annotations (timestamps are not valid label values): created-at, expires-at, or
//! manual-cleanup when the sandbox has no expiry.

use chrono::{DateTime, Utc};
use gatehouse_lifecycle::validate::RESERVED_PREFIX;
use gatehouse_lifecycle::{SandboxSpec, StringMap};
use std::collections::BTreeMap;

pub use gatehouse_lifecycle::wire::labels::{
    CREATED_AT, EXPIRES_AT, ID, INSTANCE, MANAGED_BY, MANAGED_BY_VALUE, MANUAL_CLEANUP,
};

/// The label selector matching every pod this driver instance manages.
pub fn managed_selector(instance: &str) -> String {
    format!("{MANAGED_BY}={MANAGED_BY_VALUE},{INSTANCE}={instance}")
}

/// The labels of the pod of `spec`: user metadata plus the reserved ones (which win).
pub fn for_spec(spec: &SandboxSpec, instance: &str) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = spec
        .metadata
        .iter()
        .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(ID.into(), spec.id.clone());
    labels.insert(MANAGED_BY.into(), MANAGED_BY_VALUE.into());
    labels.insert(INSTANCE.into(), instance.into());
    labels
}

/// The annotations of the pod of `spec`: creation time and expiry.
pub fn annotations(spec: &SandboxSpec) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert(
        CREATED_AT.into(),
        gatehouse_lifecycle::time::format(&spec.created_at),
    );
    match &spec.expires_at {
        Some(t) => a.insert(EXPIRES_AT.into(), gatehouse_lifecycle::time::format(t)),
        None => a.insert(MANUAL_CLEANUP.into(), "true".into()),
    };
    a
}

/// User metadata of a pod: its labels minus the reserved keys.
pub fn metadata(labels: &BTreeMap<String, String>) -> StringMap {
    labels
        .iter()
        .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A timestamp annotation, if present and well-formed.
pub fn timestamp(annotations: &BTreeMap<String, String>, key: &str) -> Option<DateTime<Utc>> {
    annotations
        .get(key)
        .and_then(|v| gatehouse_lifecycle::time::parse(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_lifecycle::validate::Resources;

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
    fn labels_and_annotations() {
        let l = for_spec(&spec(true), "i1");
        assert_eq!(l[ID], "abc");
        assert_eq!(l[INSTANCE], "i1");
        assert_eq!(l["team"], "core");
        assert_eq!(
            metadata(&l),
            BTreeMap::from([("team".into(), "core".into())])
        );
        let a = annotations(&spec(true));
        assert_eq!(a[EXPIRES_AT], "2025-01-02T04:04:05.000000Z");
        assert_eq!(timestamp(&a, CREATED_AT), Some(spec(true).created_at));
        let a = annotations(&spec(false));
        assert_eq!(a[MANUAL_CLEANUP], "true");
        assert_eq!(timestamp(&a, EXPIRES_AT), None);
        assert_eq!(
            managed_selector("i1"),
            "opensandbox.io/managed-by=gatehouse-backend,opensandbox.io/instance=i1"
        );
    }
}
