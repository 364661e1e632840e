//! One connection's state machine: bytes in, bytes and file regions out,
//! time passed in. It decodes requests in order, calls the handler, frames
//! the answers, and decides everything about the connection's life that a
//! transport must not: 100-continue, pipelining order, keep-alive and the
//! HTTP/1.0 rules, `HEAD`, refusal then linger, head and idle timeouts,
//! held-back answers, streamed bodies, the drain, panic → 500, and the
//! switch to a WebSocket session (`connection/websocket.rs`).
//!
//! A transport's loop, whatever it is built on:
//! - bytes arrived: [`Connection::receive`]; end of input:
//!   [`Connection::receive_eof`];
//! - then, until it says [`Action::Wait`]: [`Connection::poll`] and do what
//!   it says (send, then [`Connection::advance`] by what was sent; shut the
//!   write side, then [`Connection::write_shut`]; close);
//! - read again only while [`Connection::wants_read`];
//! - at [`Connection::next_deadline`]: [`Connection::on_timer`];
//! - a graceful stop: [`Connection::drain`]; dropping the connection for
//!   any reason: [`Connection::finish`] first, so that what was in flight
//!   is accounted for.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::app::Response;
use crate::http::{HttpError, RequestDecoder};

use super::observe::{Limit, Observer};
use super::output::{self, Output, Send};
use super::respond::ReqMeta;
use super::Env;

mod answer;
mod websocket;

use websocket::WsConn;

/// Input a lingering connection reads and drops before it gives up on
/// the peer and closes at once. Closing on unread input resets the
/// connection, and a reset can destroy the final answer still waiting in
/// the peer's receive queue: the budget must cover what an honest client
/// may still have in flight, say the rest of an oversized WebSocket
/// message. At 256 KiB, a client sending 1 MiB over the limit through
/// TLS lost its close 1009 nine times in ten (its sends are slower, so
/// more of the message came after the decision). The 2 s linger bounds
/// the time as well.
pub const MAX_LINGER_INPUT: usize = 4 << 20;

/// How long a silent connection accepted before a drain may stay open.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Where a connection is in its life; decides which deadline applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Accepted, no request yet: the head timeout runs from accept.
    Fresh,
    /// Between requests on a kept-alive connection: the idle timeout runs.
    Idle,
    /// Part of a request received: the head timeout runs.
    Reading,
    /// A request is being answered (held back, or its body being sent),
    /// or the connection carries a WebSocket session.
    Busy,
    /// Final answer written and the write side shut: input is discarded
    /// until the peer closes or the linger deadline passes, so that unread
    /// input does not turn our close into a reset that destroys the answer.
    Lingering,
}

/// What the transport should do next.
#[derive(Debug)]
pub enum Action<'a> {
    /// Send this, then report how much went with [`Connection::advance`].
    Send(Send<'a>),
    /// Everything is sent and the connection must end: shut the write
    /// side (`shutdown(SHUT_WR)`), then call [`Connection::write_shut`]
    /// and keep delivering input until the engine says close.
    ShutdownWrite,
    /// Drop the connection (call [`Connection::finish`] first).
    Close,
    /// Nothing to do until input, a timer or a drain.
    Wait,
}

/// What a drain found on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DrainOutcome {
    /// Something was in flight: a request, an answer, a session.
    pub in_flight: bool,
    /// It was idle and is closed now.
    pub closed_idle: bool,
}

/// A response held back until its time (`Response::delay`).
struct Delayed<S> {
    at: Instant,
    response: Response,
    meta: ReqMeta<S>,
}

