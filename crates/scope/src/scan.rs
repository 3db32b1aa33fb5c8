//! The allocation-free list check: does every item of a list response carry the caller's
//! scope pair? A streaming serde visitor walks `items[].metadata` and skips everything
//! else, so the usual case (the backend filtered, every item is in scope) costs one pass
//! over the bytes and the body is forwarded unchanged.
//!
//! The check is strict: anything unusual (a duplicated `items`, `metadata` or scope key, a
//! non-string value, an item without metadata, trailing bytes) answers `false`, and the
//! caller falls back to [`crate::body::filter_list`], which parses, drops and re-serializes.
//! So `true` always means "no item is out of scope". What the scan skips it does not
//! validate (the `scope_list` fuzz target found these): invalid UTF-8 or raw control
//! characters in strings, lone surrogate escapes, out-of-range numbers. None of them can
//! change the JSON structure, so the scan's answer stands and the body is forwarded as the
//! backend sent it, though the strict `filter_list` would refuse such a body.

use crate::{Scope, ScopeKeys};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// True when `body` is a JSON object whose one `items` array holds only sandboxes whose
/// metadata maps the scope key to the caller's scope value, exactly once.
pub fn all_in_scope(body: &[u8], scope: &Scope, keys: &ScopeKeys) -> bool {
    let (key, value) = scope.filter_pair(keys);
    let mut de = serde_json::Deserializer::from_slice(body);
    matches!(List { key, value }.deserialize(&mut de), Ok(true)) && de.end().is_ok()
}

/// True when `body` is one sandbox (a JSON object) whose one `metadata` object maps the
/// scope key to the caller's scope value, exactly once: the allocation-free check of a
/// sandbox read, as strict as [`all_in_scope`] (`false` means "look closer", and the
/// caller parses the body in full).
pub fn sandbox_in_scope(body: &[u8], scope: &Scope, keys: &ScopeKeys) -> bool {
    let (key, value) = scope.filter_pair(keys);
    let mut de = serde_json::Deserializer::from_slice(body);
    matches!(Item(List { key, value }).deserialize(&mut de), Ok(true)) && de.end().is_ok()
}

#[derive(Clone, Copy)]
struct List<'s> {
    key: &'s str,
    value: &'s str,
}

/// A string compared with `want` without allocating (escapes are decoded by serde_json
/// into its scratch buffer, which is reused).
#[derive(Clone, Copy)]
struct StrIs<'s>(&'s str);

impl<'de> DeserializeSeed<'de> for StrIs<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StrIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

/// A map key compared with `want`. Keys are read as bytes: serde_json decodes escapes but
/// skips the UTF-8 validation, which is a tenth of the scan's time, and a key that is not
/// valid UTF-8 cannot equal `want` anyway.
#[derive(Clone, Copy)]
struct KeyIs<'s>(&'s str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<bool, E> {
        Ok(v == self.0.as_bytes())
    }
    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

/// Walks a map, handing the value of the one entry named `want` to `seed` and skipping
/// the rest. `None`: the entry is missing or duplicated.
fn one_entry<'de, A, S>(mut m: A, want: &str, seed: S) -> Result<Option<bool>, A::Error>
where
    A: MapAccess<'de>,
    S: DeserializeSeed<'de, Value = bool> + Copy,
{
    let mut found = None;
    while let Some(hit) = m.next_key_seed(KeyIs(want))? {
        if !hit {
            m.next_value::<IgnoredAny>()?;
        } else if found.is_some() {
            // A duplicated key: parsers disagree on which one wins. Not our fast path (the
            // entries left unread make the outer parse fail, which also means `false`).
            return Ok(None);
        } else {
            found = Some(m.next_value_seed(seed)?);
        }
    }
    Ok(found)
}

impl<'de> DeserializeSeed<'de> for List<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for List<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list response")
    }
    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<bool, A::Error> {
        Ok(one_entry(m, "items", Items(self))? == Some(true))
    }
}

#[derive(Clone, Copy)]
struct Items<'s>(List<'s>);

impl<'de> DeserializeSeed<'de> for Items<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Items<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of sandboxes")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<bool, A::Error> {
        let mut all = true;
        while let Some(ok) = s.next_element_seed(Item(self.0))? {
            all &= ok;
        }
        Ok(all)
    }
}

#[derive(Clone, Copy)]
struct Item<'s>(List<'s>);

impl<'de> DeserializeSeed<'de> for Item<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Item<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sandbox")
    }
    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<bool, A::Error> {
        Ok(one_entry(m, "metadata", Metadata(self.0))? == Some(true))
    }
}

#[derive(Clone, Copy)]
struct Metadata<'s>(List<'s>);

