//! An io_uring worker thread: its ring, its loop (submit, wait, handle
//! every completion, fire the timers), its listener (multishot accept,
//! `--max-connections`, running out of descriptors) and its part of the
//! drain, which follows the epoll workers step for step.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::drive::Conn;
use super::{BUFFERS, BUFFER_SIZE, ENTRIES};
use crate::engine::{Connection, Env};
use crate::models::driver::{refuse, Admission, Lent};
use crate::models::{Done, Shared};
use crate::reactor::slab::{Slab, Token};
use crate::reactor::timers::Timers;
use crate::reactor::{Lifecycle, State, WorkerHandle};
use crate::reserve::{Refusal, Reserve};
use crate::sys::eventfd::Bell;
use crate::sys::socket::{Accepted, Listener, Stream};
use crate::sys::uring::{Completion, Op, Ring};
use crate::telemetry::{HttpObserver, WorkerMetrics};
use crate::tls::Acceptor;

/// Pause of accepting when descriptors run out and no reserve is left.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often idle connections give back their buffers.
const SWEEP: Duration = Duration::from_secs(1);

pub fn spawn(
    id: usize,
    listener: Arc<Listener>,
    shared: Shared,
    metrics: Arc<WorkerMetrics>,
) -> io::Result<WorkerHandle> {
    let bell = Arc::new(Bell::new()?);
    let bell2 = bell.clone();
    let thread = std::thread::Builder::new()
        .name(format!("uring-{id}"))
        .spawn(move || {
            let _done = Done(shared.life.clone());
            let ring = match Ring::new(ENTRIES, BUFFERS, BUFFER_SIZE) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(worker = id, error = %e, "io_uring setup failed");
                    return;
                }
            };
            let life = shared.life.clone();
            let mut lent = Lent::new(id, shared, metrics.clone());
            let max_connections = lent.max_connections();
            let tls = lent.tls();
            let now = Instant::now();
            let local = listener
                .local_addr()
                .ok()
                .filter(|a| !a.ip().is_unspecified());
            let mut w = Worker {
                lent,
                io: Io {
                    id,
                    ring,
                    listener: Some(listener),
                    accept_armed: false,
                    queue_watched: false,
                    local,
                    tls,
                    bell: bell2,
                    metrics,
                    life,
                    conns: Slab::default(),
                    timers: Timers::default(),
                    accept_paused_until: None,
                    max_connections,
                    seen: State::Running,
                    drain_begun: false,
                    next_sweep: now + SWEEP,
                    timeout_at: None,
                },
            };
            if let Err(e) = w.run() {
                tracing::error!(worker = id, error = %e, "io_uring worker loop failed");
            }
        })?;
    Ok(WorkerHandle { bell, thread })
}

struct Worker {
    lent: Lent,
    io: Io,
}

/// The transport's own state: the ring, descriptors, timers.
pub(super) struct Io {
    pub id: usize,
    pub ring: Ring,
    pub listener: Option<Arc<Listener>>,
    accept_armed: bool,
    /// The ring watches the listener's queue instead of accepting from it.
    queue_watched: bool,
    /// The listener's address when it names one interface (not a wildcard).
    local: Option<SocketAddr>,
    /// Certificates and settings for HTTPS, when the server serves it.
    tls: Option<Arc<Acceptor>>,
    bell: Arc<Bell>,
    pub metrics: Arc<WorkerMetrics>,
    pub life: Arc<Lifecycle>,
    pub conns: Slab<Conn>,
    pub timers: Timers,
    accept_paused_until: Option<Instant>,
    max_connections: usize,
    /// The lifecycle state this worker last acted on.
    pub seen: State,
    /// The drain's first pass is done: later arrivals are drained on admission.
    drain_begun: bool,
    next_sweep: Instant,
    /// The earliest ring timeout armed.
    timeout_at: Option<Instant>,
}

impl Worker {
    fn run(&mut self) -> io::Result<()> {
        let mut cqes = Vec::with_capacity(256);
        self.io.ring.arm_bell(self.io.bell.as_fd())?;
        loop {
            self.io.arm_accept();
            self.io.arm_timeout(Instant::now())?;
            self.io.ring.submit_and_wait()?;
            self.lent.refresh();
            self.io.max_connections = self.lent.max_connections();
            self.io.ring.completions(&mut cqes);
            let state = self.lent.state;
            let changed = state != self.io.seen;
            self.io.seen = state;
            let mut env = self.lent.env();
            // What completed in this turn is delivered first (as draining
            // when the drain began, like the epoll workers' reads at the
            // start of theirs), so that the drain sees every request that
            // arrived before it.
            for c in cqes.drain(..) {
                self.io.complete(c, &mut env);
            }
            if changed {
                match state {
                    State::Draining => self.io.begin_drain(&mut env),
                    State::Forced => self.io.force_close(&mut env),
                    State::Running => {}
                }
            }
            self.io.resume_accepting(env.now);
            self.io.fire_timers(&mut env);
            self.io.sweep(env.now);
            if self.io.seen != State::Running && self.io.conns.is_empty() {
                return Ok(());
            }
        }
    }
}

