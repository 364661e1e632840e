//! The server's lifecycle state — running, draining, forced — and the one
//! place it is kept: the controller advances it, the transports act on it,
//! `/readyz` and the stats report it. Plain std, so that every layer,
//! the application included, may read it.

use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Running,
    /// Stop accepting, finish what was accepted, then exit.
    Draining,
    /// Close everything now.
    Forced,
}

/// The shared state; it only moves forward.
#[derive(Debug, Default)]
pub struct ServerState(AtomicU8);

impl ServerState {
    pub fn get(&self) -> State {
        match self.0.load(Ordering::Acquire) {
            0 => State::Running,
            1 => State::Draining,
            _ => State::Forced,
        }
    }

    /// Moves forward only: running → draining → forced.
    pub fn advance(&self, to: State) {
        let v = match to {
            State::Running => 0,
            State::Draining => 1,
            State::Forced => 2,
        };
        self.0.fetch_max(v, Ordering::AcqRel);
    }

    /// A graceful (or forced) stop has begun.
    pub fn is_draining(&self) -> bool {
        self.get() != State::Running
    }
}