impl<'de> DeserializeSeed<'de> for Metadata<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Metadata<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a metadata object")
    }
    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<bool, A::Error> {
        Ok(one_entry(m, self.0.key, StrIs(self.0.value))? == Some(true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::filter_list;
    use crate::ScopeMode;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn alice() -> Scope {
        Scope::for_principal("alice", Some("team-a"), ScopeMode::Team)
    }

    fn team() -> String {
        alice().team.unwrap_or_default()
    }

    fn check(body: &str) -> bool {
        all_in_scope(body.as_bytes(), &alice(), &ScopeKeys::default())
    }

    #[test]
    fn in_scope_lists_pass() {
        let t = team();
        assert!(check(&format!(
            r#"{{"items":[{{"id":"1","metadata":{{"a":"b","access.team":"{t}"}}}},{{"metadata":{{"access.team":"{t}"}},"status":{{"state":"Running"}}}}],"pagination":{{"totalItems":2}}}}"#
        )));
        assert!(check(r#"{"items":[],"pagination":{}}"#));
        // Escapes are decoded before comparing.
        let escaped = t.replace('-', "\\u002d");
        assert!(check(&format!(
            r#"{{"items":[{{"metadata":{{"access\u002eteam":"{escaped}"}}}}]}}"#
        )));
    }

    #[test]
    fn anything_unusual_falls_back() {
        let t = team();
        for body in [
            r#"{"items":[{"metadata":{"access.team":"other"}}]}"#.to_string(),
            r#"{"items":[{"id":"no metadata"}]}"#.to_string(),
            r#"{"items":[{"metadata":null}]}"#.to_string(),
            r#"{"items":[{"metadata":{"access.team":7}}]}"#.to_string(),
            format!(r#"{{"items":[{{"metadata":{{"access.team":"{t}","access.team":"x"}}}}]}}"#),
            format!(
                r#"{{"items":[{{"metadata":{{"access.team":"{t}"}},"metadata":{{"access.team":"x"}}}}]}}"#
            ),
            format!(
                r#"{{"items":[{{"metadata":{{"access.team":"x"}}}}],"items":[{{"metadata":{{"access.team":"{t}"}}}}]}}"#
            ),
            format!(r#"{{"items":[{{"metadata":{{"access.team":"{t}"}}}}]}} trailing"#),
            r#"{"items":{}}"#.to_string(),
            r#"{"pagination":{}}"#.to_string(),
            format!(r#"[{{"metadata":{{"access.team":"{t}"}}}}]"#),
            format!(r#"{{"items":[{{"metadata":{{"access.team":"{t}"}}}}"#),
            String::new(),
        ] {
            assert!(!check(&body), "{body}");
        }
    }

    fn item() -> impl Strategy<Value = Value> {
        let t = team();
        let value = prop_oneof![
            Just(json!(t)),
            Just(json!("other")),
            Just(json!(7)),
            Just(Value::Null)
        ];
        let metadata = prop_oneof![
            Just(None),
            proptest::collection::btree_map("[a-z.]{1,12}", "[a-z]{0,4}", 0..3).prop_flat_map(
                move |m| {
                    (Just(m), proptest::option::of(value.clone())).prop_map(|(m, v)| {
                        let mut o: serde_json::Map<String, Value> =
                            m.into_iter().map(|(k, v)| (k, json!(v))).collect();
                        if let Some(v) = v {
                            o.insert("access.team".into(), v);
                        }
                        Some(Value::Object(o))
                    })
                }
            ),
        ];
        (metadata, "[a-z0-9]{1,8}").prop_map(|(md, id)| {
            let mut o = json!({"id": id, "status": {"state": "Running"}});
            if let Some(md) = md {
                o["metadata"] = md;
            }
            o
        })
    }

    #[test]
    fn one_sandbox_in_scope_passes_and_anything_else_looks_closer() {
        let t = team();
        let keys = ScopeKeys::default();
        let one = |b: &str| sandbox_in_scope(b.as_bytes(), &alice(), &keys);
        assert!(one(&format!(
            r#"{{"id":"1","metadata":{{"a":"b","access.team":"{t}"}},"status":{{"state":"Running"}}}}"#
        )));
        for body in [
            r#"{"metadata":{"access.team":"other"}}"#.to_string(),
            r#"{"id":"no metadata"}"#.to_string(),
            r#"{"metadata":null}"#.to_string(),
            format!(r#"{{"metadata":{{"access.team":"{t}","access.team":"x"}}}}"#),
            format!(r#"{{"metadata":{{"access.team":"{t}"}},"metadata":{{}}}}"#),
            format!(r#"{{"metadata":{{"access.team":"{t}"}}}} trailing"#),
            format!(r#"[{{"metadata":{{"access.team":"{t}"}}}}]"#),
            String::new(),
        ] {
            assert!(!one(&body), "{body}");
        }
    }

    proptest! {
        /// The sandbox check says "in scope" only when the full parse agrees.
        #[test]
        fn one_sandbox_agrees_with_the_full_parse(item in item()) {
            let body = item.to_string();
            let keys = ScopeKeys::default();
            let full = crate::body::sandbox_metadata(body.as_bytes())
                .is_ok_and(|md| alice().allows(&md, &keys));
            prop_assert_eq!(sandbox_in_scope(body.as_bytes(), &alice(), &keys), full);
        }

        /// The fast check says "in scope" exactly when the full filter would drop nothing.
        #[test]
        fn agrees_with_the_full_filter(items in proptest::collection::vec(item(), 0..8)) {
            let body = json!({"items": items, "pagination": {"totalItems": items.len()}}).to_string();
            let keys = ScopeKeys::default();
            let (_, dropped) = filter_list(body.as_bytes(), &alice(), &keys)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(all_in_scope(body.as_bytes(), &alice(), &keys), dropped == 0);
        }

        /// Arbitrary bytes never panic.
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = all_in_scope(&bytes, &alice(), &ScopeKeys::default());
        }
    }
}
