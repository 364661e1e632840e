//! The blocking accept loop of the iterative, threaded and prethreaded
//! models: `accept(2)` on a blocking listener, bounded by [`TICK`] so the
//! thread sees the drain; then the drain's part — accept what the kernel
//! has already queued (those clients connected before the signal and are
//! ours to serve), without waiting for more, and stop. Running out of
//! descriptors is met with the reserve descriptor, as in the epoll model.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::driver::refuse;
use super::{listener_closed, TICK};
use crate::reactor::{Lifecycle, State};
use crate::reserve::{self, Refusal, Reserve};
use crate::sys::socket::{Accepted, Listener, Stream};
use crate::telemetry::WorkerMetrics;

/// Pause after an accept error (ENOBUFS, or EMFILE with no reserve) so the loop
/// does not spin on a listener it cannot take from.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Makes `listener` blocking, with accepts bounded by [`TICK`].
pub fn blocking(listener: &Listener) -> std::io::Result<()> {
    listener.set_nonblocking(false)?;
    listener.set_accept_timeout(TICK)
}

/// Hands every accepted connection to `serve` until the drain begins, then
/// those already queued, and tells the controller this thread stopped
/// accepting. Several threads may run this on one listener (prethreaded):
/// the kernel wakes one blocked accept per connection.
pub fn run(
    listener: &Listener,
    life: &Arc<Lifecycle>,
    id: usize,
    metrics: &WorkerMetrics,
    serve: impl FnMut(Stream, SocketAddr),
) {
    run_tending(listener, life, id, metrics, serve, || {});
}

/// [`run`], calling `tend` at every tick that passed with nobody
/// connecting (the process models reap their children there).
pub fn run_tending(
    listener: &Listener,
    life: &Arc<Lifecycle>,
    id: usize,
    metrics: &WorkerMetrics,
    mut serve: impl FnMut(Stream, SocketAddr),
    mut tend: impl FnMut(),
) {
    let reserve = Reserve::process();
    while life.state() == State::Running {
        match listener.accept_blocking() {
            Ok(Accepted::Stream(stream, peer)) => {
                if let Some(stream) = reserve.reclaim(stream, |s| refuse(s, metrics)) {
                    serve(stream, peer);
                }
            }
            // The tick passed with nobody connecting.
            Ok(Accepted::None) => tend(),
            Err(e) if reserve::out_of_descriptors(&e) => {
                let refusal =
                    reserve.refuse_one(|| listener.accept_blocking(), |s| refuse(s, metrics));
                if refusal == Refusal::NoSpare {
                    std::thread::sleep(ACCEPT_BACKOFF);
                }
                tracing::warn!(worker = id, error = %e, ?refusal, "out of file descriptors");
            }
            Err(e) => {
                tracing::warn!(worker = id, error = %e, "accept failed");
                std::thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
    if life.state() == State::Draining {
        // Non-blocking from now on, for every thread on this listener: an
        // empty queue ends the drain's accepting at once instead of a tick
        // later (a thread still blocked in accept returns at its tick).
        let _ = listener.set_nonblocking(true);
        while let Ok(Accepted::Stream(stream, peer)) = listener.accept_blocking() {
            serve(stream, peer);
            if life.state() == State::Forced {
                break;
            }
        }
    }
    listener_closed(life);
}
