//! The io_uring model (`--model io_uring`): one worker thread per
//! `SO_REUSEPORT` listener, each owning a ring ([`crate::sys::uring`]) and
//! driving the same connection engine as epoll through its completion
//! calls ([`crate::engine::Connection::take_bytes`] and `give_back`). Per
//! worker: a multishot accept on its listener; a multishot receive per
//! connection into the ring's shared provided buffers (so an idle
//! connection holds no buffer); one send in flight per connection, of
//! everything the engine has queued (a pipelined batch is one send);
//! file bodies by `sendfile(2)` from the worker, waiting for writability
//! with a ring poll when the socket is full; the controller's bell as an
//! eventfd read on the ring; the engines' deadlines in the epoll workers'
//! timer heap with one ring timeout for the earliest.
//!
//! Why `sendfile` rather than `IORING_OP_SPLICE` through a pipe: both move
//! no byte through user space, but splice needs a pipe pair per
//! connection with a body in flight (two more descriptors each) and two
//! linked operations per chunk whose partial results must be reconciled;
//! a non-blocking `sendfile` of a socket with room is one call that
//! returns at once, and the ring is used only to learn when a full socket
//! drains.
//!
//! Cancellation: a connection the engine (or the drain) closes is finished
//! at once for the engine's accounting, but its socket and slot live until
//! every operation on it has completed (its receive, send and poll are
//! cancelled), so a buffer or descriptor is never reused under the kernel.
//!
//! Code map: `worker` (the thread, its loop, the lifecycle and the
//! drain), `drive` (one connection: what the engine offers, and what each
//! completion means for it). Architecture invariant: like the other
//! models, this moves bytes only and reads no header.

mod drive;
mod worker;

use std::io;
use std::sync::Arc;

use super::Shared;
use crate::app::HandlerFactory;
use crate::reactor::{Lifecycle, ReactorConfig, WorkerHandle};
use crate::sys::socket::Listener;
use crate::sys::uring::Ring;
use crate::telemetry::metrics::Metrics;

/// Submission slots per ring (completions get twice as many).
const ENTRIES: u32 = 1024;
/// Provided receive buffers per worker, shared by all its connections.
const BUFFERS: u16 = 256;
/// Size of one provided buffer.
const BUFFER_SIZE: usize = 16 * 1024;

/// Starts one io_uring worker per listener. A kernel that refuses
/// io_uring is found here, before any thread starts, and reported as
/// `ErrorKind::Unsupported` with one line saying why.
pub fn spawn(
    listeners: Vec<Arc<Listener>>,
    cfg: Arc<ReactorConfig>,
    factory: HandlerFactory,
    all: Arc<Metrics>,
    life: Arc<Lifecycle>,
) -> io::Result<Vec<WorkerHandle>> {
    // A probe: each worker makes its own ring on its own thread (a ring
    // set up for a single issuer belongs to the thread that made it).
    drop(Ring::new(8, 1, 4096)?);
    let metrics = all.workers.clone();
    super::driver::refusals_in_plaintext(cfg.tls.is_none());
    let shared = Shared {
        cfg,
        factory,
        life,
        metrics: all,
    };
    let mut handles = Vec::new();
    for (id, (listener, metrics)) in listeners.into_iter().zip(metrics).enumerate() {
        handles.push(worker::spawn(id, listener, shared.clone(), metrics)?);
    }
    Ok(handles)
}
