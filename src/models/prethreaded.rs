//! `--model prethreaded`: a pool of `--workers` threads made at start,
//! each serving one connection to its end before taking the next. Two
//! ways to feed the pool (`--prethreaded-accept`):
//!
//! - `turn` (the default): every pool thread blocks in `accept(2)` on the
//!   one shared listener. The kernel's accept queue is the queue, and a
//!   blocking `accept` waits exclusively (one waiter woken per connection,
//!   no thundering herd), so a connection goes from the kernel straight to
//!   the thread that serves it: no hand-off, no lock, no extra thread.
//! - `queue`: one acceptor thread accepts, takes the connection's place
//!   under `--max-connections` (answering 503 over it, as the threaded
//!   model's acceptor does) and pushes it into a bounded queue the pool
//!   threads take from. The queue holds at most one connection per pool
//!   thread: when it is full the acceptor waits and newcomers wait in the
//!   kernel's backlog, as with `turn`.
//!
//! Either way a thread held by a slow keep-alive client serves nobody else
//! until its idle timeout; with all of them held, newcomers wait. The
//! ladder measures both (docs/ladder.md says which wins and why).

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};

use super::driver::{Admission, Lent, SCRATCH};
use super::{accept, blocking, Done, Shared};
use crate::config::PoolFeed;
use crate::live::Current;
use crate::reactor::WorkerHandle;
use crate::sys::socket::{Listener, Stream};
use crate::telemetry::WorkerMetrics;

pub fn spawn(
    listener: Arc<Listener>,
    shared: Shared,
    metrics: Vec<Arc<WorkerMetrics>>,
    feed: PoolFeed,
) -> io::Result<Vec<WorkerHandle>> {
    accept::blocking(&listener)?;
    match feed {
        PoolFeed::Turn => in_turn(listener, shared, metrics),
        PoolFeed::Queue => queued(listener, shared, metrics),
    }
}

fn in_turn(
    listener: Arc<Listener>,
    shared: Shared,
    metrics: Vec<Arc<WorkerMetrics>>,
) -> io::Result<Vec<WorkerHandle>> {
    let mut handles = Vec::new();
    for (id, metrics) in metrics.into_iter().enumerate() {
        let (listener, shared) = (listener.clone(), shared.clone());
        let thread = std::thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || {
                let life = shared.life.clone();
                let _done = Done(life.clone());
                let mut lent = Lent::new(id, shared, metrics);
                let mut scratch = vec![0; SCRATCH];
                let shard = lent.metrics().clone();
                accept::run(&listener, &life, id, &shard, |stream, peer| {
                    let max = lent.max_connections();
                    if let Some(a) = Admission::take(&life, max, &stream, peer.ip(), lent.metrics())
                    {
                        blocking::serve(&mut lent, &mut scratch, stream, peer, a);
                    }
                });
            })?;
        handles.push(WorkerHandle::ticking(thread)?);
    }
    Ok(handles)
}

/// A connection accepted and admitted, waiting for a pool thread.
type Queued = (Stream, SocketAddr, Admission);

/// The acceptor is the model's one worker for the controller (it stops
/// accepting, then waits for the pool, as the threaded model's acceptor
/// waits for its connection threads); the pool threads end when the queue
/// is closed and empty.
fn queued(
    listener: Arc<Listener>,
    shared: Shared,
    metrics: Vec<Arc<WorkerMetrics>>,
) -> io::Result<Vec<WorkerHandle>> {
    let (tx, rx) = mpsc::sync_channel::<Queued>(metrics.len());
    // The pool takes in turn from one receiver: the thread holding the
    // lock waits in `recv`, the others on the lock.
    let rx = Arc::new(Mutex::new(rx));
    let acceptor_metrics = metrics
        .first()
        .cloned()
        .ok_or(io::ErrorKind::InvalidInput)?;
    let mut pool = Vec::new();
    for (id, metrics) in metrics.into_iter().enumerate() {
        let (rx, shared) = (rx.clone(), shared.clone());
        pool.push(
            std::thread::Builder::new()
                .name(format!("worker-{id}"))
                .spawn(move || {
                    let mut lent = Lent::new(id, shared, metrics);
                    let mut scratch = vec![0; SCRATCH];
                    while let Some((stream, peer, admission)) = take(&rx) {
                        blocking::serve(&mut lent, &mut scratch, stream, peer, admission);
                    }
                })?,
        );
    }
    let thread = std::thread::Builder::new()
        .name("acceptor".into())
        .spawn(move || {
            let life = shared.life.clone();
            let _done = Done(life.clone());
            let mut settings = Current::new(&shared.cfg.settings);
            let metrics = acceptor_metrics;
            accept::run(&listener, &life, 0, &metrics, |stream, peer| {
                settings.refresh(&shared.cfg.settings);
                let max = settings.max_connections;
                if let Some(a) = Admission::take(&life, max, &stream, peer.ip(), &metrics) {
                    // Fails only when every pool thread is gone (each
                    // ends only when the queue closes): the connection and
                    // its place are dropped, and the client sees a close.
                    let _ = tx.send((stream, peer, a));
                }
            });
            // Closing the queue ends each pool thread once it is empty:
            // what was accepted before the drain is served.
            drop(tx);
            for t in pool {
                let _ = t.join();
            }
        })?;
    // The pool threads see the lifecycle at their ticks too.
    Ok(vec![WorkerHandle::ticking(thread)?])
}

/// The next queued connection; `None` once the queue is closed and empty.
fn take(rx: &Mutex<Receiver<Queued>>) -> Option<Queued> {
    // A pool thread that panicked holding the lock poisons it, but the
    // receiver inside is whole: the others go on.
    let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
    rx.recv().ok()
}
