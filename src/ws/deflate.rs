//! The permessage-deflate codec (RFC 7692 §7.2).
//!
//! A compressed message is raw DEFLATE data ending with an empty stored block
//! whose last four octets (`00 00 ff ff`) are removed on the wire. This file
//! compresses outgoing messages and inflates incoming ones, keeping or
//! resetting the LZ77 window between messages as negotiated ("context
//! takeover"). What was negotiated is decided in `extension.rs`; which frames
//! carry RSV1 is the session's business.
//!
//! Inflation runs in bounded steps into a fixed scratch buffer and stops as
//! soon as the output would exceed the message limit, so a deflate bomb costs
//! at most the limit in memory. Compressor and decompressor state (hundreds
//! of KiB for a 15-bit window) exist only while needed: without context
//! takeover they are dropped after each message.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The tail removed from each compressed message (RFC 7692 §7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Size of one inflate or deflate step.
const STEP: usize = 32 * 1024;

/// Window bits flate2 accepts: 9..=15 (zlib cannot deflate with 8).
const MIN_BITS: u8 = 9;
const MAX_BITS: u8 = 15;

/// Compresses outgoing messages.
pub struct Deflater {
    /// Present between messages only with context takeover.
    state: Option<Compress>,
    /// Reset the window after each message (`server_no_context_takeover`).
    no_context_takeover: bool,
    window_bits: u8,
}

impl Deflater {
    /// A compressor whose window is at most `2^window_bits` bytes
    /// (9..=15; values outside are clamped).
    pub fn new(window_bits: u8, no_context_takeover: bool) -> Deflater {
        Deflater {
            state: None,
            no_context_takeover,
            window_bits: window_bits.clamp(MIN_BITS, MAX_BITS),
        }
    }

    /// Append the compressed form of `data` (without the tail) to `out`.
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let bits = self.window_bits;
        let state = self.state.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::fast(), false, bits)
        });
        let start = out.len();
        let mut input = data;
        loop {
            // Compress straight into `out`: its output is never much larger
            // than its input, so there is nothing to bound here.
            out.reserve(STEP);
            let room = out.capacity() - out.len();
            let (in0, out0) = (state.total_in(), state.total_out());
            if state.compress_vec(input, out, FlushCompress::Sync).is_err() {
                // The shared window is now unknown: start afresh.
                self.state = None;
                return Err(CodecError::Corrupt);
            }
            let consumed = (state.total_in() - in0) as usize;
            let produced = (state.total_out() - out0) as usize;
            input = &input[consumed..];
            if input.is_empty() && produced < room {
                break;
            }
        }
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.len() == start {
            // Nothing new to flush (an empty message after a flush): zlib
            // emits nothing, and the wire form is a single 0x00 byte, an
            // empty stored block's header (RFC 7692 §7.2.3.6).
            out.push(0x00);
        }
        if self.no_context_takeover {
            self.state = None;
        }
        Ok(())
    }
}

/// Inflates incoming messages, piece by piece as frames arrive.
pub struct Inflater {
    /// Present between messages only with context takeover.
    state: Option<Decompress>,
    /// Reset the window after each message (`client_no_context_takeover`).
    no_context_takeover: bool,
    /// The current message held a final block: ignore the rest of it.
    ended: bool,
    scratch: Vec<u8>,
}

/// Why a message could not be (de)compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecError {
    /// The inflated message would exceed the limit (close 1009).
    TooBig,
    /// Not valid DEFLATE data (close 1007).
    Corrupt,
}

impl Inflater {
    /// A decompressor. It always uses a 15-bit window, which decodes data
    /// produced with any smaller window.
    pub fn new(no_context_takeover: bool) -> Inflater {
        Inflater {
            state: None,
            no_context_takeover,
            ended: false,
            scratch: Vec::new(),
        }
    }

    /// Append the inflated form of one whole compressed message to `out`,
    /// failing with [`CodecError::TooBig`] before `out` would grow past `max`.
    pub fn inflate(
        &mut self,
        data: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), CodecError> {
        self.push(data, out, max)?;
        self.finish(out, max)
    }

    /// Inflate the next piece of the current message into `out` (which
    /// holds the message so far), never letting it grow past `max`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), CodecError> {
        let result = self.run(data, out, max);
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// The message is complete: feed the removed tail (RFC 7692 §7.2.2)
    /// and forget the window unless context takeover was agreed.
    pub fn finish(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), CodecError> {
        let result = self.run(&TAIL, out, max);
        if self.no_context_takeover || result.is_err() {
            self.reset();
        }
        // The window (if kept) lives in the zlib state; the scratch buffer
        // need not outlive the message.
        self.scratch = Vec::new();
        self.ended = false;
        result
    }

    fn reset(&mut self) {
        self.state = None;
        self.scratch = Vec::new();
    }

