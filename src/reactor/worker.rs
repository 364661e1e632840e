//! A worker thread's event loop: accept, read, decode, dispatch, write,
//! time out, drain. Readiness is edge-triggered on connections (registered
//! once for read and write; every event runs the same `drive` routine until
//! the socket says `EAGAIN`) and level-triggered on the listener (so an
//! accept burst can be cut short without losing the wake-up).

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::conn::{self, Conn, Delayed, Phase, ReqMeta};
use super::lifecycle::{Lifecycle, State};
use super::slab::{Slab, Token};
use super::timers::Timers;
use crate::app::{Ctx, Handler, HandlerFactory, Request, Response};
use crate::http::date::DateCache;
use crate::http::encode;
use crate::http::{Decoded, HttpError, Limits};
use crate::sys::epoll::{Events, Interest, Poller};
use crate::sys::eventfd::Bell;
use crate::sys::socket::{would_block, Accepted, Listener, Reserve};
use crate::telemetry::{RequestSpan, RequestSpanInfo, WorkerMetrics, WsDirection, WsSpan};
use crate::ws::session::Session;

const LISTENER: u64 = u64::MAX;
const BELL: u64 = u64::MAX - 1;
/// Size of the per-worker read buffer: one read per wake-up for most clients.
const SCRATCH: usize = 64 * 1024;
/// Input a connection may buffer beyond the limits of one request.
const MAX_PENDING_INPUT: usize = 256 * 1024;
/// Output produced per connection before letting others run.
const MAX_OUTPUT_BATCH: usize = 256 * 1024;
/// How long a closing connection may take to read our final bytes.
const LINGER: Duration = Duration::from_secs(2);
/// Pause of the accept loop when descriptors run out and no reserve is left.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The canned answer for a connection over `--max-connections`.
const OVERLOADED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 33\r\nConnection: close\r\nRetry-After: 1\r\n\r\n{\"error\":\"too many connections\"}\n";

/// Settings every worker shares.
pub struct ReactorConfig {
    pub limits: Limits,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// The controller's handle on a worker.
pub struct WorkerHandle {
    pub bell: Arc<Bell>,
    pub thread: JoinHandle<()>,
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
        let shared = Arc::strong_count(&listener) > 1;
        let interest = if shared {
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
                let mut w = Worker::new(id, poll, listener, bell2, cfg, handler, metrics, life);
                w.listen_interest = interest;
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

struct Worker {
    id: usize,
    poll: Poller,
    listener: Option<Arc<Listener>>,
    bell: Arc<Bell>,
    cfg: Arc<ReactorConfig>,
    handler: Box<dyn Handler>,
    metrics: Arc<WorkerMetrics>,
    life: Arc<Lifecycle>,
    conns: Slab<Conn>,
    timers: Timers,
    /// Read buffer shared by all connections of this worker.
    scratch: Vec<u8>,
    /// Output being assembled for the connection being driven.
    out: Vec<u8>,
    date: DateCache,
    now: Instant,
    reserve: Reserve,
    /// How the listener is registered (exclusive when shared by workers).
    listen_interest: Interest,
    /// The listener's address when it names one interface (not a wildcard).
    local: Option<std::net::SocketAddr>,
    accept_paused_until: Option<Instant>,
    /// The state this worker last acted on.
    seen: State,
    next_sweep: Instant,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    fn new(
        id: usize,
        poll: Poller,
        listener: Arc<Listener>,
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
        Worker {
            id,
            poll,
            listener: Some(listener),
            bell,
            cfg,
            handler,
            metrics,
            life,
            conns: Slab::default(),
            timers: Timers::default(),
            scratch: vec![0; SCRATCH],
            out: Vec::with_capacity(SCRATCH),
            date: DateCache::new(SystemTime::now()),
            now,
            reserve: Reserve::new(),
            listen_interest: Interest::READ,
            local,
            accept_paused_until: None,
            seen: State::Running,
            next_sweep: now + Duration::from_secs(1),
        }
    }

    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self
                .next_wake()
                .map(|at| at.saturating_duration_since(Instant::now()));
            self.poll.wait(&mut events, timeout)?;
            self.now = Instant::now();
            self.date.refresh(SystemTime::now());
            for ev in events.iter() {
                match ev.token {
                    LISTENER => self.accept_burst(),
                    BELL => self.bell.clear(),
                    t => self.drive_after(Token(t), ev.hangup),
                }
            }
            self.fire_timers();
            if self.now >= self.next_sweep {
                self.sweep();
            }
            let state = self.life.state();
            if state != self.seen {
                self.seen = state;
                match state {
                    State::Draining => self.begin_drain(),
                    State::Forced => self.force_close(),
                    State::Running => {}
                }
            }
            if self.seen != State::Running && self.conns.is_empty() {
                return Ok(());
            }
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        let mut at = self.next_sweep;
        if let Some(t) = self.timers.next_deadline() {
            at = at.min(t);
        }
        if let Some(t) = self.accept_paused_until {
            at = at.min(t);
        }
        Some(at)
    }

    // ---- accepting ----

    fn accept_burst(&mut self) {
        // Bounded so one busy listener cannot starve the connections.
        for _ in 0..64 {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok(Accepted::Stream(stream, peer)) => self.admit(stream, peer),
                Ok(Accepted::None) => return,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                    self.out_of_descriptors(&e);
                    return;
                }
                Err(e) => {
                    tracing::warn!(worker = self.id, error = %e, "accept failed");
                    return;
                }
            }
        }
    }

    fn admit(&mut self, stream: crate::sys::socket::Stream, peer: std::net::SocketAddr) {
        let open = self.life.open.fetch_add(1, Ordering::AcqRel) + 1;
        if open > self.cfg.max_connections {
            self.life.open.fetch_sub(1, Ordering::AcqRel);
            self.metrics.connection_rejected();
            // Best effort: the socket buffer of a fresh connection has room.
            let _ = stream.write(OVERLOADED);
            let _ = stream.shutdown_write();
            return;
        }
        let _ = stream.set_nodelay();
        // A listener bound to one address already says where connections
        // arrive; only a wildcard bind needs getsockname.
        let local = match self.local {
            Some(addr) => addr,
            None => stream.local_addr().unwrap_or(peer),
        };
        let deadline = self.now + self.cfg.header_timeout;
        let token = self
            .conns
            .insert_with(|_| Conn::new(stream, peer, local, deadline));
        let conn = self.conns.get_mut(token).map(|c| &c.stream);
        if let Some(stream) = conn {
            if let Err(e) = self.poll.add(stream, token.0, Interest::READ_WRITE_EDGE) {
                tracing::warn!(error = %e, "epoll registration failed");
                self.close(token);
                return;
            }
        }
        self.metrics.connection_accepted();
        // Data often arrives with the handshake's last ACK: try it now.
        self.drive(token);
    }

    /// EMFILE/ENFILE: free the reserve descriptor, take one connection off
    /// the queue, refuse it, and restore the reserve; without a reserve,
    /// stop watching the listener briefly rather than spin on it.
    fn out_of_descriptors(&mut self, e: &io::Error) {
        let Some(listener) = &self.listener else {
            return;
        };
        if self.reserve.release() {
            if let Ok(Accepted::Stream(stream, _)) = listener.accept() {
                let _ = stream.write(OVERLOADED);
                self.metrics.connection_rejected();
            }
            self.reserve.restore();
        } else {
            let _ = self.poll.delete(listener);
            self.accept_paused_until = Some(self.now + ACCEPT_BACKOFF);
        }
        tracing::warn!(worker = self.id, error = %e, "out of file descriptors; refused a connection");
    }

    // ---- driving a connection ----

    /// Runs a connection as far as it can go without blocking: flush output,
    /// read input, answer complete requests, repeat.
    fn drive(&mut self, token: Token) {
        self.drive_after(token, false)
    }

    /// [`Worker::drive`] for an epoll event; `hangup` when the event reported
    /// the peer's FIN or an error, which must be read to be seen.
    fn drive_after(&mut self, token: Token, hangup: bool) {
        // A read that returned less than the buffer emptied the socket: with
        // edge-triggered readiness, data arriving later raises a new event,
        // so a second read that would only say EAGAIN is skipped.
        let mut drained = false;
        loop {
            match self.flush(token) {
                Ok(true) => {}
                Ok(false) => return, // the socket is full: wait for EPOLLOUT
                Err(()) => return self.close(token),
            }
            let Some(c) = self.conns.get_mut(token) else {
                return;
            };
            if c.ws.is_some() {
                return self.ws_drive(token);
            }
            if c.close_after_write {
                return self.finish(token);
            }
            if c.phase == Phase::Lingering {
                return self.linger_read(token);
            }
            if c.delayed.is_some() {
                return;
            }
            // Input already buffered (left over after a held-back response).
            if !c.rbuf.is_empty() {
                let buffered = std::mem::take(&mut c.rbuf);
                let used = self.process(token, &buffered);
                let Some(c) = self.conns.get_mut(token) else {
                    return;
                };
                c.rbuf = buffered;
                c.rbuf.drain(..used);
                if used > 0 || self.out_pending(token) {
                    continue;
                }
            }
            if drained && !hangup {
                return;
            }
            match self.read(token) {
                ReadOutcome::Data(d) => {
                    drained = d;
                    continue;
                }
                ReadOutcome::Blocked => return,
                ReadOutcome::Closed => return self.on_eof(token),
                ReadOutcome::Error => return self.close(token),
            }
        }
    }

    fn out_pending(&mut self, token: Token) -> bool {
        !self.out.is_empty() || self.conns.get_mut(token).is_some_and(|c| c.has_output())
    }

    /// Reads once into the scratch buffer and processes what arrived.
    fn read(&mut self, token: Token) -> ReadOutcome {
        let Some(c) = self.conns.get_mut(token) else {
            return ReadOutcome::Error;
        };
        if c.rbuf.len()
            > self.cfg.limits.max_head + self.cfg.limits.max_body as usize + MAX_PENDING_INPUT
        {
            // A pipelining client far ahead of us: stop reading until we catch up.
            return ReadOutcome::Blocked;
        }
        let n = match c.stream.read(&mut self.scratch) {
            Ok(0) => return ReadOutcome::Closed,
            Ok(n) => n,
            Err(e) if would_block(&e) => return ReadOutcome::Blocked,
            Err(_) => return ReadOutcome::Error,
        };
        if c.phase == Phase::Idle {
            c.phase = Phase::Reading;
            c.deadline = self.now + self.cfg.header_timeout;
        } else if c.phase == Phase::Reading && c.decoder.in_progress() {
            // A body making progress keeps its connection alive.
            c.deadline = self.now + self.cfg.header_timeout;
        }
        if c.rbuf.is_empty() {
            // Fast path: decode straight from the scratch buffer; keep only leftovers.
            let scratch = std::mem::take(&mut self.scratch);
            let used = self.process(token, &scratch[..n]);
            if let Some(c) = self.conns.get_mut(token) {
                c.rbuf.extend_from_slice(&scratch[used..n]);
            }
            self.scratch = scratch;
        } else {
            c.rbuf.extend_from_slice(&self.scratch[..n]);
        }
        ReadOutcome::Data(n < self.scratch.len())
    }

    /// Decodes and answers requests from `input`; returns bytes consumed.
    /// Stops at a response that must be sent before the next one can be
    /// produced (a file, a stream, a held-back or final response).
    fn process(&mut self, token: Token, input: &[u8]) -> usize {
        let mut at = 0;
        let limits = self.cfg.limits;
        loop {
            let Some(c) = self.conns.get_mut(token) else {
                return at;
            };
            if c.close_after_write
                || c.delayed.is_some()
                || c.file.is_some()
                || c.stream_body.is_some()
                || c.ws.is_some()
            {
                return at;
            }
            if self.out.len() > MAX_OUTPUT_BATCH || at >= input.len() {
                return at;
            }
            let mut storage = [httparse::EMPTY_HEADER; 100];
            // The decoder leaves the connection while its request is served,
            // so the handler can run with the worker borrowed mutably.
            let mut decoder = std::mem::take(&mut c.decoder);
            let decoded = decoder.decode(
                &input[at..],
                &mut storage[..limits.max_headers.min(100)],
                &limits,
            );
            let step = self.step(token, decoded);
            if let Some(c) = self.conns.get_mut(token) {
                c.decoder = decoder;
            }
            match step {
                Step::Wait => return at,
                Step::Consumed(n) => at += n,
                Step::Refused => return input.len(),
            }
        }
    }

    /// Acts on one decoder result.
    fn step(&mut self, token: Token, decoded: Result<Decoded<'_>, HttpError>) -> Step {
        let Some(c) = self.conns.get_mut(token) else {
            return Step::Refused;
        };
        let (peer, local) = (c.peer, c.local);
        {
            match decoded {
                Ok(Decoded::Incomplete { send_continue }) => {
                    if send_continue {
                        self.out.extend_from_slice(encode::CONTINUE);
                    }
                    if c.phase != Phase::Reading {
                        c.phase = Phase::Reading;
                        c.deadline = self.now + self.cfg.header_timeout;
                    }
                    // Everything from `at` stays buffered until complete.
                    Step::Wait
                }
                Ok(Decoded::Request {
                    head,
                    body,
                    consumed,
                }) => {
                    c.phase = Phase::Busy;
                    c.requests += 1;
                    let req = Request {
                        method: head.method,
                        path: head.path,
                        query: head.query,
                        version: head.version,
                        headers: head.headers,
                        body,
                        peer,
                        local,
                    };
                    let meta_base = (head.version, head.keep_alive, head.keep_alive_requested);
                    self.dispatch(token, &req, meta_base);
                    Step::Consumed(consumed)
                }
                Err(e) => {
                    self.refuse(token, e);
                    Step::Refused
                }
            }
        }
    }

    /// Runs the handler for one request and writes (or holds back) its answer.
    fn dispatch(
        &mut self,
        token: Token,
        req: &Request<'_>,
        base: (crate::http::Version, bool, bool),
    ) {
        let (version, keep_alive, keep_alive_requested) = base;
        let route = self.handler.route(req);
        let draining = self.seen != State::Running;
        let mut span = RequestSpan::start(&RequestSpanInfo {
            method: req.method,
            route,
            path: req.path,
            version: version.as_str(),
            peer: req.peer,
            local: req.local,
            user_agent: req.header_str("user-agent"),
            traceparent: req.header_str("traceparent"),
            tracestate: req.header_str("tracestate"),
            draining,
        });
        if draining {
            span.mark_draining();
        }
        self.metrics.request_started();
        let mut ctx = Ctx {
            worker: self.id,
            draining,
            now: self.now,
            route,
        };
        let handler = &mut self.handler;
        // Log lines written while the handler runs carry the request's trace id.
        let guard = span.enter();
        let result = catch_unwind(AssertUnwindSafe(|| handler.call(req, &mut ctx)));
        if let Ok(r) = &result {
            // Written at dispatch: the status and body size are known, the
            // time on the wire is not (nor a held-back response's delay).
            crate::telemetry::access_log(&crate::telemetry::AccessLogEntry {
                method: req.method,
                path: req.path,
                version: version.as_str(),
                status: r.status,
                bytes: r.body.len().unwrap_or(0),
                duration: Instant::now().saturating_duration_since(self.now),
                peer: req.peer,
                user_agent: req.header_str("user-agent"),
            });
        }
        drop(guard);
        let response = match result {
            Ok(r) => r,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                tracing::error!(worker = self.id, route, panic = %msg, "handler panicked; answered 500");
                Response::error(500, "internal server error")
            }
        };
        let meta = ReqMeta {
            version,
            keep_alive,
            keep_alive_requested,
            head: req.is_head(),
            method: crate::telemetry::metrics::method_label(req.method),
            route,
            started: self.now,
            span,
        };

        match response.delay {
            Some(d) if !d.is_zero() => {
                let at = self.now + d;
                if let Some(c) = self.conns.get_mut(token) {
                    c.delayed = Some(Delayed { at, response, meta });
                    self.timers.schedule(at, token);
                }
            }
            _ => self.respond(token, response, meta),
        }
    }

    /// Encodes a response for a connection and records its telemetry.
    fn respond(&mut self, token: Token, response: Response, meta: ReqMeta) {
        let status = response.status;
        let closing = self.seen != State::Running;
        let ws_span = response
            .upgrade
            .is_some()
            .then(|| WsSpan::start(&meta.span, meta.route));
        let meta_keep_alive = meta.keep_alive;
        let written =
            conn::write_response(&mut self.out, self.date.value(), &meta, response, closing);
        let body_follows = written.file.is_some() || written.stream.is_some();
        let pending = if body_follows {
            Some((meta, status))
        } else {
            self.complete(meta, status, None);
            None
        };
        let Some(c) = self.conns.get_mut(token) else {
            return;
        };
        c.file = written.file;
        c.stream_body = written.stream;
        // With a body to send, the request ends when the kernel has it all.
        c.body_meta = pending;
        if let Some(upgrade) = written.upgrade {
            // The 101 is in the output buffer; every byte after it belongs
            // to the WebSocket session.
            let mut session = Session::from_upgrade(upgrade, self.now);
            if closing {
                session.start_close(1001, "server shutting down", self.now);
            }
            c.ws = Some(Box::new(session));
            c.ws_span = ws_span;
            c.phase = Phase::Busy;
            self.metrics.websocket_opened();
            return;
        }
        if written.close {
            c.close_after_write = true;
            // We chose to close (drain, the application) while the client
            // may already be sending its next request.
            c.linger = meta_keep_alive;
        }
        if !c.close_after_write && !body_follows {
            c.phase = Phase::Idle;
            c.deadline = self.now + self.cfg.idle_timeout;
        }
    }

    /// A request is over: its duration, metrics, span and drain count.
    fn complete(&self, meta: ReqMeta, status: u16, error: Option<&str>) {
        let secs = Instant::now()
            .saturating_duration_since(meta.started)
            .as_secs_f64();
        self.metrics
            .request_finished(meta.method, meta.route, status, secs);
        if self.seen == State::Draining && error.is_none() {
            self.life.drained.fetch_add(1, Ordering::AcqRel);
        }
        meta.span.finish(status, error);
    }

    /// Answers a protocol error (or a head timeout) and closes after it.
    fn refuse(&mut self, token: Token, e: HttpError) {
        let Some(c) = self.conns.get_mut(token) else {
            return;
        };
        let (peer, local) = (c.peer, c.local);
        tracing::debug!(peer = %peer, status = e.status(), reason = e.reason(), "refused request");
        c.close_after_write = true;
        c.linger = true;
        c.rbuf.clear();
        // A refusal is a request too: it gets a span (with `error.type`) and
        // a place in the duration histogram, without a route.
        let span = RequestSpan::start(&RequestSpanInfo {
            method: "",
            route: "",
            path: "",
            version: "1.1",
            peer,
            local,
            user_agent: None,
            traceparent: None,
            tracestate: None,
            draining: self.seen != State::Running,
        });
        let body =
            serde_json::to_vec(&serde_json::json!({ "error": e.reason() })).unwrap_or_default();
        encode::head(
            &mut self.out,
            crate::http::Version::Http11,
            e.status(),
            self.date.value(),
            encode::Framing::Length(body.len() as u64),
            encode::ConnHeader::Close,
            [("Content-Type", &b"application/json"[..])],
        );
        self.out.extend_from_slice(&body);
        self.metrics.request_started();
        let meta = ReqMeta {
            version: crate::http::Version::Http11,
            keep_alive: false,
            keep_alive_requested: false,
            head: false,
            method: "_OTHER",
            route: "",
            started: self.now,
            span,
        };
        self.complete(meta, e.status(), Some(e.kind()));
    }

    /// Writes pending output: leftovers, this round's output, file, stream.
    /// `Ok(true)` when everything went out, `Ok(false)` when the socket is full.
    fn flush(&mut self, token: Token) -> Result<bool, ()> {
        loop {
            let Some(c) = self.conns.get_mut(token) else {
                self.out.clear();
                return Err(());
            };
            // Older leftovers first, then what was produced this round.
            let pending: &[u8] = if c.wpos < c.wbuf.len() {
                &c.wbuf[c.wpos..]
            } else {
                &self.out
            };
            if !pending.is_empty() {
                let from_wbuf = c.wpos < c.wbuf.len();
                let sent = if c.file.is_some() {
                    c.stream.write_more(pending)
                } else {
                    c.stream.write(pending)
                };
                match sent {
                    Ok(n) => {
                        self.metrics.bytes_sent(n as u64);
                        if from_wbuf {
                            c.wpos += n;
                            if c.wpos >= c.wbuf.len() {
                                c.wbuf.clear();
                                c.wpos = 0;
                            }
                        } else {
                            c.wbuf.extend_from_slice(&self.out[n..]);
                            self.out.clear();
                        }
                        continue;
                    }
                    Err(e) if would_block(&e) => {
                        c.wbuf.extend_from_slice(&self.out);
                        self.out.clear();
                        return Ok(false);
                    }
                    Err(_) => {
                        self.out.clear();
                        return Err(());
                    }
                }
            }
            if let Some(f) = &mut c.file {
                let count = f.remaining.min(1 << 30) as usize;
                match c.stream.sendfile(&f.file, &mut f.offset, count) {
                    // The file shrank under us: the promised length cannot be met.
                    Ok(0) => return Err(()),
                    Ok(n) => {
                        self.metrics.bytes_sent(n as u64);
                        f.remaining -= n as u64;
                        if f.remaining == 0 {
                            c.file = None;
                            self.body_done(token);
                        }
                        continue;
                    }
                    Err(e) if would_block(&e) => return Ok(false),
                    Err(_) => return Err(()),
                }
            }
            if let Some(s) = &mut c.stream_body {
                // Produce a batch, then go back to writing it.
                while self.out.len() < MAX_OUTPUT_BATCH {
                    match s.body.next_chunk() {
                        Some(data) if s.chunked => encode::chunk(&mut self.out, &data),
                        Some(data) => self.out.extend_from_slice(&data),
                        None => {
                            if s.chunked {
                                self.out.extend_from_slice(encode::LAST_CHUNK);
                            }
                            c.stream_body = None;
                            self.body_done(token);
                            break;
                        }
                    }
                }
                continue;
            }
            return Ok(true);
        }
    }

    /// A file or stream body has been handed to the kernel in full.
    fn body_done(&mut self, token: Token) {
        let idle = self.now + self.cfg.idle_timeout;
        let draining = self.seen != State::Running;
        let Some(c) = self.conns.get_mut(token) else {
            return;
        };
        let finished = c.body_meta.take();
        if draining {
            // Its head went out before the drain (no `Connection: close`):
            // end the connection now that the response is complete.
            c.close_after_write = true;
            c.linger = true;
        } else if !c.close_after_write {
            c.phase = Phase::Idle;
            c.deadline = idle;
        }
        if let Some((meta, status)) = finished {
            self.complete(meta, status, None);
        }
    }

    /// Runs a WebSocket connection as far as it can go: write the session's
    /// output, feed it input, close when its handshake is over.
    fn ws_drive(&mut self, token: Token) {
        loop {
            // The 101 (and anything else owed by the HTTP side) goes first.
            match self.flush(token) {
                Ok(true) => {}
                Ok(false) => break,
                Err(()) => return self.close(token),
            }
            let Some(c) = self.conns.get_mut(token) else {
                return;
            };
            let Some(ws) = c.ws.as_mut() else { return };
            let mut blocked = false;
            while !ws.output().is_empty() {
                match c.stream.write(ws.output()) {
                    Ok(n) => {
                        self.metrics.bytes_sent(n as u64);
                        ws.consume_output(n);
                    }
                    Err(e) if would_block(&e) => {
                        blocked = true;
                        break;
                    }
                    Err(_) => return self.close(token),
                }
            }
            if ws.should_close_transport() {
                end_ws(&self.metrics, &self.life, self.seen, c);
                // Half-close first so unread input cannot reset our Close away.
                c.close_after_write = true;
                c.linger = true;
                return self.finish(token);
            }

            if blocked {
                break;
            }
            let now = self.now;
            if !c.rbuf.is_empty() {
                let input = std::mem::take(&mut c.rbuf);
                if catch_unwind(AssertUnwindSafe(|| ws.receive(&input, now))).is_err() {
                    tracing::error!(
                        worker = self.id,
                        "websocket application panicked; connection closed"
                    );
                    return self.close(token);
                }
                continue;
            }
            if !ws.wants_read() {
                break;
            }
            match c.stream.read(&mut self.scratch) {
                Ok(0) => return self.close(token),
                Ok(n) => {
                    let input = &self.scratch[..n];
                    if catch_unwind(AssertUnwindSafe(|| ws.receive(input, now))).is_err() {
                        tracing::error!(
                            worker = self.id,
                            "websocket application panicked; connection closed"
                        );
                        return self.close(token);
                    }
                }
                Err(e) if would_block(&e) => break,
                Err(_) => return self.close(token),
            }
        }
        let Some(c) = self.conns.get_mut(token) else {
            return;
        };
        let Some(ws) = c.ws.as_mut() else { return };
        account_ws(&self.metrics, ws, &mut c.ws_span);
        if let Some(at) = ws.next_deadline() {
            if c.ws_timer.is_none_or(|t| at < t) {
                c.ws_timer = Some(at);
                self.timers.schedule(at, token);
            }
        }
    }

    /// The peer closed its side.
    fn on_eof(&mut self, token: Token) {
        let Some(c) = self.conns.get_mut(token) else {
            return;
        };
        c.eof = true;
        // A half-received request can never complete; a held-back response
        // or body in flight is still owed to a half-closed peer.
        if c.delayed.is_some() || c.has_output() {
            return;
        }
        self.close(token);
    }

    /// Output is flushed on a connection that must close: shut the write
    /// side and linger briefly for the peer to read it.
    fn finish(&mut self, token: Token) {
        let Some(c) = self.conns.get_mut(token) else {
            return;
        };
        // Lingering protects a response from a reset caused by input we will
        // never read. A client that asked to close and left nothing unread
        // sends no more: close at once and spare it the wait.
        if c.eof || (!c.linger && c.rbuf.is_empty()) || c.stream.shutdown_write().is_err() {
            return self.close(token);
        }
        c.phase = Phase::Lingering;
        c.close_after_write = false;
        c.rbuf = Vec::new();
        c.deadline = self.now + LINGER;
        self.linger_read(token);
    }

    fn linger_read(&mut self, token: Token) {
        loop {
            let Some(c) = self.conns.get_mut(token) else {
                return;
            };
            match c.stream.read(&mut self.scratch) {
                Ok(0) => return self.close(token),
                Ok(_) => continue,
                Err(e) if would_block(&e) => return,
                Err(_) => return self.close(token),
            }
        }
    }

    fn close(&mut self, token: Token) {
        let Some(mut c) = self.conns.remove(token) else {
            return;
        };
        // Dropping the descriptor removes it from the epoll set.
        end_ws(&self.metrics, &self.life, self.seen, &mut c);
        // A request still owed an answer or a body: a forced stop is ours
        // to own, anything else means the peer went away.
        let (status, error) = if self.seen == State::Forced {
            (503, "shutdown_forced")
        } else {
            (499, "client_closed")
        };
        if let Some(d) = c.delayed.take() {
            self.complete(d.meta, status, Some(error));
        }
        if let Some((meta, sent_status)) = c.body_meta.take() {
            let status = if self.seen == State::Forced {
                status
            } else {
                sent_status
            };
            self.complete(meta, status, Some(error));
        }
        self.life.open.fetch_sub(1, Ordering::AcqRel);
        self.metrics.connection_closed();
    }

    // ---- time ----

    fn fire_timers(&mut self) {
        if let Some(t) = self.accept_paused_until {
            if self.now >= t {
                self.accept_paused_until = None;
                if let Some(l) = &self.listener {
                    let _ = self.poll.add(&**l, LISTENER, self.listen_interest);
                }
            }
        }
        while let Some(token) = self.timers.pop_due(self.now) {
            let Some(c) = self.conns.get_mut(token) else {
                continue;
            };
            if let Some(ws) = &mut c.ws {
                c.ws_timer = None;
                if ws.next_deadline().is_some_and(|d| d <= self.now) {
                    let now = self.now;
                    if catch_unwind(AssertUnwindSafe(|| ws.on_timer(now))).is_err() {
                        tracing::error!(
                            worker = self.id,
                            "websocket application panicked; connection closed"
                        );
                        self.close(token);
                        continue;
                    }
                }
                self.ws_drive(token);
                continue;
            }
            let due = matches!(&c.delayed, Some(d) if d.at <= self.now);
            if !due {
                continue;
            }
            if let Some(d) = c.delayed.take() {
                self.respond(token, d.response, d.meta);
                self.drive(token);
            }
        }
    }

    /// Once a second: head, idle and linger deadlines; buffer trimming.
    fn sweep(&mut self) {
        self.next_sweep = self.now + Duration::from_secs(1);
        for token in self.conns.tokens() {
            let Some(c) = self.conns.get_mut(token) else {
                continue;
            };
            if c.is_idle() {
                c.shrink();
            }
            if c.deadline > self.now {
                continue;
            }
            match c.phase {
                Phase::Fresh | Phase::Reading if !c.has_output() => {
                    if c.requests == 0 && c.rbuf.is_empty() && c.phase == Phase::Fresh {
                        // Opened and never spoke: nothing to answer.
                        self.close(token);
                    } else {
                        self.refuse_timeout(token);
                    }
                }
                Phase::Idle | Phase::Lingering => self.close(token),
                _ => {}
            }
        }
    }

    fn refuse_timeout(&mut self, token: Token) {
        self.refuse(token, HttpError::RequestTimeout);
        self.drive(token);
    }

    // ---- lifecycle ----

    /// Stop accepting; close idle connections; let the rest finish.
    fn begin_drain(&mut self) {
        if let Some(l) = self.listener.take() {
            // Connections the kernel already completed are ours to serve.
            while let Ok(Accepted::Stream(s, peer)) = l.accept() {
                self.admit(s, peer);
            }
            let _ = self.poll.delete(&l);
        }
        let mut in_flight = 0;
        let mut idle_closed = 0;
        for token in self.conns.tokens() {
            let Some(c) = self.conns.get_mut(token) else {
                continue;
            };
            // In flight when the drain began: counted, and said so on spans.
            let busy = c.ws.is_some()
                || c.delayed.is_some()
                || c.body_meta.is_some()
                || c.has_output()
                || c.phase == Phase::Reading;
            if busy {
                in_flight += 1;
            }
            if let Some(d) = &mut c.delayed {
                d.meta.span.mark_draining();
            }
            if let Some((meta, _)) = &mut c.body_meta {
                meta.span.mark_draining();
            }
            if let Some(ws) = &mut c.ws {
                // Going away: the drain waits for the peer's close reply.
                ws.start_close(1001, "server shutting down", self.now);
                self.ws_drive(token);
                continue;
            }
            // Whatever arrived in the meantime is a request we accepted.
            self.drive(token);
            let Some(c) = self.conns.get_mut(token) else {
                continue;
            };
            if c.phase == Phase::Idle && c.is_idle() {
                self.close(token);
                idle_closed += 1;
            } else if c.phase == Phase::Fresh && c.is_idle() {
                // Accepted but silent: a real client's first request is
                // moments away; a silent one must not hold the drain up.
                c.deadline = c.deadline.min(self.now + Duration::from_secs(1));
            }
        }
        self.life.in_flight.fetch_add(in_flight, Ordering::AcqRel);
        self.life
            .idle_closed
            .fetch_add(idle_closed, Ordering::AcqRel);
        self.life.listeners_closed.fetch_add(1, Ordering::AcqRel);
        self.life.done_bell.ring();
    }

    /// The drain deadline passed (or a second signal came): close everything.
    fn force_close(&mut self) {
        if let Some(l) = self.listener.take() {
            let _ = self.poll.delete(&l);
        }
        let tokens = self.conns.tokens();
        self.life
            .forced
            .fetch_add(tokens.len() as u64, Ordering::AcqRel);
        for token in tokens {
            self.close(token);
        }
    }
}

