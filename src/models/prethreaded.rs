//! `--model prethreaded`: a pool of `--workers` threads made at start,
//! each running the blocking accept loop on the one shared listener and
//! serving what it accepted to the end before accepting again.
//!
//! Why accepting in turn rather than an acceptor feeding a queue: the
//! kernel's accept queue already is the queue, and a blocking `accept`
//! waits exclusively (one waiter woken per connection, no thundering
//! herd), so a connection goes from the kernel straight to the thread that
//! serves it, with no hand-off, no lock and no extra thread. Either way a
//! thread held by a slow keep-alive client serves nobody else until its
//! idle timeout; with all of them held, newcomers wait in the backlog.
//! (Measuring the queue variant against this one is part of the ladder.)

use std::io;
use std::sync::Arc;

use super::driver::{Admission, Lent, SCRATCH};
use super::{accept, blocking, Done, Shared};
use crate::reactor::WorkerHandle;
use crate::sys::eventfd::Bell;
use crate::sys::socket::Listener;
use crate::telemetry::WorkerMetrics;

pub fn spawn(
    listener: Arc<Listener>,
    shared: Shared,
    metrics: Vec<Arc<WorkerMetrics>>,
) -> io::Result<Vec<WorkerHandle>> {
    accept::blocking(&listener)?;
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
        // Nobody waits on this bell: the thread sees the lifecycle at its tick.
        handles.push(WorkerHandle {
            bell: Arc::new(Bell::new()?),
            thread,
        });
    }
    Ok(handles)
}
