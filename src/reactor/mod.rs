//! The reactor: one epoll loop per worker thread, owning that worker's
//! listener, connections, buffers and timers. It knows bytes and readiness,
//! not HTTP meaning: it feeds bytes to the sans-I/O [`crate::http`] decoder,
//! hands requests to the worker's [`crate::app::Handler`] and writes what
//! comes back. Architecture invariant: no code here interprets a header
//! beyond what framing needs; no code here blocks.

mod conn;
mod lifecycle;
mod slab;
mod timers;
mod worker;

pub use lifecycle::{DrainReport, Lifecycle, State};
pub use worker::{spawn, ReactorConfig, WorkerHandle};
