//! What every model's serving thread has in common: the things it lends
//! each connection's engine (application, observer, settings, clock),
//! admission under `--max-connections`, one engine step carried out on a
//! socket, and the accounting when a connection ends. Nothing here decides
//! anything about HTTP: [`step`] does what the engine's `poll` says.

use std::fs::File;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::Shared;
pub use crate::admission::Admission;
use crate::admission::Full;
use crate::app::Handler;
use crate::engine::observe::Limit;
use crate::engine::{self, Action, Connection, Env, Send};
use crate::http::date::DateCache;
use crate::live::Current;
use crate::reactor::{Lifecycle, Settings, State};
use crate::sys::socket::{would_block, Stream};
use crate::telemetry::{HttpObserver, WorkerMetrics};
use crate::tls::Session;

/// Size of a thread's read buffer, as in the epoll workers.
pub const SCRATCH: usize = 64 * 1024;

/// One serving thread's part: what it lends the engines it drives.
pub struct Lent {
    pub id: usize,
    handler: Box<dyn Handler>,
    observer: HttpObserver,
    shared: Shared,
    /// This thread's copy of the live settings, refreshed every turn.
    settings: Current<Settings>,
    date: DateCache,
    /// "Now" for this turn, read once per wake-up.
    pub now: Instant,
    /// The lifecycle state as of this turn.
    pub state: State,
}

impl Lent {
    pub fn new(id: usize, shared: Shared, metrics: Arc<WorkerMetrics>) -> Lent {
        Lent {
            id,
            handler: (shared.factory)(id),
            observer: HttpObserver::new(metrics),
            settings: Current::new(&shared.cfg.settings),
            shared,
            date: DateCache::new(SystemTime::now()),
            now: Instant::now(),
            state: State::Running,
        }
    }

    /// A new turn: the clock, the `Date` value and the lifecycle state.
    pub fn refresh(&mut self) {
        self.now = Instant::now();
        self.date.refresh(SystemTime::now());
        self.state = self.shared.life.state();
        self.settings.refresh(&self.shared.cfg.settings);
    }

    /// `--max-connections` as the last reload left it.
    pub fn max_connections(&mut self) -> usize {
        self.settings.refresh(&self.shared.cfg.settings);
        self.settings.max_connections
    }

    pub fn env(&mut self) -> Env<'_, HttpObserver> {
        Env {
            handler: &mut *self.handler,
            observer: &mut self.observer,
            config: &self.settings.engine,
            now: self.now,
            date: self.date.value(),
            worker: self.id,
            draining: self.state != State::Running,
        }
    }

    /// The HTTPS acceptor, for a transport that wraps its engines itself.
    pub fn tls(&self) -> Option<Arc<crate::tls::Acceptor>> {
        self.shared.cfg.tls.clone()
    }

    /// This driver's observer, for a transport that tells telemetry about
    /// itself (the user stack's TCP figures).
    pub fn observer_mut(&mut self) -> &mut HttpObserver {
        &mut self.observer
    }

    pub fn metrics(&self) -> &Arc<WorkerMetrics> {
        self.observer.metrics()
    }

    pub fn life(&self) -> &Arc<Lifecycle> {
        &self.shared.life
    }

    /// A new engine for a connection of the userland stack (behind TLS
    /// when the server serves HTTPS); `None` when no TLS session could be
    /// made (logged).
    pub fn connection_at(
        &mut self,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Option<Session<HttpObserver>> {
        let engine = Connection::new(peer, local, &self.env());
        self.wrap(engine)
    }

    fn wrap(&mut self, engine: Connection<HttpObserver>) -> Option<Session<HttpObserver>> {
        match crate::tls::wrap(self.shared.cfg.tls.as_deref(), engine) {
            Ok(session) => {
                self.metrics().connection_accepted();
                Some(session)
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS session not created");
                None
            }
        }
    }

    /// A new engine for an accepted stream (behind TLS when the server
    /// serves HTTPS); `None` when no TLS session could be made (logged).
    pub fn connection(
        &mut self,
        stream: &Stream,
        peer: SocketAddr,
    ) -> Option<Session<HttpObserver>> {
        let _ = stream.set_nodelay();
        let local = stream.local_addr().unwrap_or(peer);
        let engine = Connection::new(peer, local, &self.env());
        self.wrap(engine)
    }

    /// The drain began: what the engine found is counted for the span.
    pub fn drain(&mut self, engine: &mut Session<HttpObserver>) {
        let outcome = engine.drain(&mut self.env());
        let life = self.life();
        life.in_flight
            .fetch_add(u64::from(outcome.in_flight), Ordering::AcqRel);
        life.idle_closed
            .fetch_add(u64::from(outcome.closed_idle), Ordering::AcqRel);
    }

    /// Requests the engine completed during a drain, for the counts.
    pub fn collect_drained(&self, engine: &mut Session<HttpObserver>) {
        let drained = engine.take_drained();
        if drained > 0 {
            self.life()
                .drained
                .fetch_add(u64::from(drained), Ordering::AcqRel);
        }
    }

    /// The connection ends: the engine accounts for what was in flight
    /// (owned by us when `forced`), then the counts. The stream (dropped
    /// by the caller) and the admission go with it.
    pub fn close(&mut self, mut engine: Session<HttpObserver>, forced: bool) {
        engine.finish(&mut self.env(), forced);
        self.collect_drained(&mut engine);
        if forced {
            self.life().forced.fetch_add(1, Ordering::AcqRel);
        }
        self.metrics().connection_closed();
    }
}

