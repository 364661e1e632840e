//! `--model poll`: one thread, non-blocking sockets, and one poll(2) over
//! the listener, the bell and every connection, rebuilt each turn — the
//! rung before epoll, whose cost grows with the descriptors watched, ready
//! or not. Readiness is level-triggered: a connection reads once per
//! report (more input is reported again), and asks for `POLLOUT` only
//! while a write would block. Deadlines are found by scanning every
//! connection each turn, which poll's scan of every descriptor already
//! costs. The drain is noticed as in epoll: the controller rings the bell
//! this thread polls.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::driver::{refuse, step, Admission, Lent, Step, SCRATCH};
use super::{listener_closed, Done, Shared};
use crate::reactor::{State, WorkerHandle};
use crate::reserve::{self, Refusal, Reserve};
use crate::sys::eventfd::Bell;
use crate::sys::poll::{PollSet, Want};
use crate::sys::socket::{Accepted, Listener, Stream};
use crate::telemetry::{HttpObserver, WorkerMetrics};
use crate::tls::Session;

/// Connections taken per listener report, so that a burst of new ones
/// cannot starve those already open.
const ACCEPT_BURST: usize = 64;
/// Engine steps per connection per turn, for the same fairness.
const STEPS: usize = 64;
/// Pause of accepting after an accept error (EMFILE, ...).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often idle connections give back their buffers.
const SWEEP: Duration = Duration::from_secs(1);

struct Conn {
    stream: Stream,
    engine: Session<HttpObserver>,
    /// The last write would have blocked: wait for `POLLOUT`. Also set when
    /// a turn's step budget ran out with work left, so the next poll
    /// returns at once.
    write_blocked: bool,
    _admission: Admission,
}

pub fn spawn(
    listener: Arc<Listener>,
    shared: Shared,
    metrics: Vec<Arc<WorkerMetrics>>,
) -> io::Result<Vec<WorkerHandle>> {
    let metrics = metrics
        .into_iter()
        .next()
        .ok_or(io::ErrorKind::InvalidInput)?;
    let bell = Arc::new(Bell::new()?);
    let ours = bell.clone();
    let thread = std::thread::Builder::new()
        .name("poll".into())
        .spawn(move || {
            let _done = Done(shared.life.clone());
            let mut l = Loop {
                lent: Lent::new(0, shared, metrics),
                listener: Some(listener),
                bell: ours,
                conns: Vec::new(),
                scratch: vec![0; SCRATCH],
                set: PollSet::default(),
                accept_paused_until: None,
                seen: State::Running,
                next_sweep: Instant::now() + SWEEP,
            };
            if let Err(e) = l.run() {
                tracing::error!(error = %e, "poll loop failed");
            }
        })?;
    Ok(vec![WorkerHandle { bell, thread }])
}

struct Loop {
    lent: Lent,
    listener: Option<Arc<Listener>>,
    bell: Arc<Bell>,
    conns: Vec<Conn>,
    scratch: Vec<u8>,
    set: PollSet,
    accept_paused_until: Option<Instant>,
    /// The lifecycle state this loop last acted on.
    seen: State,
    next_sweep: Instant,
}

impl Loop {
    fn run(&mut self) -> io::Result<()> {
        loop {
            // The set: listener (unless paused), bell, then every connection
            // in `conns` order.
            self.set.clear();
            let read = Want {
                read: true,
                write: false,
            };
            let listen_ix = match (&self.listener, self.accept_paused_until) {
                (Some(l), None) => Some(self.set.push(l.as_fd(), read)),
                _ => None,
            };
            let bell_ix = self.set.push(self.bell.as_fd(), read);
            let base = bell_ix + 1;
            let mut wake = self.next_sweep;
            if let Some(t) = self.accept_paused_until {
                wake = wake.min(t);
            }
            for c in &self.conns {
                let want = Want {
                    read: c.engine.wants_read(&self.lent.env()),
                    write: c.write_blocked,
                };
                self.set.push(c.stream.as_fd(), want);
                if let Some(d) = c.engine.next_deadline() {
                    wake = wake.min(d);
                }
            }
            let polled = self.conns.len();
            self.set
                .wait(Some(wake.saturating_duration_since(Instant::now())))?;
            self.lent.refresh();
            // The lifecycle first: bytes read in this turn after the
            // controller moved to draining are answered as draining.
            if self.lent.state != self.seen {
                self.seen = self.lent.state;
                match self.seen {
                    State::Draining => self.begin_drain(),
                    State::Forced => self.force_close(),
                    State::Running => {}
                }
            }
            if self.set.ready(bell_ix).any() {
                self.bell.clear();
            }
            if self.accept_paused_until.is_some_and(|t| self.lent.now >= t) {
                self.accept_paused_until = None;
            }
            if listen_ix.is_some_and(|i| self.set.ready(i).any()) {
                self.accept_burst();
            }
            // Backwards, so that removing one (swap_remove) moves only a
            // connection already seen (or new this turn) into its place.
            for i in (0..polled.min(self.conns.len())).rev() {
                let ready = self.set.ready(base + i);
                let due = self.conns[i]
                    .engine
                    .next_deadline()
                    .is_some_and(|d| d <= self.lent.now);
                if ready.any() || due {
                    self.drive(i, due);
                }
            }
            self.sweep();
            if self.seen != State::Running && self.conns.is_empty() {
                return Ok(());
            }
        }
    }