impl Io {
    fn complete(&mut self, c: Completion, env: &mut Env<'_, HttpObserver>) {
        match c.op {
            Op::Accept => self.on_accept(c, env),
            // The lifecycle is read at the top of every turn; the read only
            // had to end the wait.
            Op::Bell => {
                if let Err(e) = self.ring.arm_bell(self.bell.as_fd()) {
                    tracing::error!(worker = self.id, error = %e, "cannot re-arm the bell");
                }
            }
            Op::Timeout => self.timeout_at = None,
            Op::Cancel => {}
            Op::Queued => self.queue_watched = false,
            Op::Recv | Op::Send | Op::Poll => self.on_conn(c, env),
        }
    }

    fn arm_accept(&mut self) {
        if self.accept_armed || self.queue_watched || self.accept_paused_until.is_some() {
            return;
        }
        let Some(l) = &self.listener else {
            return;
        };
        match self.ring.accept_multi(l.as_fd(), 0) {
            Ok(()) => self.accept_armed = true,
            Err(e) => tracing::error!(worker = self.id, error = %e, "cannot arm accept"),
        }
    }

    /// One ring timeout for the earliest thing the loop must wake for.
    fn arm_timeout(&mut self, now: Instant) -> io::Result<()> {
        let mut at = self.next_sweep;
        if let Some(t) = self.timers.next_deadline() {
            at = at.min(t);
        }
        if let Some(t) = self.accept_paused_until {
            at = at.min(t);
        }
        if self.timeout_at.is_none_or(|armed| at < armed) {
            self.ring.timeout(at.saturating_duration_since(now))?;
            self.timeout_at = Some(at);
        }
        Ok(())
    }

    fn on_accept(&mut self, c: Completion, env: &mut Env<'_, HttpObserver>) {
        if !c.more {
            self.accept_armed = false;
        }
        if c.result >= 0 {
            return self.admit(Ring::accepted(c.result), None, env);
        }
        match -c.result {
            libc::ECANCELED => {}
            libc::EMFILE | libc::ENFILE => self.out_of_descriptors(-c.result, env),
            // The peer gave up between SYN and accept: not our error.
            libc::ECONNABORTED | libc::EPROTO | libc::EAGAIN | libc::EINTR => {}
            e => {
                let e = io::Error::from_raw_os_error(e);
                tracing::warn!(worker = self.id, error = %e, "accept failed");
            }
        }
    }

