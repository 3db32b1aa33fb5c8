//! Tests of the file sink.

use super::*;
use crate::event::sample;
use std::collections::HashSet;
use std::sync::Arc;

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_events_are_whole_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let sink = Arc::new(FileSink::open(&path).unwrap());
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let sink = sink.clone();
        tasks.push(tokio::spawn(async move {
            let mut e = sample(i);
            // Large events, so batches span many kilobytes.
            e.path = format!("/v1/sandboxes/{}", "x".repeat(1500 + i));
            sink.record(e);
        }));
    }
    // And from plain OS threads at the same time.
    let threads: Vec<_> = (1000..1200)
        .map(|i| {
            let sink = sink.clone();
            std::thread::spawn(move || sink.record(sample(i)))
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    sink.flush().await.unwrap();
    assert_eq!(sink.dropped(), 0);

    let raw = std::fs::read_to_string(&path).unwrap();
    assert!(raw.ends_with('\n'));
    let lines = lines(&path);
    assert_eq!(lines.len(), 1200);
    let mut ids = HashSet::new();
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v.is_object());
        ids.insert(v["request_id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1200);
}

#[tokio::test]
async fn appends_to_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, "{\"old\":true}\n").unwrap();
    let sink = FileSink::open(&path).unwrap();
    sink.record(sample(1));
    sink.flush().await.unwrap();
    drop(sink);
    let sink = FileSink::open(&path).unwrap();
    sink.record(sample(2));
    sink.flush().await.unwrap();
    let lines = lines(&path);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], "{\"old\":true}");
    assert!(lines[2].contains("\"req-2\""));
    assert_eq!(sink.path(), path);
    assert!(format!("{sink:?}").contains("audit.jsonl"));
}

#[tokio::test]
async fn full_queue_drops_and_counts() {
    // A current-thread runtime: the writer task cannot run while this test records.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let sink = FileSink::open_with_capacity(&path, 4).unwrap();
    for i in 0..10 {
        sink.record(sample(i));
    }
    assert_eq!(sink.dropped(), 6);
    assert_eq!(AuditSink::dropped(&sink), 6);
    sink.flush().await.unwrap();
    let lines = lines(&path);
    assert_eq!(lines.len(), 4);
    assert!(lines[0].contains("\"req-0\"") && lines[3].contains("\"req-3\""));
    // Once drained, recording works again.
    sink.record(sample(10));
    sink.flush().await.unwrap();
    assert_eq!(self::lines(&path).len(), 5);
    assert_eq!(sink.dropped(), 6);
}

#[tokio::test]
async fn open_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("audit.jsonl");
    let e = FileSink::open(&path).unwrap_err();
    assert!(matches!(e, AuditError::Open { .. }));
    assert!(e.to_string().contains("missing-dir"), "{e}");
}

#[test]
fn needs_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let e = FileSink::open(dir.path().join("a.jsonl")).unwrap_err();
    assert!(matches!(e, AuditError::NoRuntime));
}

#[test]
fn stopped_writer_counts_drops() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let sink = {
        let _guard = rt.enter();
        FileSink::open(dir.path().join("a.jsonl")).unwrap()
    };
    drop(rt);
    sink.record(sample(1));
    assert_eq!(sink.dropped(), 1);
}
