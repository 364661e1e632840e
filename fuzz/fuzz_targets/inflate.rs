//! permessage-deflate inflation under a limit, whole and split (see `glasshouse::ws::invariants`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    glasshouse::ws::invariants::check_inflate(data);
});