    fn run(&mut self, mut input: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), CodecError> {
        if self.ended {
            return Ok(());
        }
        let state = self
            .state
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, MAX_BITS));
        self.scratch.resize(STEP, 0);
        loop {
            let (in0, out0) = (state.total_in(), state.total_out());
            let status = state
                .decompress(input, &mut self.scratch, FlushDecompress::Sync)
                .map_err(|_| CodecError::Corrupt)?;
            let consumed = (state.total_in() - in0) as usize;
            let produced = (state.total_out() - out0) as usize;
            if out.len() + produced > max {
                return Err(CodecError::TooBig);
            }
            out.extend_from_slice(&self.scratch[..produced]);
            input = &input[consumed..];
            if status == Status::StreamEnd {
                // A final block (BFINAL) ends the stream: the rest of the
                // message is ignored and the next one starts afresh.
                self.state = None;
                self.ended = true;
                return Ok(());
            }
            let stalled = consumed == 0 && produced == 0;
            if (input.is_empty() && produced < self.scratch.len()) || stalled {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(deflater: &mut Deflater, inflater: &mut Inflater, msg: &[u8]) -> usize {
        let mut wire = Vec::new();
        deflater.compress(msg, &mut wire).unwrap();
        let mut back = Vec::new();
        inflater.inflate(&wire, &mut back, 1 << 24).unwrap();
        assert_eq!(back, msg);
        wire.len()
    }

    #[test]
    fn rfc_example_hello() {
        // RFC 7692 §7.2.3.1: "Hello" compressed.
        let mut inflater = Inflater::new(false);
        let mut out = Vec::new();
        inflater
            .inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut out, 100)
            .unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.2: the same message again, sharing the window.
        out.clear();
        inflater
            .inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], &mut out, 100)
            .unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.3: a stored (uncompressed) block.
        let mut out = Vec::new();
        Inflater::new(true)
            .inflate(
                &[
                    0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
                ],
                &mut out,
                100,
            )
            .unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn round_trip_with_context_takeover() {
        let mut d = Deflater::new(15, false);
        let mut i = Inflater::new(false);
        let msg = br#"{"uptime": 12, "connections": 3, "requests": 400}"#;
        let first = round_trip(&mut d, &mut i, msg);
        let second = round_trip(&mut d, &mut i, msg);
        // The second copy refers back to the first.
        assert!(second < first, "{second} < {first}");
        round_trip(&mut d, &mut i, b"");
        let big: Vec<u8> = (0..300_000u32).map(|n| (n % 251) as u8).collect();
        round_trip(&mut d, &mut i, &big);
    }

    #[test]
    fn round_trip_without_context_takeover() {
        let mut d = Deflater::new(15, true);
        let mut i = Inflater::new(true);
        let msg = b"the same message, twice, the same message";
        let first = round_trip(&mut d, &mut i, msg);
        let second = round_trip(&mut d, &mut i, msg);
        assert_eq!(first, second);
        // Each message also inflates on its own, with a fresh inflater.
        let mut wire = Vec::new();
        d.compress(msg, &mut wire).unwrap();
        let mut back = Vec::new();
        Inflater::new(true).inflate(&wire, &mut back, 100).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn small_window_round_trip() {
        let mut d = Deflater::new(9, false);
        let mut i = Inflater::new(false);
        let big: Vec<u8> = (0..5000u32).map(|n| (n % 97) as u8).collect();
        round_trip(&mut d, &mut i, &big);
        // 8 is clamped rather than panicking.
        let mut d = Deflater::new(8, true);
        round_trip(&mut d, &mut i, &big);
    }

    #[test]
    fn bomb_stops_at_limit() {
        // 8 MiB of zeros compresses to a few KiB.
        let mut d = Deflater::new(15, true);
        let zeros = vec![0u8; 8 << 20];
        let mut wire = Vec::new();
        d.compress(&zeros, &mut wire).unwrap();
        assert!(wire.len() < 1 << 20);
        let mut out = Vec::new();
        let err = Inflater::new(false).inflate(&wire, &mut out, 1 << 20);
        assert_eq!(err, Err(CodecError::TooBig));
        assert!(out.len() <= 1 << 20);
        assert!(out.capacity() <= 2 << 20);
    }

    #[test]
    fn pieces_inflate_like_the_whole() {
        let text: Vec<u8> = b"streamed piece by piece ".repeat(500);
        let mut wire = Vec::new();
        Deflater::new(15, false).compress(&text, &mut wire).unwrap();
        let mut inflater = Inflater::new(false);
        let mut out = Vec::new();
        for piece in wire.chunks(7) {
            inflater.push(piece, &mut out, 1 << 20).unwrap();
        }
        inflater.finish(&mut out, 1 << 20).unwrap();
        assert_eq!(out, text);
    }

    #[test]
    fn garbage_is_corrupt() {
        let mut out = Vec::new();
        let err = Inflater::new(false).inflate(&[0xff, 0xff, 0xff, 0xff], &mut out, 100);
        assert_eq!(err, Err(CodecError::Corrupt));
    }
}
