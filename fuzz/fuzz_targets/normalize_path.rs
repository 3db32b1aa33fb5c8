#![no_main]
//! Fuzz target: see `props::normalize_path`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse_fuzz::props::normalize_path(data));
