//! A worker thread: its epoll loop, its clock, its timers and its part of
//! the drain. Readiness is edge-triggered on connections (registered once
//! for read and write; every event runs the same drive until the socket
//! says `EAGAIN`) and level-triggered on the listener (so an accept burst
//! can be cut short without losing the wake-up). What a connection means is
//! the engine's business; this file decides only when to drive it.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::conn::Conn;
use super::lifecycle::{Lifecycle, State};
use super::slab::{Slab, Token};
use super::timers::Timers;
use crate::app::{Handler, HandlerFactory};
use crate::engine::{self, Env};
use crate::http::date::DateCache;
use crate::live::{Current, Live};
use crate::sys::epoll::{Events, Interest, Poller};
use crate::sys::eventfd::Bell;
use crate::sys::socket::{Accepted, Listener};
use crate::telemetry::{HttpObserver, WorkerMetrics};

pub(super) const LISTENER: u64 = u64::MAX;
const BELL: u64 = u64::MAX - 1;
/// Size of the per-worker read buffer: one read per wake-up for most clients.
const SCRATCH: usize = 64 * 1024;
/// How often idle connections give back their buffers.
const SWEEP: Duration = Duration::from_secs(1);

/// What a reload (SIGHUP) may change while the server runs: the engine's
/// timeouts and limits, and `--max-connections`. New values apply to the
/// next deadline or admission; nothing already decided is redone.
#[derive(Debug, Clone)]
pub struct Settings {
    pub engine: engine::Config,
    pub max_connections: usize,
}

/// Settings every worker shares.
pub struct ReactorConfig {
    /// Replaced whole by a reload; every loop checks it once per turn.
    pub settings: Arc<Live<Settings>>,
    /// HTTPS: every accepted connection is wrapped in TLS.
    pub tls: Option<Arc<crate::tls::Acceptor>>,
}

/// The controller's handle on a worker.
pub struct WorkerHandle {
    pub bell: Arc<Bell>,
    pub thread: JoinHandle<()>,
}

impl WorkerHandle {
    /// A worker that waits on no bell (a blocking model's thread): it sees
    /// the lifecycle at its next tick, so ringing its bell does nothing.
    pub fn ticking(thread: JoinHandle<()>) -> io::Result<WorkerHandle> {
        Ok(WorkerHandle {
            bell: Arc::new(Bell::new()?),
            thread,
        })
    }
}

/// Starts one worker thread per listener.
pub fn spawn(
    listeners: Vec<Arc<Listener>>,
    cfg: Arc<ReactorConfig>,
    factory: HandlerFactory,
    metrics: Vec<Arc<WorkerMetrics>>,
    life: Arc<Lifecycle>,
) -> io::Result<Vec<WorkerHandle>> {
    let mut handles = Vec::new();
    for (id, (listener, metrics)) in listeners.into_iter().zip(metrics).enumerate() {
        let bell = Arc::new(Bell::new()?);
        let poll = Poller::new()?;
        // A listener shared by all workers is registered exclusively, so a
        // new connection wakes one worker rather than all of them.
        let interest = if Arc::strong_count(&listener) > 1 {
            Interest::READ_EXCLUSIVE
        } else {
            Interest::READ
        };
        poll.add(&*listener, LISTENER, interest)?;
        poll.add(&*bell, BELL, Interest::READ)?;
        let (cfg, factory, life, bell2) =
            (cfg.clone(), factory.clone(), life.clone(), bell.clone());
        let thread = std::thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || {
                // Counts this worker as done however its loop ends, a panic included,
                // so the controller never waits for a thread that is gone.
                let _done = Done(life.clone());
                let handler = factory(id);
                let mut w = Worker::new(
                    id, poll, listener, interest, bell2, cfg, handler, metrics, life,
                );
                if let Err(e) = w.run() {
                    tracing::error!(worker = id, error = %e, "worker loop failed");
                }
            })?;
        handles.push(WorkerHandle { bell, thread });
    }
    Ok(handles)
}

/// Marks a worker finished when dropped.
struct Done(Arc<Lifecycle>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.workers_done.fetch_add(1, Ordering::AcqRel);
        self.0.done_bell.ring();
    }
}

/// What the worker lends the engine: the application, the observer, the
/// settings and the clock.
struct Shared {
    id: usize,
    handler: Box<dyn Handler>,
    observer: HttpObserver,
    cfg: Arc<ReactorConfig>,
    /// This worker's copy of the live settings.
    settings: Current<Settings>,
    date: DateCache,
    now: Instant,
    draining: bool,
}

impl Shared {
    fn env(&mut self) -> Env<'_, HttpObserver> {
        Env {
            handler: &mut *self.handler,
            observer: &mut self.observer,
            config: &self.settings.engine,
            now: self.now,
            date: self.date.value(),
            worker: self.id,
            draining: self.draining,
        }
    }
}

