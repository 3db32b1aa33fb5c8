//! Replays the checked-in fuzz corpus (`fuzz/corpus/<target>/`) on stable Rust through the
//! same properties the libFuzzer targets check (`fuzz/props.rs`), so every input a fuzz
//! run found interesting (and every crash it once found) stays covered by `make test`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../fuzz/props.rs"]
mod props;

use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            (path, data)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{}: the corpus has {} inputs; it should hold the seeds and what fuzzing found",
        dir.display(),
        files.len()
    );
    files
}

/// Feeds every input of one target's corpus to its property; names the failing file.
fn replay(target: &str, property: impl Fn(&[u8])) {
    let files = corpus(target);
    for (path, data) in &files {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| property(data)));
        assert!(
            outcome.is_ok(),
            "{target}: the property fails on {}",
            path.display()
        );
    }
    println!("{target}: {} corpus inputs replayed", files.len());
}

#[test]
fn every_target_has_a_corpus() {
    for target in props::TARGETS {
        assert!(!corpus(target).is_empty(), "{target}");
    }
}

#[test]
fn normalize_path_corpus() {
    replay("normalize_path", props::normalize_path);
}

#[test]
fn route_match_corpus() {
    replay("route_match", props::route_match);
}

#[test]
fn scope_list_corpus() {
    replay("scope_list", props::scope_list);
}

#[test]
fn cookie_header_corpus() {
    replay("cookie_header", |d| {
        props::cookie_header(d, gatehouse::cookies::strip_own_cookies)
    });
}

#[test]
fn jwt_header_corpus() {
    replay("jwt_header", props::jwt_header);
}

/// The properties are not vacuous: each rejects an input that breaks it.
#[test]
fn properties_catch_a_broken_implementation() {
    // A stripper that forwards everything leaks the session cookie.
    fn keep_all(v: &str, _own: &[&str]) -> Option<String> {
        Some(v.trim().to_owned())
    }
    let leak = std::panic::catch_unwind(|| {
        props::cookie_header(b"\x00a=1; gatehouse_session=s3cret", keep_all)
    });
    assert!(leak.is_err(), "a leaking stripper must fail the property");
}

/// The scope seeds carry the real tokens of the principals the property checks, so the
/// fast path is exercised: alice's own list passes the scan, the mixed one does not.
#[test]
fn scope_seeds_reach_the_fast_path() {
    use gatehouse_scope::body::all_in_scope;
    use gatehouse_scope::{Scope, ScopeKeys, ScopeMode};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/scope_list");
    let alice = Scope::for_principal("alice@example.com", Some("team-a"), ScopeMode::Team);
    let keys = ScopeKeys::default();
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    assert!(all_in_scope(&read("seed-alice"), &alice, &keys));
    assert!(!all_in_scope(&read("seed-mixed"), &alice, &keys));
}
