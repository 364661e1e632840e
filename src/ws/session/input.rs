//! The reading half of a [`Session`]: frames in, messages to the
//! application (RFC 6455 §5, §6.2, §7; RFC 7692 §6.2).
//!
//! Reading is streamed: a header may be cut across reads (it is gathered
//! here), and a payload is unmasked, inflated and UTF-8-checked piece by
//! piece as it arrives, so the reactor never holds a whole frame and a
//! broken message fails as soon as the breakage is seen (§8.1).

use std::time::Instant;

use super::{Fail, InFrame, InMessage, Session, State, MAX_CONTROL, MAX_RESERVE};
use crate::ws::close;
use crate::ws::deflate::CodecError;
use crate::ws::frame::{self, FrameHeader, OpCode, MAX_HEADER};
use crate::ws::mask::apply_mask;
use crate::ws::utf8::Utf8Validator;
use crate::ws::{Message, Outbox};

const BAD_UTF8: Fail = Fail(close::INVALID_PAYLOAD, "invalid UTF-8");

fn codec_fail(e: CodecError) -> Fail {
    match e {
        CodecError::TooBig => Fail(close::TOO_BIG, "message too big"),
        CodecError::Corrupt => Fail(close::INVALID_PAYLOAD, "bad compressed data"),
    }
}

impl Session {
    /// Read `input`; returns how many bytes were consumed. While the session
    /// reads ([`Session::wants_read`]) that is all of them: partial headers
    /// and payloads are kept inside. Once reading stops (Close received,
    /// protocol error, peer dropped) the rest is not looked at and is to be
    /// discarded.
    pub fn receive(&mut self, input: &[u8], now: Instant) -> usize {
        let mut pos = 0;
        while self.wants_read() {
            if let Some(frame) = &self.frame {
                let room = usize::try_from(frame.remaining).unwrap_or(usize::MAX);
                let take = (input.len() - pos).min(room);
                let chunk = &input[pos..pos + take];
                pos += take;
                if let Err(fail) = self.on_payload(chunk) {
                    self.fail(fail, now);
                    break;
                }
                self.end_frame_if_complete(now);
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
                    self.end_frame_if_complete(now);
                }
                Err(_) => {
                    self.fail(Fail(close::PROTOCOL_ERROR, "bad frame length"), now);
                    break;
                }
            }
        }
        pos
    }

    fn end_frame_if_complete(&mut self, now: Instant) {
        if self.frame.as_ref().is_some_and(|f| f.remaining == 0) {
            if let Err(fail) = self.on_frame_end(now) {
                self.fail(fail, now);
            }
        }
    }

    /// Check a header against the session's rules (§5.2, §5.4, §5.5;
    /// RFC 7692 §6.1 for RSV1).
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
                self.check_size(message.wire_len, h.len)?;
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
                    wire_len: 0,
                    data: Vec::with_capacity(reserve),
                });
                self.utf8 = Utf8Validator::new();
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

    /// A message's payload on the wire may not exceed `max_message` (§10.4);
    /// inflated output is bounded separately, as it is produced.
    fn check_size(&self, have: usize, more: u64) -> Result<(), Fail> {
        let total = (have as u64).saturating_add(more);
        if total > self.config.max_message as u64 {
            return Err(Fail(close::TOO_BIG, "message too big"));
        }
        Ok(())
    }

    /// Take the next piece of the current frame's payload: unmask it, and
    /// for data frames inflate it if compressed and check its UTF-8.
    fn on_payload(&mut self, chunk: &[u8]) -> Result<(), Fail> {
        let Some(frame) = &mut self.frame else {
            return Ok(());
        };
        frame.remaining -= chunk.len() as u64;
        let offset = frame.offset;
        frame.offset += chunk.len();
        // The message's last bytes: the whole-message check at its end
        // covers them, so the incremental one (there for failing early)
        // would only repeat it.
        let last = frame.fin && frame.remaining == 0;
        if frame.opcode.is_control() {
            let start = self.control.len();
            self.control.extend_from_slice(chunk);
            apply_mask(&mut self.control[start..], frame.mask, offset);
            return Ok(());
        }
        let Some(message) = &mut self.message else {
            return Ok(());
        };
        message.wire_len += chunk.len();
        let start = message.data.len();
        match (&mut self.inflater, message.compressed) {
            (Some(inflater), true) => {
                self.scratch.clear();
                self.scratch.extend_from_slice(chunk);
                apply_mask(&mut self.scratch, frame.mask, offset);
                inflater
                    .push(&self.scratch, &mut message.data, self.config.max_message)
                    .map_err(codec_fail)?;
            }
            _ => {
                message.data.extend_from_slice(chunk);
                apply_mask(&mut message.data[start..], frame.mask, offset);
            }
        }
        if message.text && !last && self.utf8.feed(&message.data[start..]).is_err() {
            return Err(BAD_UTF8);
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
                // §5.5.2: answer with the same payload, as soon as practical.
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
        // 1005: "no status received" (§7.4.1), for the log only.
        self.received_close = Some(code.unwrap_or(1005));
        if self.state == State::Open {
            let payload = code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default();
            frame::write_frame(&mut self.out, OpCode::Close, true, false, &payload);
            self.sent_close = code;
        }
        self.enter_flushing(now);
        Ok(())
    }

    /// A data message is complete: finish inflating and validating, deliver.
    fn on_message_end(&mut self, now: Instant) -> Result<(), Fail> {
        let Some(mut message) = self.message.take() else {
            return Ok(());
        };
        if let (Some(inflater), true) = (&mut self.inflater, message.compressed) {
            inflater
                .finish(&mut message.data, self.config.max_message)
                .map_err(codec_fail)?;
        }
        let msg = if message.text {
            // The whole message once (the incremental check saw only the
            // bytes that arrived before its last piece).
            Message::Text(String::from_utf8(message.data).map_err(|_| BAD_UTF8)?)
        } else {
            Message::Binary(message.data)
        };
        if self.state == State::Open {
            self.messages_in += 1;
            let mut outbox = Outbox::default();
            self.app.on_message(msg, &mut outbox);
            self.flush_outbox(outbox, now);
        }
        Ok(())
    }
}
