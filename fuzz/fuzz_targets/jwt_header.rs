#![no_main]
//! Fuzz target: see `props::jwt_header`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse_fuzz::props::jwt_header(data));
