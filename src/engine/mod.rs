//! The connection engine: one sans-I/O state machine per connection between
//! the transports and the application. Bytes in, bytes and file regions
//! out, time passed in; it calls the [`crate::app::Handler`] itself and
//! tells telemetry what happened through an [`Observer`]. It owns no
//! descriptor, no thread and no clock, so every transport drives the same
//! HTTP and WebSocket behaviour: a readiness loop (epoll, poll), a
//! completion loop (io_uring: [`Connection::take_bytes`] and
//! [`Connection::give_back`] let the kernel hold a buffer until the write
//! completes), blocking threads and processes, a userland TCP stack, and
//! TLS between any of them and the engine (the engine sees plaintext).
//!
//! Code map:
//! - `connection`: [`Connection`], the state machine, and its WebSocket side;
//! - `output`: the output queue (bytes, then a file or a stream body);
//! - `respond`: answers to bytes (framing, `Connection`, refusals);
//! - [`upgrade`]: the WebSocket opening handshake;
//! - [`observe`]: the events telemetry gets;
//! - [`memory`], [`sample`], [`invariants`]: an in-memory transport, a small
//!   application and the properties every answer stream must have, for
//!   table tests and fuzzing.
//!
//! Architecture invariant: imports neither `sys` nor `reactor` nor any
//! transport; `http` and `ws` do not import it.

use std::time::{Duration, Instant};

use crate::app::Handler;
use crate::http::Limits;

mod connection;
pub mod invariants;
pub mod memory;
pub mod observe;
mod output;
mod respond;
pub mod sample;
pub mod upgrade;

pub use connection::{Action, Connection, DrainOutcome, MAX_LINGER_INPUT};
pub use observe::{Limit, Observer, Unobserved};
pub use output::Send;
pub use respond::{overloaded, too_many_from_client};

/// Input a connection may buffer beyond the limits of one request before
/// it stops asking for more (a pipelining client far ahead of us).
pub const MAX_PENDING_INPUT: usize = 256 * 1024;

/// How long a closing connection may take to read our final bytes.
pub const LINGER: Duration = Duration::from_secs(2);

/// Settings every connection of a server shares.
#[derive(Debug, Clone)]
pub struct Config {
    pub limits: Limits,
    /// Time allowed to receive a request's head (and a body's next bytes).
    pub header_timeout: Duration,
    /// Keep-alive idle limit between requests.
    pub idle_timeout: Duration,
    /// How long a closing connection lingers for the peer to read.
    pub linger: Duration,
    /// How long output may wait on a peer that reads none of it before the
    /// connection is closed: a slow reader holds at most one batch of
    /// output (see `output::MAX_OUTPUT_BATCH`) and only for this long.
    pub send_timeout: Duration,
    pub max_pending_input: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            limits: Limits::default(),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            linger: LINGER,
            send_timeout: Duration::from_secs(60),
            max_pending_input: MAX_PENDING_INPUT,
        }
    }
}

/// What the driver lends a connection for one call: the application, the
/// observer, the settings, and the time. One driver (a worker thread, a
/// process) has one of each and lends them to each connection in turn.
pub struct Env<'a, O> {
    pub handler: &'a mut dyn Handler,
    pub observer: &'a mut O,
    pub config: &'a Config,
    /// The driver's idea of "now", taken once per wake-up.
    pub now: Instant,
    /// The cached `Date` header value for `now`.
    pub date: &'a [u8],
    /// Index of the serving worker, for the handler's context and logs.
    pub worker: usize,
    /// A graceful drain is under way (the server's lifecycle state).
    pub draining: bool,
}