    fn admit(&mut self, stream: Stream, peer: Option<SocketAddr>, env: &mut Env<'_, HttpObserver>) {
        let Some(stream) = Reserve::process().reclaim(stream, |s| refuse(s, &self.metrics)) else {
            return;
        };
        // A multishot accept gives no address. A peer that reset before we
        // asked for it is still a connection the kernel handed us: it goes
        // through the engine as an unknown peer, so that its end is
        // accounted as any other's (under TLS, a handshake that failed).
        let peer = peer
            .or_else(|| stream.peer_addr().ok())
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        let Some(admission) = Admission::take(
            &self.life,
            self.max_connections,
            &stream,
            peer.ip(),
            &self.metrics,
        ) else {
            return;
        };
        let _ = stream.set_nodelay();
        // A listener bound to one address already says where connections
        // arrive; only a wildcard bind needs getsockname.
        let local = match self.local {
            Some(addr) => addr,
            None => stream.local_addr().unwrap_or(peer),
        };
        let engine = match crate::tls::wrap(self.tls.as_deref(), Connection::new(peer, local, env))
        {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "TLS session not created");
                return;
            }
        };
        self.metrics.connection_accepted();
        let token = self
            .conns
            .insert_with(|_| Conn::new(stream, engine, admission));
        if self.drain_begun {
            // Accepted by the ring before its accept was cancelled.
            if let Some(c) = self.conns.get_mut(token) {
                let outcome = c.engine.drain(env);
                self.life
                    .in_flight
                    .fetch_add(u64::from(outcome.in_flight), Ordering::AcqRel);
                self.life
                    .idle_closed
                    .fetch_add(u64::from(outcome.closed_idle), Ordering::AcqRel);
            }
        }
        self.drive(token, env);
    }

    /// EMFILE/ENFILE: one queued connection is refused through the
    /// process's spare descriptor. A ring accept allocates its descriptor
    /// before it looks at the queue, so it fails at once even when nobody
    /// is waiting: unless a connection was just refused (there may be more
    /// queued), the ring watches the queue instead, and without a spare it
    /// stops accepting briefly.
    fn out_of_descriptors(&mut self, errno: i32, env: &Env<'_, HttpObserver>) {
        let Some(listener) = &self.listener else {
            return;
        };
        let refusal =
            Reserve::process().refuse_one(|| listener.accept(), |s| refuse(s, &self.metrics));
        if self.accept_armed {
            let _ = self.ring.cancel(Op::Accept, 0);
            self.accept_armed = false;
        }
        match refusal {
            // More may be queued: the next turn's accept finds out.
            Refusal::Refused => {}
            Refusal::Missed => match self.ring.watch_queue(listener.as_fd()) {
                Ok(()) => self.queue_watched = true,
                Err(_) => self.accept_paused_until = Some(env.now + ACCEPT_BACKOFF),
            },
            Refusal::NoSpare => self.accept_paused_until = Some(env.now + ACCEPT_BACKOFF),
        }
        let e = io::Error::from_raw_os_error(errno);
        tracing::warn!(worker = self.id, error = %e, ?refusal, "out of file descriptors");
    }

    fn resume_accepting(&mut self, now: Instant) {
        if self.accept_paused_until.is_some_and(|t| now >= t) {
            self.accept_paused_until = None;
        }
    }

    /// Wakes the engines whose deadline has come.
    fn fire_timers(&mut self, env: &mut Env<'_, HttpObserver>) {
        while let Some((at, token)) = self.timers.pop_due(env.now) {
            let Some(c) = self.conns.get_mut(token) else {
                continue;
            };
            if c.scheduled == Some(at) {
                c.scheduled = None;
            }
            if c.engine.next_deadline().is_some_and(|d| d <= env.now) {
                c.engine.on_timer(env);
            }
            // Also re-arms a deadline that moved later.
            self.drive(token, env);
        }
    }

    /// Once a second: idle connections give back their buffers.
    fn sweep(&mut self, now: Instant) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + SWEEP;
        for token in self.conns.tokens() {
            if let Some(c) = self.conns.get_mut(token) {
                c.shrink();
            }
        }
    }

    /// Stops accepting and forgets the listener; the ring's accept is
    /// cancelled at once so that the kernel's queue is ours to empty.
    fn stop_accepting(&mut self) -> Option<Arc<Listener>> {
        let l = self.listener.take()?;
        if self.accept_armed {
            let _ = self.ring.cancel(Op::Accept, 0);
        }
        if self.queue_watched {
            let _ = self.ring.cancel(Op::Queued, 0);
        }
        let _ = self.ring.submit();
        Some(l)
    }

    /// Stop accepting; close idle connections; let the rest finish.
    fn begin_drain(&mut self, env: &mut Env<'_, HttpObserver>) {
        if let Some(l) = self.stop_accepting() {
            // Connections the kernel already completed are ours to serve.
            while let Ok(Accepted::Stream(s, peer)) = l.accept() {
                self.admit(s, Some(peer), env);
            }
        }
        let mut in_flight = 0;
        let mut idle_closed = 0;
        for token in self.conns.tokens() {
            let Some(c) = self.conns.get_mut(token) else {
                continue;
            };
            if c.closing() {
                continue;
            }
            let outcome = c.engine.drain(env);
            in_flight += u64::from(outcome.in_flight);
            idle_closed += u64::from(outcome.closed_idle);
            self.drive(token, env);
        }
        self.drain_begun = true;
        self.life.in_flight.fetch_add(in_flight, Ordering::AcqRel);
        self.life
            .idle_closed
            .fetch_add(idle_closed, Ordering::AcqRel);
        self.life.listeners_closed.fetch_add(1, Ordering::AcqRel);
        self.life.done_bell.ring();
    }

    /// The drain deadline passed (or a second signal came): close everything.
    fn force_close(&mut self, env: &mut Env<'_, HttpObserver>) {
        drop(self.stop_accepting());
        let mut forced = 0;
        for token in self.conns.tokens() {
            if self.conns.get_mut(token).is_some_and(|c| !c.closing()) {
                forced += 1;
                self.close(token, env);
            }
        }
        self.life.forced.fetch_add(forced, Ordering::AcqRel);
    }

    pub fn schedule(&mut self, token: Token, at: Instant) {
        self.timers.schedule(at, token);
    }
}
