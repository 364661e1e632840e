//! The server's lifecycle state — running, draining, forced — and the one
//! place it is kept: the controller advances it, the transports act on it,
//! `/readyz` and the stats report it. Plain std (and, for the process
//! models, one word of memory shared with the children), so that every
//! layer, the application included, may read it.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use crate::sys::process::SharedCounters;

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
pub struct ServerState {
    local: AtomicU8,
    /// With the process models: the parent's state in memory its children
    /// share, and the parent's pid. A child then sees the drain the moment
    /// the parent's controller moves, not when its own SIGTERM arrives a
    /// moment later (a request read in between would be answered as if
    /// nothing had happened). Only the parent writes it: a child's own
    /// state (a child told to stop) stays its own.
    parent: OnceLock<(SharedCounters, u32)>,
}

impl ServerState {
    pub fn get(&self) -> State {
        let mut v = self.local.load(Ordering::Acquire) as usize;
        if let Some((shared, _)) = self.parent.get() {
            v = v.max(shared.get(0).load(Ordering::Acquire));
        }
        match v {
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
        self.local.fetch_max(v, Ordering::AcqRel);
        if let Some((shared, owner)) = self.parent.get() {
            if std::process::id() == *owner {
                shared.get(0).fetch_max(v as usize, Ordering::AcqRel);
            }
        }
    }

    /// Puts the state where children forked from now on see it (the
    /// forking and preforked models call this before their first fork).
    pub fn share_with_children(&self) -> std::io::Result<()> {
        if self.parent.get().is_some() {
            return Ok(());
        }
        let shared = SharedCounters::new(1)?;
        shared.get(0).store(
            self.local.load(Ordering::Acquire) as usize,
            Ordering::Release,
        );
        let _ = self.parent.set((shared, std::process::id()));
        Ok(())
    }

    /// The server's graceful (or forced) stop has begun. In a child of a
    /// process model that is the parent's state, not the child's own: a
    /// worker process retired by a reload drains while the server stays
    /// ready, and its `/readyz` must not pull the server out of a load
    /// balancer.
    pub fn is_draining(&self) -> bool {
        let local = self.local.load(Ordering::Acquire) as usize;
        let v = match self.parent.get() {
            Some((shared, owner)) if std::process::id() != *owner => {
                shared.get(0).load(Ordering::Acquire)
            }
            _ => local,
        };
        v != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::process::{self, Ended, Forked};
    use std::time::{Duration, Instant};

    /// Waits for this child only: the tests of this module run at once,
    /// and `waitpid(-1)` would take another test's child.
    fn wait_for(child: i32) -> Option<Ended> {
        use nix::sys::wait::{waitpid, WaitStatus};
        match waitpid(nix::unistd::Pid::from_raw(child), None) {
            Ok(WaitStatus::Exited(_, code)) => Some(Ended::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => Some(Ended::Signalled(sig as i32)),
            _ => None,
        }
    }

    #[test]
    fn a_forked_child_sees_the_parents_drain_at_once_and_keeps_its_own_state() {
        let state = ServerState::default();
        state.share_with_children().unwrap();
        let child = match process::fork().unwrap() {
            Forked::Child => {
                // Nothing but atomics and sleeps here: the child of a
                // test binary's thread.
                let end = Instant::now() + Duration::from_secs(10);
                while state.get() == State::Running && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let saw = state.get() == State::Draining && state.is_draining();
                // A child's own stop must not reach the parent.
                state.advance(State::Forced);
                process::exit_child(if saw { 0 } else { 1 });
            }
            Forked::Parent(pid) => pid,
        };
        state.advance(State::Draining);
        let ended = wait_for(child);
        assert_eq!(ended, Some(Ended::Exited(0)), "the child saw the drain");
        assert_eq!(
            state.get(),
            State::Draining,
            "the child's Forced stayed its own"
        );
    }

    #[test]
    fn a_retired_child_drains_while_the_server_stays_ready() {
        let state = ServerState::default();
        state.share_with_children().unwrap();
        let child = match process::fork().unwrap() {
            Forked::Child => {
                // The child's own drain (a reload retiring it).
                state.advance(State::Draining);
                let ok = state.get() == State::Draining && !state.is_draining();
                process::exit_child(if ok { 0 } else { 1 });
            }
            Forked::Parent(pid) => pid,
        };
        let ended = wait_for(child);
        assert_eq!(
            ended,
            Some(Ended::Exited(0)),
            "the child drained, the server did not"
        );
        assert!(!state.is_draining());
        state.advance(State::Draining);
        assert!(state.is_draining(), "the parent's own drain");
    }
}
