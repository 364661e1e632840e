//! The Ethernet interface beneath the userland stack under arbitrary
//! frames, ARP, packets from the stack and clock jumps: no panic, only
//! well-formed frames out, bounded holding, and no deadline in the past
//! (see `glasshouse::net::ether::invariants`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    glasshouse::net::ether::invariants::check(data);
});
