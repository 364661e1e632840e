//! A connection's output queue: encoded bytes first, then at most one body
//! that is not in memory (a file region for `sendfile`, splice or
//! read+write, or a stream produced piece by piece). The engine appends;
//! the transport takes what it can send, either by borrowing
//! ([`Send::Bytes`], then `advance`) or, for a completion-based transport
//! whose kernel holds the buffer until the write completes, by taking the
//! bytes out and giving the buffer back later.

use std::fs::File;
use std::sync::Arc;

use crate::app::BodyStream;
use crate::http::encode;

/// Output produced per connection before a stream body yields to the
/// transport (and, for pipelined requests, before decoding pauses).
pub const MAX_OUTPUT_BATCH: usize = 256 * 1024;

/// What the transport should send next.
#[derive(Debug)]
pub enum Send<'a> {
    /// Bytes to write. `more` is set when a file body follows, so the
    /// transport may cork (`MSG_MORE`) and send head and file together.
    Bytes { data: &'a [u8], more: bool },
    /// `len` bytes of `file` from `offset`. A transport that sends fewer
    /// reports how many; one that finds the file shorter than promised
    /// (it shrank) must end the connection: the length was already sent.
    File {
        file: &'a Arc<File>,
        offset: u64,
        len: u64,
    },
}

/// A file region still to be sent.
pub(super) struct FileBody {
    pub file: Arc<File>,
    pub offset: u64,
    pub remaining: u64,
}

/// A streamed body still being produced.
pub(super) struct StreamBody {
    pub body: Box<dyn BodyStream>,
    /// Chunked framing (HTTP/1.1) or raw until close (HTTP/1.0).
    pub chunked: bool,
}

pub(super) enum Body {
    File(FileBody),
    Stream(StreamBody),
}

#[derive(Default)]
pub(super) struct Output {
    /// Encoded bytes; `bytes[pos..]` is unsent.
    pub bytes: Vec<u8>,
    pub pos: usize,
    pub body: Option<Body>,
    /// Bytes taken by a completion transport and not yet given back.
    pub lent: usize,
}

impl Output {
    pub fn has_bytes(&self) -> bool {
        self.pos < self.bytes.len()
    }

    /// Anything unsent or in flight.
    pub fn is_pending(&self) -> bool {
        self.has_bytes() || self.body.is_some() || self.lent > 0
    }

    /// Encoding appends here.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        if self.pos > 0 && self.pos >= self.bytes.len() {
            self.bytes.clear();
            self.pos = 0;
        }
        &mut self.bytes
    }

    pub fn unsent(&self) -> &[u8] {
        &self.bytes[self.pos..]
    }

    pub fn advance_bytes(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.bytes.len());
        if self.pos == self.bytes.len() {
            self.bytes.clear();
            self.pos = 0;
        }
    }

    /// Pulls a batch from a stream body into the bytes; true when the
    /// stream has ended (its last chunk is queued).
    pub fn fill_from_stream(&mut self) -> bool {
        let Some(Body::Stream(s)) = &mut self.body else {
            return false;
        };
        let out = &mut self.bytes;
        while out.len() < MAX_OUTPUT_BATCH {
            match s.body.next_chunk() {
                Some(data) if s.chunked => encode::chunk(out, &data),
                Some(data) => out.extend_from_slice(&data),
                None => {
                    if s.chunked {
                        out.extend_from_slice(encode::LAST_CHUNK);
                    }
                    self.body = None;
                    return true;
                }
            }
        }
        false
    }

    /// Moves the unsent bytes out for a completion transport, leaving
    /// `spare` (emptied) in their place so later output never moves the
    /// buffer the kernel is reading.
    pub fn take(&mut self, mut spare: Vec<u8>) -> Option<Vec<u8>> {
        if self.lent > 0 || !self.has_bytes() {
            return None;
        }
        spare.clear();
        let mut taken = std::mem::replace(&mut self.bytes, spare);
        if self.pos > 0 {
            taken.drain(..self.pos);
            self.pos = 0;
        }
        self.lent = taken.len();
        Some(taken)
    }

    /// A taken buffer comes back with `n` of its bytes sent; the rest goes
    /// out before anything queued since. Returns the buffer for reuse.
    pub fn give_back(&mut self, mut buf: Vec<u8>, n: usize) -> Vec<u8> {
        self.lent = 0;
        if n < buf.len() {
            buf.drain(..n);
            buf.extend_from_slice(&self.bytes[self.pos..]);
            std::mem::swap(&mut self.bytes, &mut buf);
            self.pos = 0;
        }
        buf.clear();
        buf
    }

    /// Releases capacity an idle connection does not need.
    pub fn shrink(&mut self) {
        if !self.is_pending() {
            self.bytes = Vec::new();
            self.pos = 0;
        }
    }
}
