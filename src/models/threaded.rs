//! `--model threaded`: one acceptor thread runs the blocking accept loop
//! and starts a thread per connection, which serves it with blocking calls
//! and ends with it. `--max-connections` bounds the threads: a connection
//! over the bound is answered 503 and closed by the acceptor, as in the
//! epoll model. The acceptor is the model's one worker for the controller:
//! after the drain it waits for every connection thread before it ends.

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

use super::driver::{Admission, Lent, SCRATCH};
use super::{accept, blocking, Done, Shared};
use crate::live::Current;
use crate::reactor::WorkerHandle;
use crate::sys::socket::Listener;
use crate::telemetry::WorkerMetrics;

/// Stack of a connection thread: the engine and the handler need little,
/// and thousands of threads should not reserve 8 MiB each.
const STACK: usize = 256 * 1024;

pub fn spawn(
    listener: Arc<Listener>,
    shared: Shared,
    metrics: Vec<Arc<WorkerMetrics>>,
) -> io::Result<Vec<WorkerHandle>> {
    accept::blocking(&listener)?;
    let metrics = metrics
        .into_iter()
        .next()
        .ok_or(io::ErrorKind::InvalidInput)?;
    let thread = std::thread::Builder::new()
        .name("acceptor".into())
        .spawn(move || {
            let life = shared.life.clone();
            let _done = Done(life.clone());
            // `--max-connections` as the last reload left it.
            let mut settings = Current::new(&shared.cfg.settings);
            let mut threads: Vec<JoinHandle<()>> = Vec::new();
            let shard = metrics.clone();
            accept::run(&listener, &life, 0, &shard, |stream, peer| {
                // Ended threads are forgotten from time to time, so the
                // list stays about as long as the connections open.
                if threads.len() >= 64 && threads.len().is_power_of_two() {
                    threads.retain(|t| !t.is_finished());
                }
                settings.refresh(&shared.cfg.settings);
                let max = settings.max_connections;
                let Some(admission) = Admission::take(&life, max, &stream, peer.ip(), &metrics)
                else {
                    return;
                };
                let (shared, metrics) = (shared.clone(), metrics.clone());
                let started = std::thread::Builder::new()
                    .name("conn".into())
                    .stack_size(STACK)
                    .spawn(move || {
                        let mut lent = Lent::new(0, shared, metrics);
                        let mut scratch = vec![0; SCRATCH];
                        blocking::serve(&mut lent, &mut scratch, stream, peer, admission);
                    });
                match started {
                    Ok(t) => threads.push(t),
                    // The closure (stream and admission) is dropped: the
                    // client sees a close, and the place is given back.
                    Err(e) => tracing::warn!(error = %e, "cannot start a connection thread"),
                }
            });
            for t in threads {
                let _ = t.join();
            }
        })?;
    // Each connection thread sees the lifecycle at its own tick too.
    Ok(vec![WorkerHandle::ticking(thread)?])
}
