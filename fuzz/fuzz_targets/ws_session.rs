//! A WebSocket echo session fed arbitrary peer bytes in arbitrary reads (see `glasshouse::ws::invariants`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    glasshouse::ws::invariants::check_session(data);
});