impl Admission {
    /// Takes a place, or refuses the connection with the engine's canned
    /// 503 (as the epoll model does; 429 when the client holds its share)
    /// and returns `None`.
    pub fn take(
        life: &Arc<Lifecycle>,
        max: usize,
        stream: &Stream,
        peer: IpAddr,
        metrics: &WorkerMetrics,
    ) -> Option<Admission> {
        match Self::admit(life, max, peer) {
            Ok(a) => Some(a),
            Err(Full::Client) => {
                refuse_client(stream, metrics);
                None
            }
            Err(Full::Server) => {
                refuse(stream, metrics);
                None
            }
        }
    }

    /// Takes a place for a connection that has no socket to refuse on (the
    /// userland stack's). When the server or the client is full, the
    /// refusal is counted and the error holds the answer to write before
    /// the close, as [`refuse`] writes it (none under HTTPS).
    pub fn enter(
        life: &Arc<Lifecycle>,
        max: usize,
        peer: IpAddr,
        metrics: &WorkerMetrics,
    ) -> Result<Admission, Option<Vec<u8>>> {
        let full = match Self::admit(life, max, peer) {
            Ok(a) => return Ok(a),
            Err(full) => full,
        };
        metrics.connection_rejected();
        if full == Full::Client {
            metrics.limit_refused(Limit::ConnectionsPerClient);
        }
        let plaintext = PLAINTEXT_REFUSALS.load(Ordering::Relaxed);
        Err(plaintext.then(|| match full {
            Full::Client => engine::too_many_from_client().to_vec(),
            Full::Server => engine::overloaded(),
        }))
    }
}

/// Whether a refused connection is told why in plaintext: not under HTTPS,
/// where a TLS client could not read it (it is just closed, as the epoll
/// model does). Every connection of a model's process is one or the other.
static PLAINTEXT_REFUSALS: AtomicBool = AtomicBool::new(true);

/// Set once by the model's spawn: false when it serves HTTPS.
pub fn refusals_in_plaintext(yes: bool) {
    PLAINTEXT_REFUSALS.store(yes, Ordering::Relaxed);
}

fn refuse_with(stream: &Stream, answer: &[u8]) {
    if PLAINTEXT_REFUSALS.load(Ordering::Relaxed) {
        // Best effort: the send buffer of a fresh connection has room, so
        // even a blocking socket takes this at once.
        let _ = stream.write(answer);
    }
    let _ = stream.shutdown_write();
}

/// For a socket transport about to drop a connection's stream: a peer the
/// engine gave up on is reset rather than sent a FIN behind output it will
/// never read (see [`crate::engine::Connection::gave_up`]).
pub fn let_go(stream: &Stream, engine: &Session<HttpObserver>) {
    if engine.gave_up() {
        let _ = stream.set_linger_zero();
    }
}

/// Refuses a connection over `--max-connections` with the engine's canned
/// 503, as the epoll model does.
pub fn refuse(stream: &Stream, metrics: &WorkerMetrics) {
    metrics.connection_rejected();
    refuse_with(stream, &engine::overloaded());
}

