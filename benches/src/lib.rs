//! Shared pieces of the Gatehouse benchmarks.
//!
//! - [`fixtures`]: the canned bodies (a sandbox, 20- and 200-item lists, a create) and
//!   the identities the proxy-latency harness uses, shared by the fixed-cost upstream
//!   (`bench-upstream`), the orchestrator (`bench-run`) and the criterion benches;
//! - [`serve`]: the tiny single-threaded hyper server loop behind `bench-upstream` and
//!   `bench-auth`.
//!
//! The criterion micro-benchmarks live in `benches/` (`cargo bench -p gatehouse-benches`);
//! `make bench` runs everything (see `benches/README.md`).

pub mod fixtures;
pub mod serve;
