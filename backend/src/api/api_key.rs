//! [`ApiKey`]: the key clients must send, replaceable while the server runs (`SIGHUP`
//! re-reads the configuration and swaps a changed key in; requests in flight keep the
//! one they were checked against).

use arc_swap::ArcSwapOption;
use std::sync::Arc;

/// The backend's API key; clones share it. `None` only in explicit insecure mode.
#[derive(Clone, Default)]
pub struct ApiKey(Arc<ArcSwapOption<String>>);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.load().is_some() {
            "ApiKey(<redacted>)"
        } else {
            "ApiKey(none)"
        })
    }
}

/// What [`ApiKey::replace`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    /// The new key is in force.
    Changed,
    /// The key was already this one.
    Unchanged,
    /// The new configuration has no key: the running one stays (a server started with
    /// a key never stops requiring one).
    KeptRunning,
}

impl ApiKey {
    /// A key (or none, in insecure mode).
    pub fn new(key: Option<String>) -> Self {
        Self(Arc::new(ArcSwapOption::from_pointee(key)))
    }

    /// The key in force now.
    pub fn load(&self) -> arc_swap::Guard<Option<Arc<String>>> {
        self.0.load()
    }

    /// Puts `key` in force, unless it would drop the key a running server requires.
    pub fn replace(&self, key: Option<String>) -> Replaced {
        let current = self.0.load();
        match (current.as_deref(), key) {
            (Some(_), None) => Replaced::KeptRunning,
            (Some(old), Some(new)) if *old == new => Replaced::Unchanged,
            (None, None) => Replaced::Unchanged,
            (_, Some(new)) => {
                self.0.store(Some(Arc::new(new)));
                Replaced::Changed
            }
        }
    }
}

impl From<Option<String>> for ApiKey {
    fn from(key: Option<String>) -> Self {
        Self::new(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_a_changed_key_and_never_drops_one() {
        let k = ApiKey::new(Some("old".into()));
        let shared = k.clone();
        assert_eq!(k.replace(Some("old".into())), Replaced::Unchanged);
        assert_eq!(k.replace(Some("new".into())), Replaced::Changed);
        assert_eq!(shared.load().as_deref().map(String::as_str), Some("new"));
        assert_eq!(k.replace(None), Replaced::KeptRunning);
        assert_eq!(shared.load().as_deref().map(String::as_str), Some("new"));
        assert_eq!(format!("{k:?}"), "ApiKey(<redacted>)");
    }
}