/// Refuses a connection over `--max-connections-per-client` with the
/// engine's canned 429.
pub fn refuse_client(stream: &Stream, metrics: &WorkerMetrics) {
    metrics.connection_rejected();
    metrics.limit_refused(Limit::ConnectionsPerClient);
    refuse_with(stream, engine::too_many_from_client());
}

/// What one [`step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Bytes moved or the engine's state changed: step again.
    Moved,
    /// A read delivered this many bytes.
    Read(usize),
    /// The socket would block (for a blocking socket: its timeout passed),
    /// writing when `write`, else reading.
    Blocked { write: bool },
    /// Nothing to send, and no read wanted (or allowed): the engine waits
    /// for a timer, a drain or (when reads were not allowed) readiness.
    Idle,
    /// The connection must end (the engine said so, or the socket failed).
    Close,
}

/// What [`step`] moves bytes through: a kernel socket, or a connection of
/// the userland TCP/IP stack. Errors are the socket's: `EAGAIN` for "would
/// block", anything else ends the connection.
pub trait Pipe {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn write(&self, data: &[u8]) -> io::Result<usize>;
    /// A write with more to follow at once (`MSG_MORE` on a socket).
    fn write_more(&self, data: &[u8]) -> io::Result<usize>;
    fn sendfile(&self, file: &File, offset: &mut u64, count: usize) -> io::Result<usize>;
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Pipe for Stream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Stream::read(self, buf)
    }
    fn write(&self, data: &[u8]) -> io::Result<usize> {
        Stream::write(self, data)
    }
    fn write_more(&self, data: &[u8]) -> io::Result<usize> {
        Stream::write_more(self, data)
    }
    fn sendfile(&self, file: &File, offset: &mut u64, count: usize) -> io::Result<usize> {
        Stream::sendfile(self, file, offset, count)
    }
    fn shutdown_write(&self) -> io::Result<()> {
        Stream::shutdown_write(self)
    }
}

/// Asks the engine what to do once and does it on `stream`: a send, a
/// `sendfile`, a shutdown of the write side, or — when the engine waits and
/// wants input, and `may_read` — one read.
pub fn step(
    stream: &impl Pipe,
    engine: &mut Session<HttpObserver>,
    env: &mut Env<'_, HttpObserver>,
    scratch: &mut [u8],
    may_read: bool,
) -> Step {
    match engine.poll(env) {
        Action::Send(Send::Bytes { data, more }) => {
            let sent = if more {
                stream.write_more(data)
            } else {
                stream.write(data)
            };
            match sent {
                // A stream socket never takes nothing from a non-empty
                // buffer; if it did, stop rather than spin.
                Ok(0) => Step::Close,
                Ok(n) => {
                    env.observer.metrics().bytes_sent(n as u64);
                    engine.advance(env, n);
                    Step::Moved
                }
                Err(e) if would_block(&e) => Step::Blocked { write: true },
                Err(_) => Step::Close,
            }
        }
        Action::Send(Send::File { file, offset, len }) => {
            let mut at = offset;
            let count = len.min(1 << 30) as usize;
            match stream.sendfile(file, &mut at, count) {
                // The file shrank under us: the promised length cannot be met.
                Ok(0) => Step::Close,
                Ok(n) => {
                    env.observer.metrics().bytes_sent(n as u64);
                    engine.advance(env, n);
                    Step::Moved
                }
                Err(e) if would_block(&e) => Step::Blocked { write: true },
                Err(_) => Step::Close,
            }
        }
        Action::ShutdownWrite => {
            if stream.shutdown_write().is_err() {
                return Step::Close;
            }
            engine.write_shut(env);
            Step::Moved
        }
        Action::Close => Step::Close,
        Action::Wait => {
            if !may_read || !engine.wants_read(env) {
                return Step::Idle;
            }
            match stream.read(scratch) {
                Ok(0) => {
                    engine.receive_eof(env);
                    Step::Read(0)
                }
                Ok(n) => {
                    engine.receive(env, &scratch[..n]);
                    Step::Read(n)
                }
                Err(e) if would_block(&e) => Step::Blocked { write: false },
                Err(_) => Step::Close,
            }
        }
    }
}