/// The connection engine for one connection.
pub struct Connection<O: Observer> {
    peer: SocketAddr,
    local: SocketAddr,
    /// Unconsumed input; empty (and unallocated) while idle.
    rbuf: Vec<u8>,
    out: Output,
    decoder: RequestDecoder,
    phase: Phase,
    /// When the current phase's timeout expires.
    deadline: Instant,
    delayed: Option<Box<Delayed<O::Span>>>,
    /// The request whose file or stream body is still going out, with its
    /// status: it ends when the body has been handed to the transport.
    sending: Option<(ReqMeta<O::Span>, u16)>,
    ws: Option<Box<WsConn<O::WsSpan>>>,
    /// What a completion transport holds came from the WebSocket session's
    /// output (not the output queue), so its return is the session's.
    lent_ws: bool,
    /// Close once the output is sent.
    close_after_write: bool,
    /// Shut the write side and drain input before closing, because the
    /// peer may still be sending (our refusal, our drain).
    linger: bool,
    /// The peer closed its write side.
    eof: bool,
    /// The engine is done with the connection.
    closed: bool,
    /// See [`Connection::gave_up`].
    gave_up: bool,
    /// A graceful drain has begun for this connection.
    draining: bool,
    /// When pending output that the peer does not take is given up on:
    /// set when output is first offered, moved on by every byte the peer
    /// takes, cleared when nothing is left (the send timeout).
    send_deadline: Option<Instant>,
    /// Input dropped while lingering.
    discarded: usize,
    /// Requests answered on this connection.
    requests: u64,
    /// Requests (and sessions) that ended well during a drain, not yet
    /// collected by [`Connection::take_drained`].
    drained: u32,
}

