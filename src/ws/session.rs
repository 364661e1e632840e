//! One WebSocket session after the handshake: the sans-I/O protocol machine
//! the reactor drives (RFC 6455 §5–§7, RFC 7692).
//!
//! Bytes come in through [`Session::receive`] (the reading half lives in
//! `session/input.rs`), bytes to write come out of [`Session::output`], and
//! time comes in through [`Session::on_timer`] at [`Session::next_deadline`].
//! In between, the session reassembles messages, answers pings, runs the
//! close handshake, enforces limits and calls the [`WsApp`]. It owns no
//! descriptor and never blocks; the reactor owns the socket and the decision
//! to close it, which it takes from [`Session::should_close_transport`].
//!
//! Call sequence for the reactor:
//! - after the 101 response is queued: [`Session::from_upgrade`];
//! - readable: read, then [`Session::receive`] (discard what it did not
//!   consume), then write out [`Session::output`];
//! - writable: write [`Session::output`], then [`Session::consume_output`];
//! - timer at [`Session::next_deadline`]: [`Session::on_timer`], then write;
//! - graceful shutdown: [`Session::start_close`] with 1001, then write;
//! - after each of these: [`Session::take_counts`] for metrics, and close the
//!   connection once [`Session::should_close_transport`] is true.

use std::time::{Duration, Instant};

use super::close;
use super::deflate::{Deflater, Inflater};
use super::frame::{self, OpCode, MAX_HEADER};
use super::utf8::Utf8Validator;
use super::{Message, Outbox, SessionConfig, Upgrade, WsApp};

mod input;

/// Largest control frame payload (§5.5).
const MAX_CONTROL: u64 = 125;

/// Shortest keepalive or tick interval, so a zero cannot spin the loop.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// Reserve at most this much up front for an announced frame, so a peer
/// that announces 16 MiB and sends nothing costs nothing.
const MAX_RESERVE: usize = 64 * 1024;

/// Where the session is in its life (RFC 6455 §4.1, §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a Close and are reading until the peer's Close arrives
    /// (or [`SessionConfig::close_timeout`] passes).
    Closing,
    /// Reading is over (the close handshake completed, or the session
    /// failed); write out what is pending, then close the transport.
    Flushing,
    /// Close the transport now, pending output or not (timeout,
    /// unresponsive or non-reading peer).
    Done,
}

