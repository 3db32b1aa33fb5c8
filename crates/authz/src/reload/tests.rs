use std::time::{Duration, Instant};

use super::*;
use crate::Action;

fn table(actions: &str) -> String {
    format!("[roles.read_only]\nactions = [{actions}]\n")
}

/// Waits until `cond` holds on the current table, or fails after a few seconds.
async fn wait_for(store: &PolicyStore, what: &str, cond: impl Fn(&RoleTable) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond(&store.current()) {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Writes through a temporary file and a rename, as editors and config managers do.
fn write(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn reloads_good_files_and_keeps_the_old_table_on_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roles.toml");
    write(&path, &table("\"sandbox:list\""));
    let store = Arc::new(PolicyStore::new(RoleTable::load(&path).unwrap()));
    let handle = store
        .clone()
        .spawn_watcher(path.clone(), Duration::from_millis(10));
    let has = |a: Action| move |t: &RoleTable| t.allows("read_only", a);

    write(&path, &table("\"sandbox:read\""));
    wait_for(&store, "the good file", has(Action::SandboxRead)).await;
    assert!(!store.current().allows("read_only", Action::SandboxList));

    write(&path, &table("\"sandbox:explode\""));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        store.current().allows("read_only", Action::SandboxRead),
        "bad file must be rejected"
    );

    std::fs::remove_file(&path).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        store.current().allows("read_only", Action::SandboxRead),
        "missing file keeps the table"
    );

    write(&path, &table("\"sandbox:delete\""));
    wait_for(&store, "the later good file", has(Action::SandboxDelete)).await;
    assert!(!store.current().allows("read_only", Action::SandboxRead));

    handle.abort();
}

#[tokio::test]
async fn watcher_stops_when_the_store_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roles.toml");
    write(&path, &table(""));
    let store = Arc::new(PolicyStore::new(RoleTable::load(&path).unwrap()));
    let handle = store.clone().spawn_watcher(path, Duration::ZERO);
    drop(store);
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn replace_and_current() {
    let store = PolicyStore::new(RoleTable::parse(&table("")).unwrap());
    assert!(!store.current().allows("read_only", Action::SandboxList));
    store.replace(RoleTable::parse(&table("\"sandbox:list\"")).unwrap());
    assert!(store.current().allows("read_only", Action::SandboxList));
}
