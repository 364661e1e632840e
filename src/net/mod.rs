//! glasshouse's own TCP/IP (issue 13): a sans-I/O IPv4 + ICMP + TCP stack.
//! Packets go in (`Stack::receive`), packets come out (`Stack::transmit`),
//! time is a number of milliseconds the caller passes in, and
//! `Stack::poll_at` says when to call again; there are no threads, clocks
//! or descriptors inside, so the same code runs under the drivers, on a
//! TUN device or on Ethernet frames (`ether` and `arp` beneath the stack),
//! and under the deterministic simulator of the tests (`sim`). The design
//! follows smoltcp's split: wire formats as plain parsed structs (`wire`),
//! state machines that do no I/O (`tcp`, `arp`), one interface that
//! demultiplexes (`stack`).
//!
//! Architecture invariant: `net` knows no HTTP and no descriptor; the
//! drivers that give it a link and an application live elsewhere.

pub mod arp;
pub mod ether;
pub mod invariants;
pub mod link;
pub mod seq;
pub mod sim;
pub mod stack;
pub mod tcp;
pub mod view;
pub mod wire;

pub use stack::{Handle, Packet, Stack, StackConfig};
pub use view::{Board, StackView};

/// The stack's clock: milliseconds since an arbitrary start.
pub type Millis = u64;
