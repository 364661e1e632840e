//! The epoll transport: one loop per worker thread, owning that worker's
//! listener, sockets, read buffer and timers. It moves bytes and nothing
//! more: it reads into its buffer and hands the bytes to each connection's
//! [`crate::engine::Connection`], writes (or `sendfile`s) what the engine
//! offers, and wakes the engine at the deadline it names. With kernel TLS
//! on, it also offers each finished handshake's keys to the kernel, once
//! (`drive`). Architecture
//! invariant: no code here reads a header or imports an HTTP parser; no code
//! here blocks.
//!
//! Code map: `worker` (the thread, its loop, time and the drain),
//! `accept` (the listener, `--max-connections`, the EMFILE reserve),
//! `drive` (one connection's reads and writes), `conn`, `slab`, `timers`,
//! `lifecycle` (the state the controller shares with the workers).

mod accept;
mod conn;
mod drive;
mod lifecycle;
pub(crate) mod slab;
pub(crate) mod timers;
mod worker;

pub use lifecycle::{DrainReport, Lifecycle, State};
pub use worker::{spawn, ReactorConfig, Settings, WorkerHandle};
