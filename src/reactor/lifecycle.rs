//! Lifecycle state shared by the controller and the workers: running,
//! draining, forced. The controller writes it and rings the workers' bells;
//! workers read it once per wake-up.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};

use crate::sys::eventfd::Bell;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Running,
    /// Stop accepting, finish what was accepted, then exit.
    Draining,
    /// Close everything now.
    Forced,
}

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
    state: AtomicU8,
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
    pub fn new() -> std::io::Result<Lifecycle> {
        Ok(Lifecycle {
            state: AtomicU8::new(0),
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
        match self.state.load(Ordering::Acquire) {
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
        self.state.fetch_max(v, Ordering::AcqRel);
    }

    pub fn draining(&self) -> bool {
        self.state() != State::Running
    }

    pub fn report(&self) -> DrainReport {
        DrainReport {
            in_flight: self.in_flight.load(Ordering::Acquire),
            drained: self.drained.load(Ordering::Acquire),
            forced: self.forced.load(Ordering::Acquire),
        }
    }
}
