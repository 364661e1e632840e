//! The classic server models of the architecture ladder, each a thin
//! driver of the same connection engine ([`crate::engine::Connection`]):
//! `iterative` (one thread, one connection at a time), `forking` (a
//! child process per connection), `preforked` (a pool of processes
//! accepting in turn), `threaded` (a thread per connection),
//! `prethreaded` (a pool of threads accepting in turn, or fed by an
//! acceptor through a queue) and `poll` (one
//! thread, poll(2) over every socket), and beside them the completion
//! model `uring` (`--model io_uring`: a ring per worker, see its module)
//! and `usertcp` (the userland TCP/IP on a TUN). The `epoll`
//! model is [`crate::reactor`]. They differ only in how sockets reach an
//! engine and how a thread waits; everything HTTP and WebSocket is the
//! engine's.
//!
//! Code map: `driver` (what a serving thread lends the engine, admission
//! under `--max-connections`, one engine step over a socket, the close
//! accounting), `blocking` (one connection served to its end with blocking
//! calls), `accept` (the blocking accept loop, its part of the drain and
//! EMFILE), `processes` (children of the process models: reaping, drain,
//! the child's start), `figures` (children's metrics relayed to the
//! parent), and one file per model.
//!
//! How a blocking thread notices the drain: a thread blocked in
//! `accept(2)`, `read(2)` or `send(2)` cannot be woken by the controller's
//! eventfd, and a signal aimed at the thread would race with the check
//! before the call (lost if it lands just before). So every blocking call
//! is bounded by a socket timeout (`SO_RCVTIMEO`, which `accept` honours
//! too, and `SO_SNDTIMEO`) of at most [`TICK`], or less when the engine's
//! next deadline is sooner; when it returns the thread reads the lifecycle
//! state. The drain is thus seen within one tick, without a race, and the
//! same timeouts enforce the engine's head and idle deadlines, so a slow
//! client cannot hold a thread beyond them. `shutdown(SHUT_RD)` of the
//! listener would wake blocked accepts at once but resets the connections
//! still queued, which the drain must serve. The `poll` model is not
//! blocking: it waits on its bell beside the sockets, as epoll does.
//!
//! Architecture invariant: like the reactor, this module moves bytes only —
//! it reads no header and imports no HTTP parser (`tests/layering.rs`).

mod accept;
mod blocking;
mod driver;
pub(crate) use driver::let_go;
mod figures;
mod forking;
mod iterative;
mod poll;
mod preforked;
mod prethreaded;
mod processes;
mod threaded;
mod uring;
pub mod usertcp;

pub use uring::spawn as spawn_io_uring;

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::app::HandlerFactory;
use crate::config::{Model, PoolFeed};
use crate::reactor::{Lifecycle, ReactorConfig, WorkerHandle};
use crate::sys::socket::Listener;
use crate::telemetry::metrics::Metrics;

/// Longest a blocking call waits before its thread looks at the lifecycle
/// again: the drain is noticed within this, at the cost of one wake-up per
/// tick per idle thread.
pub const TICK: Duration = Duration::from_millis(100);

/// Metrics shards (and `/api/stats` workers) a model reports: one per
/// serving thread that lives as long as the server. `threaded` counts its
/// connection threads in one shard, as they come and go.
pub fn shards(model: Model, workers: usize) -> usize {
    match model {
        Model::Prethreaded | Model::Epoll | Model::Preforked | Model::IoUring => workers,
        Model::Iterative | Model::Threaded | Model::Poll | Model::Forking => 1,
    }
}

/// Starts `model` on `listener` (shared by its threads); the controller
/// then runs the lifecycle over the returned handles exactly as for epoll.
/// `feed` is how `prethreaded` hands connections to its pool.
pub fn spawn(
    model: Model,
    feed: PoolFeed,
    listener: Arc<Listener>,
    cfg: Arc<ReactorConfig>,
    factory: HandlerFactory,
    all: Arc<Metrics>,
    life: Arc<Lifecycle>,
) -> io::Result<Vec<WorkerHandle>> {
    let metrics = all.workers.clone();
    driver::refusals_in_plaintext(cfg.tls.is_none());
    let shared = Shared {
        cfg,
        factory,
        life,
        metrics: all,
    };
    match model {
        Model::Iterative => iterative::spawn(listener, shared, metrics),
        Model::Threaded => threaded::spawn(listener, shared, metrics),
        Model::Prethreaded => prethreaded::spawn(listener, shared, metrics, feed),
        Model::Poll => poll::spawn(listener, shared, metrics),
        Model::Forking => forking::spawn(listener, shared, metrics),
        Model::Preforked => preforked::spawn(listener, shared, metrics),
        other => Err(io::Error::other(format!(
            "--model {} has its own spawn, not this one",
            other.name()
        ))),
    }
}

/// Starts `--stack user`: one thread serving over the userland TCP/IP on
/// a TUN device (see [`usertcp`]).
pub fn spawn_user_stack(
    us: usertcp::UserStack,
    cfg: Arc<ReactorConfig>,
    factory: HandlerFactory,
    all: Arc<Metrics>,
    life: Arc<Lifecycle>,
) -> io::Result<Vec<WorkerHandle>> {
    let metrics = all.workers.clone();
    let shared = Shared {
        cfg,
        factory,
        life,
        metrics: all,
    };
    usertcp::spawn(us, shared, metrics)
}

/// What every serving thread of a model is given.
#[derive(Clone)]
struct Shared {
    cfg: Arc<ReactorConfig>,
    factory: HandlerFactory,
    life: Arc<Lifecycle>,
    /// The whole server's figures: the process models relay what their
    /// children count into them (shards and process-wide counters).
    metrics: Arc<Metrics>,
}

/// Counts a worker as done however its thread ends, a panic included, so
/// the controller never waits for a thread that is gone.
struct Done(Arc<Lifecycle>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.workers_done.fetch_add(1, Ordering::AcqRel);
        self.0.done_bell.ring();
    }
}

/// Tells the controller this worker has stopped accepting.
fn listener_closed(life: &Lifecycle) {
    life.listeners_closed.fetch_add(1, Ordering::AcqRel);
    life.done_bell.ring();
}
