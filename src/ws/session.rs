//! One WebSocket session after the handshake: the sans-I/O protocol machine
//! the reactor drives (RFC 6455 §5–§7, RFC 7692).
//!
//! Bytes come in through [`Session::receive`], bytes to write come out of
//! [`Session::output`], and time comes in through [`Session::on_timer`] at
//! [`Session::next_deadline`]. In between, the session reassembles messages,
//! answers pings, runs the close handshake, enforces limits and calls the
//! [`WsApp`]. It owns no descriptor and never blocks; the reactor owns the
//! socket, the buffers it reads into, and the decision to close.
//!
//! Reading is streamed: a frame's payload is unmasked and appended to the
//! message as it arrives, so the reactor never has to hold a whole frame,
//! and text is checked for UTF-8 piece by piece (failing fast, §8.1).

use std::time::Instant;

use super::close;
use super::deflate::{CodecError, Deflater, Inflater};
use super::frame::{self, FrameHeader, OpCode, MAX_HEADER};
use super::mask::apply_mask;
use super::utf8::Utf8Validator;
use super::{Message, Outbox, SessionConfig, Upgrade, WsApp};

/// Largest control frame payload (§5.5).
const MAX_CONTROL: u64 = 125;

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
    deflater: Option<Deflater>,

    /// Bytes to write; `out[out_pos..]` is still pending.
    out: Vec<u8>,
    out_pos: usize,

    /// When to send the next keepalive Ping.
    next_ping: Option<Instant>,
    /// The Ping in flight: its payload and when its Pong is overdue.
    ping_outstanding: Option<(u64, Instant)>,
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
        let next_ping = config.ping_interval.map(|i| now + i);
        let next_tick = app.tick_interval().map(|i| now + i);
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
            deflater,
            out: Vec::new(),
            out_pos: 0,
            next_ping,
            ping_outstanding: None,
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
            let mut compressed = Vec::with_capacity(payload.len() / 2 + 16);
            if deflater.compress(payload, &mut compressed).is_ok() {
                frame::write_frame(&mut self.out, opcode, true, true, &compressed);
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
            let code = if close::is_valid_code(code) {
                code
            } else {
                close::NORMAL
            };
            self.start_close(code, &reason, now);
        }
    }

    // ----- closing -----

    /// Begin the close handshake (§7.1.2): send a Close and wait for the
    /// peer's. Used by applications and for graceful shutdown (1001).
    /// Does nothing unless the session is open.
    pub fn start_close(&mut self, code: u16, reason: &str, now: Instant) {
        if self.state != State::Open {
            return;
        }
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

    // ----- input -----

    /// Read `input`: returns how many bytes were consumed. While the session
    /// reads, that is all of them (partial frames are kept inside); once
    /// reading stops (close received, protocol error) the rest is to be
    /// discarded.
    pub fn receive(&mut self, input: &[u8], now: Instant) -> usize {
        let mut pos = 0;
        while self.wants_read() {
            if let Some(frame) = &mut self.frame {
                let take =
                    (input.len() - pos).min(usize::try_from(frame.remaining).unwrap_or(usize::MAX));
                let chunk = &input[pos..pos + take];
                pos += take;
                if let Err(fail) = self.on_payload(chunk) {
                    self.fail(fail, now);
                    break;
                }
                if self.frame.as_ref().is_some_and(|f| f.remaining == 0) {
                    if let Err(fail) = self.on_frame_end(now) {
                        self.fail(fail, now);
                    }
                }
                if pos == input.len() {
                    break;
                }
                continue;
            }
            if pos == input.len() {
                break;
            }
            // Gather a header, possibly across reads.
            let copy = (MAX_HEADER - self.header_len).min(input.len() - pos);
            self.header[self.header_len..self.header_len + copy]
                .copy_from_slice(&input[pos..pos + copy]);
            match FrameHeader::parse(&self.header[..self.header_len + copy]) {
                Ok(None) => {
                    self.header_len += copy;
                    pos += copy;
                }
                Ok(Some((header, n))) => {
                    pos += n - self.header_len;
                    self.header_len = 0;
                    if let Err(fail) = self.on_header(header) {
                        self.fail(fail, now);
                        break;
                    }
                    // A frame with an empty payload ends right here.
                    if self.frame.as_ref().is_some_and(|f| f.remaining == 0) {
                        if let Err(fail) = self.on_frame_end(now) {
                            self.fail(fail, now);
                        }
                    }
                }
                Err(_) => {
                    self.fail(Fail(close::PROTOCOL_ERROR, "bad frame length"), now);
                    break;
                }
            }
        }
        pos
    }

    /// Check a header against the session's rules (§5.2, §5.4, §5.5).
    fn on_header(&mut self, h: FrameHeader) -> Result<(), Fail> {
        let protocol = |reason| Err(Fail(close::PROTOCOL_ERROR, reason));
        if h.rsv2 || h.rsv3 {
            return protocol("reserved bits set");
        }
        let Some(mask) = h.mask else {
            return protocol("client frames must be masked");
        };
        match h.opcode {
            OpCode::Reserved(_) => return protocol("reserved opcode"),
            op if op.is_control() => {
                if !h.fin {
                    return protocol("fragmented control frame");
                }
                if h.len > MAX_CONTROL {
                    return protocol("control frame too long");
                }
                if h.rsv1 {
                    return protocol("reserved bits set");
                }
                self.control.clear();
            }
            OpCode::Continuation => {
                let Some(message) = &self.message else {
                    return protocol("continuation without a message");
                };
                if h.rsv1 {
                    return protocol("RSV1 on a continuation frame");
                }
                self.check_size(message.data.len(), h.len)?;
            }
            _ => {
                if self.message.is_some() {
                    return protocol("new message inside a fragmented one");
                }
                if h.rsv1 && self.inflater.is_none() {
                    return protocol("reserved bits set");
                }
                self.check_size(0, h.len)?;
                let reserve = usize::try_from(h.len)
                    .unwrap_or(MAX_RESERVE)
                    .min(MAX_RESERVE);
                self.message = Some(InMessage {
                    text: h.opcode == OpCode::Text,
                    compressed: h.rsv1,
                    data: Vec::with_capacity(reserve),
                });
            }
        }
        self.frame = Some(InFrame {
            opcode: h.opcode,
            fin: h.fin,
            mask,
            remaining: h.len,
            offset: 0,
        });
        Ok(())
    }

    /// A message (compressed or not) may not exceed `max_message` (§10.4).
    fn check_size(&self, have: usize, more: u64) -> Result<(), Fail> {
        let total = (have as u64).saturating_add(more);
        if total > self.config.max_message as u64 {
            return Err(Fail(close::TOO_BIG, "message too big"));
        }
        Ok(())
    }

    /// Store and unmask the next piece of the current frame's payload.
    fn on_payload(&mut self, chunk: &[u8]) -> Result<(), Fail> {
        let Some(frame) = &mut self.frame else {
            return Ok(());
        };
        frame.remaining -= chunk.len() as u64;
        let offset = frame.offset;
        frame.offset += chunk.len();
        if frame.opcode.is_control() {
            let start = self.control.len();
            self.control.extend_from_slice(chunk);
            apply_mask(&mut self.control[start..], frame.mask, offset);
            return Ok(());
        }
        let Some(message) = &mut self.message else {
            return Ok(());
        };
        let start = message.data.len();
        message.data.extend_from_slice(chunk);
        let fresh = &mut message.data[start..];
        apply_mask(fresh, frame.mask, offset);
        if message.text && !message.compressed && self.utf8.feed(fresh).is_err() {
            return Err(Fail(close::INVALID_PAYLOAD, "invalid UTF-8"));
        }
        Ok(())
    }

    /// The current frame is complete.
    fn on_frame_end(&mut self, now: Instant) -> Result<(), Fail> {
        let Some(frame) = self.frame.take() else {
            return Ok(());
        };
        match frame.opcode {
            OpCode::Ping => {
                if self.state == State::Open && self.has_room() {
                    frame::write_frame(&mut self.out, OpCode::Pong, true, false, &self.control);
                }
                Ok(())
            }
            OpCode::Pong => {
                // Only an answer to our Ping counts; others are ignored (§5.5.3).
                if let Some((seq, _)) = self.ping_outstanding {
                    if self.control == seq.to_be_bytes() {
                        self.ping_outstanding = None;
                    }
                }
                Ok(())
            }
            OpCode::Close => self.on_close(now),
            _ if frame.fin => self.on_message_end(now),
            _ => Ok(()),
        }
    }

    /// The peer's Close (§5.5.1, §7.1.5): echo its code, then close.
    fn on_close(&mut self, now: Instant) -> Result<(), Fail> {
        let code = match close::parse(&self.control) {
            Ok(parsed) => parsed.map(|(code, _)| code),
            Err(close::CloseError::BadCode) => {
                return Err(Fail(close::PROTOCOL_ERROR, "invalid close code"))
            }
            Err(close::CloseError::BadReason) => {
                return Err(Fail(close::PROTOCOL_ERROR, "close reason is not UTF-8"))
            }
        };
        self.received_close = Some(code.unwrap_or(1005));
        if self.state == State::Open {
            let payload = code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default();
            frame::write_frame(&mut self.out, OpCode::Close, true, false, &payload);
            self.sent_close = code;
        }
        self.enter_flushing(now);
        Ok(())
    }

    /// A data message is complete: inflate, validate, deliver.
    fn on_message_end(&mut self, now: Instant) -> Result<(), Fail> {
        let Some(message) = self.message.take() else {
            return Ok(());
        };
        let data = if message.compressed {
            let mut inflated = Vec::new();
            let inflater = self
                .inflater
                .as_mut()
                .ok_or(Fail(close::PROTOCOL_ERROR, "reserved bits set"))?;
            match inflater.inflate(&message.data, &mut inflated, self.config.max_message) {
                Ok(()) => inflated,
                Err(CodecError::TooBig) => return Err(Fail(close::TOO_BIG, "message too big")),
                Err(CodecError::Corrupt) => {
                    return Err(Fail(close::INVALID_PAYLOAD, "bad compressed data"))
                }
            }
        } else {
            message.data
        };
        let msg = if message.text {
            // For uncompressed text this repeats the incremental check and
            // also catches a character cut by the end of the message.
            self.utf8 = Utf8Validator::new();
            match String::from_utf8(data) {
                Ok(s) => Message::Text(s),
                Err(_) => return Err(Fail(close::INVALID_PAYLOAD, "invalid UTF-8")),
            }
        } else {
            Message::Binary(data)
        };
        if self.state == State::Open {
            self.messages_in += 1;
            let mut outbox = Outbox::default();
            self.app.on_message(msg, &mut outbox);
            self.flush_outbox(outbox, now);
        }
        Ok(())
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
                return;
            }
        }
        if let (Some(at), Some(interval), None) = (
            self.next_ping,
            self.config.ping_interval,
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
        if let (Some(at), Some(interval)) = (self.next_tick, self.app.tick_interval()) {
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
