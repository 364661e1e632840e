//! The request decoder: turns a connection's unconsumed bytes into complete
//! requests, one at a time, in order (so pipelined requests are answered in
//! the order they came).
//!
//! The caller owns the buffer and calls [`RequestDecoder::decode`] after every
//! read with all bytes not yet consumed. A head is parsed once for framing and
//! parsed again (cheaply) when the body is complete, so the decoder keeps only
//! offsets and the de-chunked body between calls, never pointers.

use super::chunked::ChunkedDecoder;
use super::error::HttpError;
use super::head::{self, BodyFraming, Head, Header, Limits, Version};

/// Progress on the bytes given so far.
#[derive(Debug)]
pub enum Decoded<'a> {
    /// More bytes are needed. `send_continue` asks the caller to write
    /// `100 Continue` now (once per request).
    Incomplete { send_continue: bool },
    /// A whole request; `consumed` bytes of the input belong to it.
    Request {
        head: Head<'a>,
        body: &'a [u8],
        consumed: usize,
    },
}

/// Per-connection decoding state between reads.
#[derive(Debug, Default)]
pub struct RequestDecoder {
    /// Length of the parsed head of the pending request, 0 when none.
    head_len: usize,
    framing: Option<BodyFraming>,
    expect_continue: bool,
    continue_sent: bool,
    chunked: ChunkedDecoder,
    /// Input bytes after the head already fed to the chunked decoder.
    chunked_pos: usize,
    /// De-chunked body of the pending request.
    body: Vec<u8>,
    /// The last call returned a request: start afresh on the next one.
    completed: bool,
}

impl RequestDecoder {
    /// True while part of a request has been received but not all of it.
    pub fn in_progress(&self) -> bool {
        self.head_len != 0 && !self.completed
    }

    fn reset(&mut self) {
        self.head_len = 0;
        self.framing = None;
        self.expect_continue = false;
        self.continue_sent = false;
        self.chunked = ChunkedDecoder::default();
        self.chunked_pos = 0;
        self.body.clear();
        if self.body.capacity() > 64 * 1024 {
            self.body = Vec::new();
        }
        self.completed = false;
    }

    /// Decodes the next request from `buf` (all unconsumed input).
    pub fn decode<'a>(
        &'a mut self,
        buf: &'a [u8],
        storage: &'a mut [Header<'a>],
        limits: &Limits,
    ) -> Result<Decoded<'a>, HttpError> {
        if self.completed {
            self.reset();
        }
        // Ignore empty lines before a request line (RFC 9112 §2.2).
        let skip = leading_crlfs(buf);
        if self.head_len == 0 {
            let Some(h) = head::parse(&buf[skip..], storage, limits)? else {
                return Ok(Decoded::Incomplete {
                    send_continue: false,
                });
            };
            self.head_len = skip + h.len;
            self.framing = Some(h.framing);
            self.expect_continue = h.expect_continue && h.version == Version::Http11;
            return Ok(match self.progress_body(buf, limits)? {
                Some(end) => self.complete(h, buf, end),
                None => self.incomplete(),
            });
        }
        // The head was parsed on an earlier call: only the body can move.
        let Some(end) = self.progress_body(buf, limits)? else {
            return Ok(self.incomplete());
        };
        match head::parse(&buf[skip..self.head_len], storage, limits)? {
            Some(h) => Ok(self.complete(h, buf, end)),
            None => Err(HttpError::BadRequest("request head changed while buffered")),
        }
    }

    /// Advances over the body; the end offset of the request once complete.
    fn progress_body(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<usize>, HttpError> {
        let head_end = self.head_len;
        Ok(match self.framing {
            Some(BodyFraming::Length(n)) => {
                let end = head_end + n as usize;
                (buf.len() >= end).then_some(end)
            }
            Some(BodyFraming::Chunked) => {
                let from = head_end + self.chunked_pos;
                let used = self
                    .chunked
                    .decode(&buf[from..], &mut self.body, limits.max_body)?;
                self.chunked_pos += used;
                self.chunked
                    .is_done()
                    .then_some(head_end + self.chunked_pos)
            }
            _ => Some(head_end),
        })
    }

    fn incomplete<'a>(&mut self) -> Decoded<'a> {
        let send_continue = self.expect_continue && !self.continue_sent;
        self.continue_sent = true;
        Decoded::Incomplete { send_continue }
    }

    fn complete<'a>(&'a mut self, head: Head<'a>, buf: &'a [u8], end: usize) -> Decoded<'a> {
        self.completed = true;
        let body = match self.framing {
            Some(BodyFraming::Chunked) => &self.body[..],
            _ => &buf[self.head_len..end],
        };
        Decoded::Request {
            head,
            body,
            consumed: end,
        }
    }
}

fn leading_crlfs(buf: &[u8]) -> usize {
    let mut i = 0;
    while buf.len() >= i + 2 && &buf[i..i + 2] == b"\r\n" {
        i += 2;
    }
    i
}

#[cfg(test)]
mod tests;
