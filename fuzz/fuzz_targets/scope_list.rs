#![no_main]
//! Fuzz target: see `props::scope_list`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse_fuzz::props::scope_list(data));
