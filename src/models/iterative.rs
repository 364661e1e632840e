//! `--model iterative`: one thread serves one connection at a time with
//! blocking `accept`, `read` and `write`, start to end, then accepts the
//! next; every other client waits in the listen backlog meanwhile. The
//! bottom rung of the ladder: a keep-alive client (or a WebSocket) holds
//! the whole server until it closes or its idle timeout passes.

use std::io;
use std::sync::Arc;

use super::driver::{Admission, Lent, SCRATCH};
use super::{accept, blocking, Done, Shared};
use crate::reactor::WorkerHandle;
use crate::sys::socket::Listener;
use crate::telemetry::WorkerMetrics;

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
        .name("iterative".into())
        .spawn(move || {
            let life = shared.life.clone();
            let _done = Done(life.clone());
            let mut lent = Lent::new(0, shared, metrics);
            let mut scratch = vec![0; SCRATCH];
            let shard = lent.metrics().clone();
            accept::run(&listener, &life, 0, &shard, |stream, peer| {
                let max = lent.max_connections();
                if let Some(a) = Admission::take(&life, max, &stream, peer.ip(), lent.metrics()) {
                    blocking::serve(&mut lent, &mut scratch, stream, peer, a);
                }
            });
        })?;
    Ok(vec![WorkerHandle::ticking(thread)?])
}