impl<O: Observer> Connection<O> {
    /// A connection accepted at `env.now`: the head timeout starts.
    pub fn new(peer: SocketAddr, local: SocketAddr, env: &Env<'_, O>) -> Connection<O> {
        Connection {
            peer,
            local,
            rbuf: Vec::new(),
            out: Output::default(),
            decoder: RequestDecoder::default(),
            phase: Phase::Fresh,
            deadline: env.now + env.config.header_timeout,
            delayed: None,
            sending: None,
            ws: None,
            lent_ws: false,
            close_after_write: false,
            linger: false,
            eof: false,
            closed: false,
            gave_up: false,
            send_deadline: None,
            discarded: 0,
            draining: env.draining,
            requests: 0,
            drained: 0,
        }
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn is_websocket(&self) -> bool {
        self.ws.is_some()
    }

    /// The engine is done: the transport should drop the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The engine gave up on the peer (it read none of our output within
    /// the send timeout, or left a WebSocket Ping unanswered): once closed,
    /// the transport resets the connection (`SO_LINGER` 0, the user
    /// stack's ABORT) instead of queueing a FIN behind output the peer
    /// will never read, which would hold the connection for minutes of
    /// retransmissions (nginx's `reset_timedout_connection`).
    pub fn gave_up(&self) -> bool {
        self.gave_up
    }

    /// Nothing is pending: no partial request, no answer owed.
    pub fn is_idle(&self) -> bool {
        !self.closed
            && self.ws.is_none()
            && matches!(self.phase, Phase::Idle | Phase::Fresh)
            && self.rbuf.is_empty()
            && !self.out.is_pending()
    }

    /// Releases buffers an idle connection does not need, so that
    /// thousands of idle keep-alive connections cost little memory. Cheap
    /// to call; a transport calls it now and then, not per request.
    pub fn shrink(&mut self) {
        if !self.is_idle() {
            return;
        }
        self.rbuf = Vec::new();
        self.out.shrink();
    }

    /// Requests that ended well during a drain since the last call.
    pub fn take_drained(&mut self) -> u32 {
        std::mem::take(&mut self.drained)
    }

    /// True when the transport should read (and deliver) more input.
    /// False while answers are owed that must go first, or too much input
    /// is buffered: a readiness transport must then remember that the
    /// socket may still be readable.
    pub fn wants_read(&self, env: &Env<'_, O>) -> bool {
        if self.closed {
            return false;
        }
        if self.phase == Phase::Lingering {
            return true;
        }
        if let Some(ws) = &self.ws {
            return ws.session.wants_read();
        }
        if self.close_after_write || self.delayed.is_some() || self.out.body.is_some() {
            return false;
        }
        let limits = &env.config.limits;
        self.rbuf.len() <= limits.max_head + limits.max_body as usize + env.config.max_pending_input
    }

    /// The earliest time at which [`Connection::on_timer`] has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let own = self.own_deadline();
        match (own, self.send_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn own_deadline(&self) -> Option<Instant> {
        if let Some(ws) = &self.ws {
            return ws.session.next_deadline();
        }
        // A connection whose final answer is queued or written has no head
        // deadline left: it waits only for its shutdown (the next poll).
        let ending = self.out.is_pending() || self.close_after_write;
        let phase = match self.phase {
            Phase::Fresh | Phase::Reading if !ending => Some(self.deadline),
            // Idle starts when the last answer has gone, not when it was
            // queued: until then the send timeout governs.
            Phase::Idle if !self.out.is_pending() => Some(self.deadline),
            Phase::Lingering => Some(self.deadline),
            _ => None,
        };
        match (&self.delayed, phase) {
            (Some(d), Some(p)) => Some(d.at.min(p)),
            (Some(d), None) => Some(d.at),
            (None, p) => p,
        }
    }

    // ---- input ----

    /// Bytes arrived from the peer.
    pub fn receive(&mut self, env: &mut Env<'_, O>, input: &[u8]) {
        if self.phase == Phase::Lingering && !self.closed {
            // Read and dropped so that the peer's bytes do not turn our
            // close into a reset that destroys the answer; but only so many.
            self.discarded = self.discarded.saturating_add(input.len());
            if self.discarded > MAX_LINGER_INPUT {
                tracing::debug!(peer = %self.peer, bytes = self.discarded,
                    "closed: the peer kept sending after our final answer");
                env.observer.limit_refused(Limit::LingerInput);
                self.closed = true;
            }
            return;
        }
        if self.closed || input.is_empty() {
            return;
        }
        if self.ws.is_some() {
            return self.ws_receive(env, input);
        }
        if self.phase == Phase::Idle {
            self.phase = Phase::Reading;
            self.deadline = env.now + env.config.header_timeout;
        } else if self.phase == Phase::Reading && self.decoder.in_progress() {
            // A body making progress keeps its connection alive.
            self.deadline = env.now + env.config.header_timeout;
        }
        if self.rbuf.is_empty() && self.can_process() {
            // Fast path: decode straight from the transport's buffer and
            // keep only what is left over.
            let used = self.process(env, input);
            if !self.closed {
                self.rbuf.extend_from_slice(&input[used..]);
            }
        } else {
            self.rbuf.extend_from_slice(input);
        }
    }

    /// The peer closed its write side (or the transport saw it go).
    pub fn receive_eof(&mut self, env: &mut Env<'_, O>) {
        self.eof = true;
        if self.closed {
            return;
        }
        if self.ws.is_some() || self.phase == Phase::Lingering {
            self.closed = true;
            return;
        }
        // A held-back answer or a body in flight is still owed to a
        // half-closed peer; so are complete requests still buffered.
        self.progress(env);
        if self.delayed.is_some() || self.out.is_pending() || self.close_after_write {
            return;
        }
        // A half-received request can never complete.
        self.closed = true;
    }

    // ---- output ----

    /// What the transport should do now. Also moves the connection on:
    /// produces stream chunks, and answers buffered requests once the
    /// answers before them are out.
    pub fn poll(&mut self, env: &mut Env<'_, O>) -> Action<'_> {
        loop {
            if self.closed {
                return Action::Close;
            }
            if self.send_deadline.is_none() && self.output_pending() {
                self.send_deadline = Some(env.now + env.config.send_timeout);
            }
            if self.out.lent > 0 {
                // A completion transport has our bytes: one send at a time.
                return Action::Wait;
            }
            if self.out.has_bytes() {
                let more = matches!(self.out.body, Some(output::Body::File(_)));
                return Action::Send(Send::Bytes {
                    data: self.out.unsent(),
                    more,
                });
            }
            match &self.out.body {
                Some(output::Body::File(_)) => {
                    let Some(output::Body::File(f)) = &self.out.body else {
                        unreachable!("checked above")
                    };
                    return Action::Send(Send::File {
                        file: &f.file,
                        offset: f.offset,
                        len: f.remaining,
                    });
                }
                Some(output::Body::Stream(_)) => {
                    if self.out.fill_from_stream() {
                        self.body_done(env);
                    }
                    continue;
                }
                None => {}
            }
            if self.ws.is_some() {
                if self.ws_poll(env) {
                    self.send_deadline
                        .get_or_insert(env.now + env.config.send_timeout);
                    let data = self.ws.as_ref().map_or(&[][..], |ws| ws.session.output());
                    return Action::Send(Send::Bytes { data, more: false });
                }
                if self.ws.is_some() {
                    return Action::Wait;
                }
                continue;
            }
            if self.close_after_write {
                // Lingering protects an answer from a reset caused by input
                // we will never read. A client that asked to close and left
                // nothing unread sends no more: close at once.
                if self.eof || (!self.linger && self.rbuf.is_empty()) {
                    self.closed = true;
                    return Action::Close;
                }
                return Action::ShutdownWrite;
            }
            if self.phase == Phase::Lingering {
                return Action::Wait;
            }
            if self.progress(env) {
                continue;
            }
            if self.eof && self.delayed.is_none() {
                self.closed = true;
                return Action::Close;
            }
            return Action::Wait;
        }
    }

    /// `n` bytes of what [`Connection::poll`] offered were sent.
    pub fn advance(&mut self, env: &mut Env<'_, O>, n: usize) {
        self.advance_output(env, n);
        self.sent(env, n);
    }

    fn advance_output(&mut self, env: &mut Env<'_, O>, n: usize) {
        if self.out.has_bytes() {
            self.out.advance_bytes(n);
            return;
        }
        if let Some(output::Body::File(f)) = &mut self.out.body {
            let n = (n as u64).min(f.remaining);
            f.offset += n;
            f.remaining -= n;
            if f.remaining == 0 {
                self.out.body = None;
                self.body_done(env);
            }
            return;
        }
        if let Some(ws) = &mut self.ws {
            ws.session.consume_output(n);
        }
    }

    /// For a completion transport: takes the pending bytes out, so that
    /// the kernel may read them while the engine goes on; `spare` (any
    /// empty buffer) takes their place. Give it back with
    /// [`Connection::give_back`] when the send completes. Until then
    /// [`Connection::poll`] offers nothing more to send.
    pub fn take_bytes(&mut self, spare: Vec<u8>) -> Option<Vec<u8>> {
        if self.out.lent == 0 && !self.out.has_bytes() {
            if let Some(ws) = &self.ws {
                // The session keeps its own copy until the send completes,
                // so its backpressure sees what is really unsent.
                let pending = ws.session.output();
                if pending.is_empty() {
                    return None;
                }
                let mut buf = spare;
                buf.clear();
                buf.extend_from_slice(pending);
                self.out.lent = buf.len();
                self.lent_ws = true;
                return Some(buf);
            }
        }
        self.out.take(spare)
    }

    /// A buffer from [`Connection::take_bytes`] comes back with `n` of its
    /// bytes sent; the rest is sent first next time. Returns the buffer,
    /// emptied, for reuse.
    pub fn give_back(&mut self, env: &mut Env<'_, O>, buf: Vec<u8>, n: usize) -> Vec<u8> {
        let buf = self.return_buffer(buf, n);
        self.sent(env, n);
        buf
    }

    fn return_buffer(&mut self, buf: Vec<u8>, n: usize) -> Vec<u8> {
        // The bytes lent may be the queue's even on a WebSocket (the 101
        // answer, taken before the switch): only the session's go to it.
        if let Some(ws) = &mut self.ws {
            if std::mem::take(&mut self.lent_ws) {
                self.out.lent = 0;
                ws.session.consume_output(n);
                let mut buf = buf;
                buf.clear();
                return buf;
            }
        }
        self.out.give_back(buf, n)
    }

    /// Output not yet taken by the peer: ours or the session's.
    fn output_pending(&self) -> bool {
        self.out.is_pending()
            || self
                .ws
                .as_ref()
                .is_some_and(|ws| !ws.session.output().is_empty())
    }

    /// The peer took `n` bytes: the send timeout starts again, or stops
    /// when nothing is left.
    fn sent(&mut self, env: &Env<'_, O>, n: usize) {
        if !self.output_pending() {
            if self.send_deadline.take().is_some() && self.phase == Phase::Idle {
                self.deadline = env.now + env.config.idle_timeout;
            }
        } else if n > 0 {
            self.send_deadline = Some(env.now + env.config.send_timeout);
        }
    }

    /// The transport shut the write side after [`Action::ShutdownWrite`]:
    /// linger, discarding input, until the peer closes or time runs out.
    pub fn write_shut(&mut self, env: &Env<'_, O>) {
        self.phase = Phase::Lingering;
        self.close_after_write = false;
        self.rbuf = Vec::new();
        self.deadline = env.now + env.config.linger;
    }

    // ---- time and lifecycle ----

    /// Time passed: fire what is due at `env.now` (a held-back answer, a
    /// head, idle or linger timeout, a WebSocket timer). Harmless when
    /// nothing is due.
    pub fn on_timer(&mut self, env: &mut Env<'_, O>) {
        if self.closed {
            return;
        }
        if self.send_deadline.is_some_and(|t| t <= env.now) && self.output_pending() {
            tracing::info!(peer = %self.peer, timeout = ?env.config.send_timeout,
                "closed: the peer read none of our output within the send timeout");
            env.observer.limit_refused(Limit::SendTimeout);
            self.gave_up = true;
            return self.end(env, 499, "send_timeout", false);
        }
        if self.ws.is_some() {
            return self.ws_timer(env);
        }
        let now = env.now;
        if self.delayed.as_ref().is_some_and(|d| d.at <= now) {
            if let Some(d) = self.delayed.take() {
                self.respond(env, d.response, d.meta, None);
            }
        }
        if self.deadline > now {
            return;
        }
        match self.phase {
            // Not again once a refusal is written and the shutdown is next:
            // a driver may look at the clock between the send and the poll.
            Phase::Fresh | Phase::Reading if !self.out.is_pending() && !self.close_after_write => {
                if self.requests == 0 && self.rbuf.is_empty() && self.phase == Phase::Fresh {
                    // Opened and never spoke: nothing to answer.
                    self.closed = true;
                } else {
                    self.refuse(env, HttpError::RequestTimeout);
                }
            }
            Phase::Idle if !self.out.is_pending() => self.closed = true,
            Phase::Lingering => self.closed = true,
            _ => {}
        }
    }

    /// A graceful stop began: finish what is in flight, close if idle,
    /// send WebSockets a `1001`. Deliver any input already read first.
    pub fn drain(&mut self, env: &mut Env<'_, O>) -> DrainOutcome {
        self.draining = true;
        if self.closed {
            return DrainOutcome::default();
        }
        let in_flight = self.ws.is_some()
            || self.delayed.is_some()
            || self.sending.is_some()
            || self.out.is_pending()
            || self.phase == Phase::Reading;
        if let Some(d) = &mut self.delayed {
            env.observer.mark_draining(&mut d.meta.span);
        }
        if let Some((meta, _)) = &mut self.sending {
            env.observer.mark_draining(&mut meta.span);
        }
        if let Some(ws) = &mut self.ws {
            ws.session
                .start_close(1001, "server shutting down", env.now);
            return DrainOutcome {
                in_flight,
                closed_idle: false,
            };
        }
        // Whatever arrived in the meantime is a request we accepted.
        self.progress(env);
        let mut closed_idle = false;
        if self.phase == Phase::Idle && self.is_idle() {
            self.closed = true;
            closed_idle = true;
        } else if self.phase == Phase::Fresh && self.is_idle() {
            // Accepted but silent: a real client's first request is
            // moments away; a silent one must not hold the drain up.
            self.deadline = self.deadline.min(env.now + DRAIN_GRACE);
        }
        DrainOutcome {
            in_flight,
            closed_idle,
        }
    }

    /// The transport is dropping the connection (the engine said close,
    /// the peer went away, or a forced stop): ends what was in flight.
    /// `forced` marks a forced stop, which is ours to own; otherwise an
    /// unfinished request means the peer left. Idempotent.
    pub fn finish(&mut self, env: &mut Env<'_, O>, forced: bool) {
        let (status, error) = if forced {
            (503, "shutdown_forced")
        } else {
            (499, "client_closed")
        };
        self.end(env, status, error, forced);
    }

    /// Ends what is in flight with `error` (and `status` for what had not
    /// started to go out; all of it when `forced`), and closes.
    fn end(&mut self, env: &mut Env<'_, O>, status: u16, error: &'static str, forced: bool) {
        self.end_ws(env, forced);
        if let Some(d) = self.delayed.take() {
            self.complete(env, d.meta.span, status, Some(error));
        }
        if let Some((meta, sent_status)) = self.sending.take() {
            let status = if forced { status } else { sent_status };
            self.complete(env, meta.span, status, Some(error));
        }
        self.out.body = None;
        self.closed = true;
    }
}

impl<O: Observer> std::fmt::Debug for Connection<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .field("phase", &self.phase)
            .field("buffered", &self.rbuf.len())
            .field("websocket", &self.ws.is_some())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}
