#![no_main]
//! Fuzz target: see `props::cookie_header`, over the gateway's own `strip_own_cookies`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gatehouse_fuzz::props::cookie_header(data, gatehouse_fuzz::cookies::strip_own_cookies)
});