/// Why reading stopped with an error: the Close code and reason we send.
struct Fail(u16, &'static str);

/// The frame whose payload is being read.
struct InFrame {
    opcode: OpCode,
    fin: bool,
    mask: [u8; 4],
    /// Payload bytes still to come.
    remaining: u64,
    /// Payload bytes already read (the masking offset).
    offset: usize,
}

/// A data message being reassembled.
struct InMessage {
    text: bool,
    /// RSV1 was set on the first frame (RFC 7692 §6.1).
    compressed: bool,
    /// Payload bytes received so far (compressed, when it is).
    wire_len: usize,
    /// The message so far, unmasked and inflated.
    data: Vec<u8>,
}

/// The protocol machine of one WebSocket connection.
pub struct Session {
    config: SessionConfig,
    app: Box<dyn WsApp>,
    state: State,

    /// A frame header cut by the end of the previous read.
    header: [u8; MAX_HEADER],
    header_len: usize,
    frame: Option<InFrame>,
    message: Option<InMessage>,
    /// Payload of the control frame being read (at most 125 bytes).
    control: Vec<u8>,
    utf8: Utf8Validator,
    inflater: Option<Inflater>,
    /// Unmasked compressed bytes on their way to the inflater, or an
    /// outgoing message being compressed.
    scratch: Vec<u8>,
    deflater: Option<Deflater>,

    /// Bytes to write; `out[out_pos..]` is still pending.
    out: Vec<u8>,
    out_pos: usize,

    /// When to send the next keepalive Ping.
    next_ping: Option<Instant>,
    /// The Ping in flight: its payload and when its Pong is overdue.
    ping_outstanding: Option<(u64, Instant)>,
    /// The peer left a Ping unanswered past its time: it is gone or stuck,
    /// and the connection is to be reset, not closed in order.
    abandoned: bool,
    ping_seq: u64,
    /// When the application's next tick is due.
    next_tick: Option<Instant>,
    /// In `Closing`/`Flushing`: when to give up on the peer.
    close_deadline: Option<Instant>,
    /// The Close code we sent, for logs.
    sent_close: Option<u16>,
    /// The Close code the peer sent, for logs.
    received_close: Option<u16>,

    /// Data messages received / queued since the last [`Session::take_counts`].
    messages_in: u64,
    messages_out: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state)
            .field("pending_output", &self.pending())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session that starts now, right after the 101 response was queued.
    pub fn new(config: SessionConfig, app: Box<dyn WsApp>, now: Instant) -> Session {
        let deflater = config
            .deflate
            .map(|d| Deflater::new(d.server_max_window_bits, d.server_no_context_takeover));
        let inflater = config
            .deflate
            .map(|d| Inflater::new(d.client_no_context_takeover));
        let next_ping = config.ping_interval.map(|i| now + i.max(MIN_INTERVAL));
        let next_tick = app.tick_interval().map(|i| now + i.max(MIN_INTERVAL));
        Session {
            config,
            app,
            state: State::Open,
            header: [0; MAX_HEADER],
            header_len: 0,
            frame: None,
            message: None,
            control: Vec::new(),
            utf8: Utf8Validator::new(),
            inflater,
            scratch: Vec::new(),
            deflater,
            out: Vec::new(),
            out_pos: 0,
            next_ping,
            ping_outstanding: None,
            abandoned: false,
            ping_seq: 0,
            next_tick,
            close_deadline: None,
            sent_close: None,
            received_close: None,
            messages_in: 0,
            messages_out: 0,
        }
    }

    /// A session for an accepted [`Upgrade`].
    pub fn from_upgrade(upgrade: Upgrade, now: Instant) -> Session {
        Session::new(upgrade.config, upgrade.app, now)
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The negotiated settings.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Whether the session still reads (the reactor may stop polling for
    /// input otherwise).
    pub fn wants_read(&self) -> bool {
        matches!(self.state, State::Open | State::Closing)
    }

    /// True when the reactor should close the connection: the close
    /// handshake is over (or the session failed) and the output is written,
    /// or the peer is to be dropped at once.
    pub fn should_close_transport(&self) -> bool {
        match self.state {
            State::Done => true,
            State::Flushing => self.pending() == 0,
            State::Open | State::Closing => false,
        }
    }

    /// The session gave up on the peer (its Ping went unanswered): what it
    /// has not read will never be, and the transport resets the connection
    /// rather than queue a FIN behind it.
    pub fn abandoned(&self) -> bool {
        self.abandoned
    }

    /// Close codes sent and received, for the connection's log line.
    pub fn close_codes(&self) -> (Option<u16>, Option<u16>) {
        (self.sent_close, self.received_close)
    }

    /// Data messages received and sent since the last call.
    pub fn take_counts(&mut self) -> (u64, u64) {
        let counts = (self.messages_in, self.messages_out);
        self.messages_in = 0;
        self.messages_out = 0;
        counts
    }

    // ----- output -----

    /// Bytes waiting to be written.
    pub fn output(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// `n` bytes of [`Session::output`] were written.
    pub fn consume_output(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            if self.out.capacity() > 1 << 20 {
                // Do not keep a large echo's buffer for the session's life.
                self.out = Vec::new();
            }
        } else if self.out_pos > 64 * 1024 && self.out_pos * 2 > self.out.len() {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    fn pending(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// The peer has not read what we sent before: applications should skip
    /// optional output (the `slow_peer` of [`WsApp::on_tick`]).
    pub fn is_slow(&self) -> bool {
        self.pending() > 0
    }

    /// Whether more output may be queued; drops a peer that does not read.
    fn has_room(&mut self) -> bool {
        if self.state == State::Done {
            return false;
        }
        if self.pending() >= self.config.max_output {
            // Best effort: the peer is not reading, so this likely never
            // leaves, but it says why if it does.
            self.queue_close_frame(close::POLICY, "output buffer full");
            self.state = State::Done;
            return false;
        }
        true
    }

    fn queue_close_frame(&mut self, code: u16, reason: &str) {
        let payload = close::payload(code, reason);
        frame::write_frame(&mut self.out, OpCode::Close, true, false, &payload);
        self.sent_close = Some(code);
    }

    fn send_message(&mut self, msg: Message) {
        if self.state != State::Open || !self.has_room() {
            return;
        }
        let (opcode, payload) = match &msg {
            Message::Text(s) => (OpCode::Text, s.as_bytes()),
            Message::Binary(b) => (OpCode::Binary, b.as_slice()),
        };
        if let Some(deflater) = &mut self.deflater {
            // The frame header needs the compressed length, so compress
            // aside first (into the same buffer the inflate side uses).
            self.scratch.clear();
            let ok = deflater.compress(payload, &mut self.scratch).is_ok();
            if ok {
                frame::write_frame(&mut self.out, opcode, true, true, &self.scratch);
            }
            if self.scratch.capacity() > MAX_RESERVE {
                self.scratch = Vec::new();
            }
            if ok {
                self.messages_out += 1;
                return;
            }
            // Compression state is unusable: send this one uncompressed
            // (RSV1 clear is always allowed, RFC 7692 §6).
        }
        frame::write_frame(&mut self.out, opcode, true, false, payload);
        self.messages_out += 1;
    }

    /// Queue what the application put in its outbox.
    fn flush_outbox(&mut self, outbox: Outbox, now: Instant) {
        for msg in outbox.messages {
            self.send_message(msg);
        }
        if let Some((code, reason)) = outbox.close {
            self.start_close(code, &reason, now);
        }
    }

    // ----- closing -----

    /// Begin the close handshake (§7.1.2): send a Close and wait for the
    /// peer's. Used by applications and for graceful shutdown (1001).
    /// Does nothing unless the session is open. A code that may not be sent
    /// (§7.4.1: 1005, 1006, 1015, unassigned) becomes 1000.
    pub fn start_close(&mut self, code: u16, reason: &str, now: Instant) {
        if self.state != State::Open {
            return;
        }
        let code = if close::is_valid_code(code) {
            code
        } else {
            close::NORMAL
        };
        self.queue_close_frame(code, reason);
        self.state = State::Closing;
        self.close_deadline = Some(now + self.config.close_timeout);
    }

    /// _Fail the WebSocket Connection_ (§7.1.7): send a Close with `code`
    /// if none was sent, stop reading, close once it is written.
    fn fail(&mut self, Fail(code, reason): Fail, now: Instant) {
        if self.state == State::Open {
            self.queue_close_frame(code, reason);
        }
        self.enter_flushing(now);
    }

    fn enter_flushing(&mut self, now: Instant) {
        if matches!(self.state, State::Open | State::Closing) {
            self.state = State::Flushing;
            self.close_deadline = Some(now + self.config.close_timeout);
        }
    }

    // ----- time -----

    /// The next instant at which [`Session::on_timer`] must run.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Open => {
                let ping = match self.ping_outstanding {
                    Some((_, overdue)) => Some(overdue),
                    None => self.next_ping,
                };
                [ping, self.next_tick].into_iter().flatten().min()
            }
            State::Closing | State::Flushing => self.close_deadline,
            State::Done => None,
        }
    }

    /// Run whatever is due at `now`: close-handshake timeout, keepalive,
    /// the application's tick.
    pub fn on_timer(&mut self, now: Instant) {
        match self.state {
            State::Done => return,
            State::Closing | State::Flushing => {
                if self.close_deadline.is_some_and(|d| now >= d) {
                    self.state = State::Done;
                }
                return;
            }
            State::Open => {}
        }
        if let Some((_, overdue)) = self.ping_outstanding {
            if now >= overdue {
                // The peer is gone or stuck: nothing to say to it.
                self.state = State::Done;
                self.abandoned = true;
                return;
            }
        }
        if let (Some(at), Some(interval), None) = (
            self.next_ping,
            self.config.ping_interval.map(|i| i.max(MIN_INTERVAL)),
            self.ping_outstanding,
        ) {
            if now >= at && self.has_room() {
                self.ping_seq += 1;
                frame::write_frame(
                    &mut self.out,
                    OpCode::Ping,
                    true,
                    false,
                    &self.ping_seq.to_be_bytes(),
                );
                self.ping_outstanding = Some((self.ping_seq, now + interval));
                self.next_ping = Some(now + interval);
            }
        }
        if let (Some(at), Some(interval)) = (
            self.next_tick,
            self.app.tick_interval().map(|i| i.max(MIN_INTERVAL)),
        ) {
            if now >= at && self.state == State::Open {
                let mut next = at + interval;
                if next <= now {
                    next = now + interval; // fell behind: do not burst
                }
                self.next_tick = Some(next);
                let mut outbox = Outbox::default();
                let slow = self.is_slow();
                self.app.on_tick(&mut outbox, slow);
                self.flush_outbox(outbox, now);
            }
        }
    }
}

#[cfg(test)]
mod tests;
