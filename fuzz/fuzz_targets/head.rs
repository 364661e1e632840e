//! The request-head parser on arbitrary bytes with arbitrary limits (see `glasshouse::http::invariants`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    glasshouse::http::invariants::check_head(data);
});
