#![no_main]
//! Fuzz target: see `props::route_match`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse_fuzz::props::route_match(data));