/// The transport's own state: descriptors, buffers, timers.
pub(super) struct Io {
    pub id: usize,
    pub poll: Poller,
    pub listener: Option<Arc<Listener>>,
    /// How the listener is registered (exclusive when shared by workers).
    pub listen_interest: Interest,
    /// The listener's address when it names one interface (not a wildcard).
    pub local: Option<SocketAddr>,
    pub bell: Arc<Bell>,
    pub metrics: Arc<WorkerMetrics>,
    pub life: Arc<Lifecycle>,
    pub conns: Slab<Conn>,
    pub timers: Timers,
    /// Read buffer shared by all connections of this worker.
    pub scratch: Vec<u8>,
    pub accept_paused_until: Option<Instant>,
    pub max_connections: usize,
    pub tls: Option<Arc<crate::tls::Acceptor>>,
    /// TLS connections hand their keys to the kernel after the handshake.
    pub ktls: bool,
    /// The canned 503 for connections over the limit.
    pub overloaded: Vec<u8>,
    /// The lifecycle state this worker last acted on.
    pub seen: State,
    next_sweep: Instant,
}

struct Worker {
    app: Shared,
    io: Io,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    fn new(
        id: usize,
        poll: Poller,
        listener: Arc<Listener>,
        listen_interest: Interest,
        bell: Arc<Bell>,
        cfg: Arc<ReactorConfig>,
        handler: Box<dyn Handler>,
        metrics: Arc<WorkerMetrics>,
        life: Arc<Lifecycle>,
    ) -> Worker {
        let now = Instant::now();
        let local = listener
            .local_addr()
            .ok()
            .filter(|a| !a.ip().is_unspecified());
        let settings = Current::new(&cfg.settings);
        let max_connections = settings.max_connections;
        let tls = cfg.tls.clone();
        Worker {
            app: Shared {
                id,
                handler,
                observer: HttpObserver::new(metrics.clone()),
                cfg,
                settings,
                date: DateCache::new(SystemTime::now()),
                now,
                draining: false,
            },
            io: Io {
                id,
                poll,
                listener: Some(listener),
                listen_interest,
                local,
                bell,
                metrics,
                life,
                conns: Slab::default(),
                timers: Timers::default(),
                scratch: vec![0; SCRATCH],
                accept_paused_until: None,
                max_connections,
                ktls: tls.as_ref().is_some_and(|a| a.kernel_tls()),
                tls,
                overloaded: engine::overloaded(),
                seen: State::Running,
                next_sweep: now + SWEEP,
            },
        }
    }

    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self
                .io
                .next_wake()
                .saturating_duration_since(Instant::now());
            self.io.poll.wait(&mut events, Some(timeout))?;
            self.app.now = Instant::now();
            self.app.date.refresh(SystemTime::now());
            if self.app.settings.refresh(&self.app.cfg.settings) {
                self.io.max_connections = self.app.settings.max_connections;
            }
            // The lifecycle first: bytes read in this wake-up after the
            // controller moved to draining are answered as draining.
            let state = self.io.life.state();
            if state != self.io.seen {
                self.io.seen = state;
                self.app.draining = true;
                let mut env = self.app.env();
                match state {
                    State::Draining => self.io.begin_drain(&mut env),
                    State::Forced => self.io.force_close(&mut env),
                    State::Running => {}
                }
            }
            let mut env = self.app.env();
            for ev in events.iter() {
                match ev.token {
                    LISTENER => self.io.accept_burst(&mut env),
                    BELL => self.io.bell.clear(),
                    t => self.io.drive(Token(t), &mut env, ev.hangup),
                }
            }
            self.io.resume_accepting(&env);
            self.io.fire_timers(&mut env);
            self.io.sweep(env.now);
            if self.io.seen != State::Running && self.io.conns.is_empty() {
                return Ok(());
            }
        }
    }
}

impl Io {
    fn next_wake(&self) -> Instant {
        let mut at = self.next_sweep;
        if let Some(t) = self.timers.next_deadline() {
            at = at.min(t);
        }
        if let Some(t) = self.accept_paused_until {
            at = at.min(t);
        }
        at
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
            self.drive(token, env, false);
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
                c.engine.shrink();
            }
        }
    }

    /// Stop accepting; close idle connections; let the rest finish.
    fn begin_drain(&mut self, env: &mut Env<'_, HttpObserver>) {
        if let Some(l) = self.listener.take() {
            // Connections the kernel already completed are ours to serve.
            while let Ok(Accepted::Stream(s, peer)) = l.accept() {
                self.admit(s, peer, env);
            }
            let _ = self.poll.delete(&*l);
        }
        let mut in_flight = 0;
        let mut idle_closed = 0;
        for token in self.conns.tokens() {
            // Whatever already arrived is a request we accepted: read it.
            self.drive(token, env, false);
            let Some(c) = self.conns.get_mut(token) else {
                continue;
            };
            let outcome = c.engine.drain(env);
            in_flight += u64::from(outcome.in_flight);
            idle_closed += u64::from(outcome.closed_idle);
            self.drive(token, env, false);
        }
        self.life.in_flight.fetch_add(in_flight, Ordering::AcqRel);
        self.life
            .idle_closed
            .fetch_add(idle_closed, Ordering::AcqRel);
        self.life.listeners_closed.fetch_add(1, Ordering::AcqRel);
        self.life.done_bell.ring();
    }

    /// The drain deadline passed (or a second signal came): close everything.
    fn force_close(&mut self, env: &mut Env<'_, HttpObserver>) {
        if let Some(l) = self.listener.take() {
            let _ = self.poll.delete(&*l);
        }
        let tokens = self.conns.tokens();
        self.life
            .forced
            .fetch_add(tokens.len() as u64, Ordering::AcqRel);
        for token in tokens {
            self.close(token, env);
        }
    }
}
