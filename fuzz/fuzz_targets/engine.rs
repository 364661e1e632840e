//! The connection engine under arbitrary byte streams split at arbitrary
//! points: no panic, answers in request order, every answer a well-framed
//! HTTP/1.x response, and the connection goes on or closes (see
//! `glasshouse::engine::invariants`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    glasshouse::engine::invariants::check(data);
});
