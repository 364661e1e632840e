//! The chunked decoder split at arbitrary points (see `glasshouse::http::invariants`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    glasshouse::http::invariants::check_chunked(data);
});
