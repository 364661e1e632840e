//! The userland TCP/IP stack under arbitrary segments, raw packets, user
//! calls and clock jumps: no panic, only well-formed packets out, and time
//! alone ends every connection (see `glasshouse::net::invariants`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    glasshouse::net::invariants::check(data);
});
