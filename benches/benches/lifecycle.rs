//! Micro-benchmarks of the lifecycle model's hot functions: parsing a list query,
//! filtering and paging a list, and validating metadata labels.

#![allow(missing_docs, reason = "criterion macros generate undocumented items")]

use chrono::DateTime;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use gatehouse_lifecycle::query::ListQuery;
use gatehouse_lifecycle::{validate, Sandbox, SandboxState, SandboxStatus, StringMap};

fn sandboxes(n: usize) -> Vec<Sandbox> {
    (0..n)
        .map(|i| Sandbox {
            id: format!("{i:08}-0000-4000-8000-000000000000"),
            image: None,
            platform: None,
            status: SandboxStatus {
                state: if i % 3 == 0 {
                    SandboxState::Paused
                } else {
                    SandboxState::Running
                },
                reason: Some("CONTAINER_RUNNING".into()),
                message: None,
                last_transition_at: None,
            },
            metadata: StringMap::from([
                ("project".to_string(), format!("p{}", i % 10)),
                ("team".to_string(), "platform".to_string()),
            ]),
            entrypoint: vec!["sleep".into(), "3600".into()],
            extensions: None,
            expires_at: None,
            created_at: DateTime::from_timestamp(1_700_000_000 + i as i64, 0).unwrap_or_default(),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let raw =
        "state=Running&state=paused&metadata=project%3Dp3%26team%3Dplatform&page=1&pageSize=20";
    c.bench_function("list_query_parse", |b| {
        b.iter(|| ListQuery::parse(black_box(Some(raw))))
    });
    for n in [20usize, 200] {
        let all = sandboxes(n);
        let q = ListQuery::parse(Some(raw)).unwrap_or_default();
        c.bench_function(&format!("list_filter_page_{n}"), |b| {
            b.iter(|| q.apply(black_box(all.clone())))
        });
    }
    let md = StringMap::from([
        ("example.com/project".to_string(), "apollo-11".to_string()),
        ("team".to_string(), "platform".to_string()),
        ("env".to_string(), "prod".to_string()),
    ]);
    c.bench_function("validate_metadata_3", |b| {
        b.iter(|| validate::metadata(black_box(&md)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
