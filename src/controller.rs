//! The controller thread: owns signals (read from a signalfd, blocked in
//! every thread) and the lifecycle. It tells workers to drain or stop by
//! writing the shared state and ringing their eventfds, waits for them
//! within the drain deadline, and decides the exit code.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::reactor::{DrainReport, Lifecycle, State, WorkerHandle};
use crate::sys::epoll::{Events, Interest, Poller};
use crate::sys::signals::{Sig, Signals};

/// How the process should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Drained (or forced at the deadline) after one SIGTERM/SIGINT: 0.
    Graceful,
    /// A second signal during the drain, or SIGQUIT: 1.
    Abrupt,
}

/// What the controller needs from the rest of the program.
pub trait Hooks {
    /// SIGHUP: re-read the log level.
    fn reload(&mut self);
    /// The drain began after `signal`.
    fn drain_started(&mut self, signal: Sig);
    /// Progress notes for the shutdown span (`listeners closed`, ...).
    fn drain_event(&mut self, name: &'static str, report: &DrainReport, idle_closed: u64);
    /// The drain ended; `deadline_hit` when connections had to be forced.
    fn drain_finished(&mut self, report: &DrainReport, deadline_hit: bool);
}

const SIGNALS: u64 = 1;
const DONE: u64 = 2;

/// Runs the lifecycle until the workers have stopped; returns the exit kind.
pub fn run(
    signals: Signals,
    life: Arc<Lifecycle>,
    workers: Vec<WorkerHandle>,
    drain_timeout: Duration,
    hooks: &mut dyn Hooks,
) -> io::Result<Exit> {
    let poll = Poller::new()?;
    poll.add(&signals, SIGNALS, Interest::READ)?;
    poll.add(&life.done_bell, DONE, Interest::READ)?;
    let mut events = Events::with_capacity(8);
    let total = workers.len();
    let mut deadline: Option<Instant> = None;
    let mut exit = Exit::Graceful;
    let mut listeners_reported = false;
    let ring = |workers: &[WorkerHandle]| workers.iter().for_each(|w| w.bell.ring());
    loop {
        if life.workers_done.load(Ordering::Acquire) >= total {
            break;
        }
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        poll.wait(&mut events, timeout)?;
        life.done_bell.clear();
        while let Some(sig) = signals.next()? {
            match sig {
                Sig::Hup => hooks.reload(),
                Sig::Term | Sig::Int if deadline.is_none() => {
                    hooks.drain_started(sig);
                    life.advance(State::Draining);
                    deadline = Some(Instant::now() + drain_timeout);
                    ring(&workers);
                    // Logged once it is true: whoever reads the line (the
                    // shutdown tests do) may count on the workers draining.
                    tracing::info!(signal = sig.name(), "drain started");
                }
                Sig::Term | Sig::Int | Sig::Quit => {
                    tracing::warn!(signal = sig.name(), "stopping at once");
                    exit = Exit::Abrupt;
                    life.advance(State::Forced);
                    ring(&workers);
                    deadline = Some(Instant::now());
                }
            }
        }
        if !listeners_reported && life.listeners_closed.load(Ordering::Acquire) >= total {
            listeners_reported = true;
            let idle = life.idle_closed.load(Ordering::Acquire);
            hooks.drain_event("listeners closed", &life.report(), idle);
            hooks.drain_event("idle connections closed", &life.report(), idle);
        }
        if let Some(d) = deadline {
            if Instant::now() >= d && life.state() != State::Forced {
                tracing::warn!("drain deadline reached; closing remaining connections");
                life.advance(State::Forced);
                ring(&workers);
            }
        }
    }
    let forced = life.state() == State::Forced;
    for w in workers {
        let _ = w.thread.join();
    }
    let report = life.report();
    if deadline.is_some() {
        let idle = life.idle_closed.load(Ordering::Acquire);

        hooks.drain_finished(&report, forced);
        tracing::info!(
            in_flight = report.in_flight,
            drained = report.drained,
            forced = report.forced,
            idle_closed = idle,
            "drain finished"
        );
    }
    Ok(exit)
}
