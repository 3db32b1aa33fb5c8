//! The fuzz targets' shared code: the properties (also replayed on stable by
//! `tests/e2e/fuzz_corpus.rs`) and the gateway's cookie module, compiled from its source
//! so the fuzz build does not need the whole gateway (Pingora, hyper, ...).

#[path = "../props.rs"]
pub mod props;

/// `gateway/src/cookies.rs`, as the gateway compiles it.
#[path = "../../gateway/src/cookies.rs"]
pub mod cookies;
