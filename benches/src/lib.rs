//! Benchmarks live in `benches/`; this library only anchors the crate.