    fn accept_burst(&mut self) {
        for _ in 0..ACCEPT_BURST {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok(Accepted::Stream(stream, peer)) => self.admit(stream, peer),
                Ok(Accepted::None) => return,
                Err(e) if reserve::out_of_descriptors(&e) => {
                    let metrics = self.lent.metrics();
                    let refusal =
                        Reserve::process().refuse_one(|| listener.accept(), |s| refuse(s, metrics));
                    if refusal == Refusal::NoSpare {
                        self.accept_paused_until = Some(self.lent.now + ACCEPT_BACKOFF);
                    }
                    tracing::warn!(error = %e, ?refusal, "out of file descriptors");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; pausing accepts");
                    self.accept_paused_until = Some(self.lent.now + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }

    fn admit(&mut self, stream: Stream, peer: SocketAddr) {
        let metrics = self.lent.metrics();
        let Some(stream) = Reserve::process().reclaim(stream, |s| refuse(s, metrics)) else {
            return;
        };
        let max = self.lent.max_connections();
        let Some(admission) = Admission::take(
            self.lent.life(),
            max,
            &stream,
            peer.ip(),
            self.lent.metrics(),
        ) else {
            return;
        };
        let Some(engine) = self.lent.connection(&stream, peer) else {
            return;
        };
        self.conns.push(Conn {
            stream,
            engine,
            write_blocked: false,
            _admission: admission,
        });
        // Data often arrives with the handshake's last ACK: try it now.
        let i = self.conns.len() - 1;
        self.drive(i, false);
    }

    /// Runs connection `i` as far as one turn allows: fires its timer when
    /// due, then steps the engine, reading at most once.
    fn drive(&mut self, i: usize, due: bool) {
        let c = &mut self.conns[i];
        let mut env = self.lent.env();
        if due {
            c.engine.on_timer(&mut env);
        }
        c.write_blocked = false;
        let mut may_read = true;
        let mut close = false;
        let mut finished_turn = false;
        for _ in 0..STEPS {
            match step(
                &c.stream,
                &mut c.engine,
                &mut env,
                &mut self.scratch,
                may_read,
            ) {
                Step::Moved => {}
                // Level-triggered: what is left is reported again.
                Step::Read(_) => may_read = false,
                Step::Blocked { write } => {
                    c.write_blocked = write;
                    finished_turn = true;
                    break;
                }
                Step::Idle => {
                    finished_turn = true;
                    break;
                }
                Step::Close => {
                    close = true;
                    break;
                }
            }
        }
        if !finished_turn && !close {
            // Out of steps with work left: poll must return at once.
            c.write_blocked = true;
        }
        self.lent.collect_drained(&mut self.conns[i].engine);
        if close {
            self.close(i, false);
        }
    }

    fn close(&mut self, i: usize, forced: bool) {
        let c = self.conns.swap_remove(i);
        super::driver::let_go(&c.stream, &c.engine);
        self.lent.close(c.engine, forced);
        // The stream and the admission are dropped here.
    }

    /// Stop accepting (after taking what is queued); close idle
    /// connections; let the rest finish.
    fn begin_drain(&mut self) {
        if let Some(l) = self.listener.take() {
            // Connections the kernel already completed are ours to serve.
            while let Ok(Accepted::Stream(s, peer)) = l.accept() {
                self.admit(s, peer);
            }
        }
        for i in (0..self.conns.len()).rev() {
            // Whatever already arrived is a request we accepted: read it.
            let before = self.conns.len();
            self.drive(i, false);
            if self.conns.len() < before {
                // It closed, and a connection already drained took its place.
                continue;
            }
            self.lent.drain(&mut self.conns[i].engine);
            self.drive(i, false);
        }
        listener_closed(self.lent.life());
    }

    /// The drain deadline passed (or a second signal came): close everything.
    fn force_close(&mut self) {
        self.listener = None;
        while !self.conns.is_empty() {
            self.close(self.conns.len() - 1, true);
        }
    }

    /// Once a second: idle connections give back their buffers.
    fn sweep(&mut self) {
        if self.lent.now < self.next_sweep {
            return;
        }
        self.next_sweep = self.lent.now + SWEEP;
        for c in &mut self.conns {
            c.engine.shrink();
        }
    }
}