/// Moves a session's message counts into the metrics and its span.
fn account_ws(metrics: &WorkerMetrics, ws: &mut Session, span: &mut Option<WsSpan>) {
    let (received, sent) = ws.take_counts();
    for (n, dir) in [(received, WsDirection::Received), (sent, WsDirection::Sent)] {
        for _ in 0..n {
            metrics.ws_message(dir);
            if let Some(span) = span {
                span.message(dir);
            }
        }
    }
}

/// Ends a connection's WebSocket session, if any: last counts, the span,
/// the gauge, and the drain's count when it closed during one.
fn end_ws(metrics: &WorkerMetrics, life: &Lifecycle, state: State, c: &mut Conn) {
    let Some(ws) = c.ws.as_mut() else {
        return;
    };
    account_ws(metrics, ws, &mut c.ws_span);
    let (sent, received) = ws.close_codes();
    tracing::debug!(peer = %c.peer, ?sent, ?received, "websocket closed");
    if let Some(span) = c.ws_span.take() {
        span.finish(received.or(sent));
    }
    metrics.websocket_closed();
    if state == State::Draining {
        life.drained.fetch_add(1, Ordering::AcqRel);
    }
    c.ws = None;
}

enum Step {
    Wait,
    Consumed(usize),
    Refused,
}

enum ReadOutcome {
    /// Bytes arrived; `true` when the read did not fill the buffer.
    Data(bool),
    Blocked,
    Closed,
    Error,
}
