//! Incremental decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! Strict on purpose: CRLF only (a bare LF is a smuggling vector), hex sizes
//! without overflow, bounded extensions and trailers. Trailer fields are read
//! and discarded: nothing in this server acts on them.

use super::error::HttpError;

const MAX_EXTENSION: usize = 4096;
const MAX_TRAILERS: usize = 8192;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size.
    Size {
        digits: u8,
    },
    /// After the size: optional whitespace and `;ext`, up to CR.
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// Start of a trailer line or the final empty line.
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// Decodes a chunked body fed in arbitrary pieces.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    remaining: u64,
    decoded: u64,
    ext_len: usize,
    trailer_len: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            size: 0,
            remaining: 0,
            decoded: 0,
            ext_len: 0,
            trailer_len: 0,
        }
    }
}

const BAD_CHUNK: HttpError = HttpError::BadRequest("malformed chunked body");

impl ChunkedDecoder {
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes bytes from `input`, appending decoded data to `out`. Returns
    /// how many bytes were consumed; stops at the end of the body (the rest
    /// belongs to the next request).
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_body: u64,
    ) -> Result<usize, HttpError> {
        let mut i = 0;
        while i < input.len() && self.state != State::Done {
            let b = input[i];
            match self.state {
                State::Size { digits } => {
                    if let Some(d) = hex_value(b) {
                        if digits >= 16 {
                            return Err(BAD_CHUNK);
                        }
                        self.size = (self.size << 4) | u64::from(d);
                        self.state = State::Size { digits: digits + 1 };
                    } else if digits == 0 {
                        return Err(BAD_CHUNK);
                    } else {
                        if self.decoded.saturating_add(self.size) > max_body {
                            return Err(HttpError::PayloadTooLarge);
                        }
                        match b {
                            b'\r' => self.state = State::SizeLf,
                            b';' | b' ' | b'\t' => {
                                self.ext_len = 0;
                                self.state = State::Extension;
                            }
                            _ => return Err(BAD_CHUNK),
                        }
                    }
                    i += 1;
                }
                State::Extension => {
                    match b {
                        b'\r' => self.state = State::SizeLf,
                        // Controls other than HTAB are never valid in an extension.
                        b'\n' | 0..=8 | 10..=31 | 127 => return Err(BAD_CHUNK),
                        _ => {
                            self.ext_len += 1;
                            if self.ext_len > MAX_EXTENSION {
                                return Err(BAD_CHUNK);
                            }
                        }
                    }
                    i += 1;
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(BAD_CHUNK);
                    }
                    i += 1;
                    if self.size == 0 {
                        self.state = State::TrailerStart;
                    } else {
                        self.remaining = self.size;
                        self.state = State::Data;
                    }
                }
                State::Data => {
                    let take = (input.len() - i).min(self.remaining as usize);
                    out.extend_from_slice(&input[i..i + take]);
                    i += take;
                    self.remaining -= take as u64;
                    self.decoded += take as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(BAD_CHUNK);
                    }
                    i += 1;
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(BAD_CHUNK);
                    }
                    i += 1;
                    self.size = 0;
                    self.state = State::Size { digits: 0 };
                }
                State::TrailerStart => {
                    i += 1;
                    match b {
                        b'\r' => self.state = State::EndLf,
                        b'\n' => return Err(BAD_CHUNK),
                        // obs-fold in trailers is as forbidden as in the head.
                        b' ' | b'\t' => return Err(BAD_CHUNK),
                        _ => {
                            self.trailer_len += 1;
                            self.state = State::TrailerLine;
                        }
                    }
                }
                State::TrailerLine => {
                    i += 1;
                    match b {
                        b'\r' => self.state = State::TrailerLf,
                        b'\n' => return Err(BAD_CHUNK),
                        _ => {
                            self.trailer_len += 1;
                            if self.trailer_len > MAX_TRAILERS {
                                return Err(HttpError::HeadersTooLarge);
                            }
                        }
                    }
                }
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err(BAD_CHUNK);
                    }
                    i += 1;
                    self.state = State::TrailerStart;
                }
                State::EndLf => {
                    if b != b'\n' {
                        return Err(BAD_CHUNK);
                    }
                    i += 1;
                    self.state = State::Done;
                }
                State::Done => {}
            }
        }
        Ok(i)
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize), HttpError> {
        let mut d = ChunkedDecoder::default();
        let mut out = Vec::new();
        let n = d.decode(input, &mut out, 1 << 20)?;
        assert!(d.is_done(), "not done after {input:?}");
        Ok((out, n))
    }

    #[test]
    fn decodes_chunks_and_stops_at_the_end() {
        let (body, n) = decode_all(b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\nNEXT").unwrap();
        assert_eq!(body, b"Wikipedia");
        assert_eq!(n, 24);
    }

    #[test]
    fn byte_at_a_time_equals_all_at_once() {
        let input = b"a;ext=1\r\n0123456789\r\n1F\r\n0123456789012345678901234567890\r\n0\r\nX-T: 1\r\n\r\n";
        let mut d = ChunkedDecoder::default();
        let mut out = Vec::new();
        for b in input.iter() {
            assert_eq!(
                d.decode(std::slice::from_ref(b), &mut out, 1 << 20)
                    .unwrap(),
                1
            );
        }
        assert!(d.is_done());
        assert_eq!(out.len(), 10 + 31);
    }

    #[test]
    fn refusals() {
        for bad in [
            &b"4\nWiki\r\n0\r\n\r\n"[..], // bare LF after size
            b"4\r\nWiki\n0\r\n\r\n",      // bare LF after data
            b"4\r\nWikiX\r\n0\r\n\r\n",   // data longer than size
            b"g\r\n",                     // not hex
            b"-1\r\n",                    // sign
            b"\r\n",                      // empty size
            b"11111111111111111\r\n",     // 17 hex digits
            b"0\r\n\r\r",                 // bad final line
            b"0\r\n X: 1\r\n\r\n",        // folded trailer
            b"1;\x01\r\n",                // control in extension
        ] {
            let mut d = ChunkedDecoder::default();
            let mut out = Vec::new();
            assert!(
                d.decode(bad, &mut out, 1 << 20).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn size_over_limit_is_413_before_data() {
        let mut d = ChunkedDecoder::default();
        let mut out = Vec::new();
        assert_eq!(
            d.decode(b"ffff\r\n", &mut out, 100),
            Err(HttpError::PayloadTooLarge)
        );
        let mut d = ChunkedDecoder::default();
        assert_eq!(d.decode(b"40\r\n", &mut out, 100).unwrap(), 4);
        let data = [b'x'; 64];
        d.decode(&data, &mut out, 100).unwrap();
        assert_eq!(
            d.decode(b"\r\n40\r\n", &mut out, 100),
            Err(HttpError::PayloadTooLarge)
        );
    }
}
