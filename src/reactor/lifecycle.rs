//! What the controller and the workers share about the lifecycle: the
//! server's state (kept in [`crate::lifecycle::ServerState`]; the
//! controller advances it and rings the workers' bells, workers read it
//! once per wake-up), the counts of a drain, and the bell a worker rings
//! when its loop ends.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::lifecycle::ServerState;
pub use crate::lifecycle::State;
use crate::sys::eventfd::Bell;

/// Counts of a drain, for the shutdown span and metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct DrainReport {
    /// Requests in progress when the drain began.
    pub in_flight: u64,
    /// Requests completed during the drain.
    pub drained: u64,
    /// Connections closed by force at the deadline.
    pub forced: u64,
}

pub struct Lifecycle {
    state: Arc<ServerState>,
    /// Open connections across all workers, for `--max-connections`.
    pub open: AtomicUsize,
    /// Workers whose loop has ended.
    pub workers_done: AtomicUsize,
    /// Rung by a worker when its loop ends, so the controller wakes.
    pub done_bell: Bell,
    pub in_flight: AtomicU64,
    pub drained: AtomicU64,
    pub forced: AtomicU64,
    /// Idle connections closed when the drain began.
    pub idle_closed: AtomicU64,
    /// Workers that have closed their listener in a drain.
    pub listeners_closed: AtomicUsize,
}

impl Lifecycle {
    pub fn new(state: Arc<ServerState>) -> std::io::Result<Lifecycle> {
        Ok(Lifecycle {
            state,
            open: AtomicUsize::new(0),
            workers_done: AtomicUsize::new(0),
            done_bell: Bell::new()?,
            in_flight: AtomicU64::new(0),
            drained: AtomicU64::new(0),
            forced: AtomicU64::new(0),
            idle_closed: AtomicU64::new(0),
            listeners_closed: AtomicUsize::new(0),
        })
    }

    pub fn state(&self) -> State {
        self.state.get()
    }

    /// See [`ServerState::share_with_children`].
    pub fn share_state_with_children(&self) -> std::io::Result<()> {
        self.state.share_with_children()
    }

    /// Moves forward only: running → draining → forced.
    pub fn advance(&self, to: State) {
        self.state.advance(to);
    }

    pub fn report(&self) -> DrainReport {
        DrainReport {
            in_flight: self.in_flight.load(Ordering::Acquire),
            drained: self.drained.load(Ordering::Acquire),
            forced: self.forced.load(Ordering::Acquire),
        }
    }
}
