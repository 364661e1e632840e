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
    /// In a chunk-ext name (`;name`), with its length so far.
    ExtName {
        len: usize,
    },
    /// Just after `=`: a token or a quoted string follows.
    ExtValueStart,
    ExtToken,
    ExtQuoted,
    ExtQuotedEscape,
    ExtAfterQuoted,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// Start of a trailer field line or the final empty line.
    TrailerStart,
    TrailerName,
    TrailerValue,
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
const BAD_EXTENSION: HttpError = HttpError::BadRequest("malformed chunk extension");
const BAD_TRAILER: HttpError = HttpError::BadRequest("malformed trailer field");

/// `tchar` of RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `qdtext` of RFC 9110 §5.6.4 (obs-text included).
fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff)
}

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
            if self.state == State::Data {
                let take = (input.len() - i).min(self.remaining as usize);
                out.extend_from_slice(&input[i..i + take]);
                i += take;
                self.remaining -= take as u64;
                self.decoded += take as u64;
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            i += 1;
            if matches!(
                self.state,
                State::ExtName { .. }
                    | State::ExtValueStart
                    | State::ExtToken
                    | State::ExtQuoted
                    | State::ExtQuotedEscape
                    | State::ExtAfterQuoted
            ) {
                self.ext_len += 1;
                if self.ext_len > MAX_EXTENSION {
                    return Err(BAD_EXTENSION);
                }
            }
            self.state = match (self.state, b) {
                (State::Size { digits }, _) if hex_value(b).is_some() => {
                    if digits >= 16 {
                        return Err(BAD_CHUNK);
                    }
                    self.size = (self.size << 4) | u64::from(hex_value(b).unwrap_or(0));
                    State::Size { digits: digits + 1 }
                }
                // chunk-size [ chunk-ext ] CRLF: nothing else may follow the
                // digits (RFC 9112 §7.1; whitespace here is a smuggling vector).
                (State::Size { digits }, b'\r' | b';') if digits > 0 => {
                    if self.decoded.saturating_add(self.size) > max_body {
                        return Err(HttpError::PayloadTooLarge);
                    }
                    self.ext_len = 0;
                    if b == b';' {
                        State::ExtName { len: 0 }
                    } else {
                        State::SizeLf
                    }
                }
                (State::Size { .. }, _) => return Err(BAD_CHUNK),
                (State::ExtName { len }, _) if is_tchar(b) => State::ExtName { len: len + 1 },
                (State::ExtName { len }, b'=') if len > 0 => State::ExtValueStart,
                (State::ExtName { len }, b';') if len > 0 => State::ExtName { len: 0 },
                (State::ExtName { len }, b'\r') if len > 0 => State::SizeLf,
                (State::ExtValueStart, b'"') => State::ExtQuoted,
                (State::ExtValueStart | State::ExtToken, _) if is_tchar(b) => State::ExtToken,
                (State::ExtToken | State::ExtAfterQuoted, b';') => State::ExtName { len: 0 },
                (State::ExtToken | State::ExtAfterQuoted, b'\r') => State::SizeLf,
                (State::ExtQuoted, b'"') => State::ExtAfterQuoted,
                (State::ExtQuoted, b'\\') => State::ExtQuotedEscape,
                (State::ExtQuoted, _) if is_qdtext(b) => State::ExtQuoted,
                (State::ExtQuotedEscape, _)
                    if b == b'\t' || b == b' ' || b.is_ascii_graphic() || b >= 0x80 =>
                {
                    State::ExtQuoted
                }
                (
                    State::ExtName { .. }
                    | State::ExtValueStart
                    | State::ExtToken
                    | State::ExtQuoted
                    | State::ExtQuotedEscape
                    | State::ExtAfterQuoted,
                    _,
                ) => return Err(BAD_EXTENSION),
                (State::SizeLf, b'\n') => {
                    if self.size == 0 {
                        State::TrailerStart
                    } else {
                        self.remaining = self.size;
                        State::Data
                    }
                }
                (State::SizeLf, _) => return Err(BAD_CHUNK),
                (State::DataCr, b'\r') => State::DataLf,
                (State::DataLf, b'\n') => {
                    self.size = 0;
                    State::Size { digits: 0 }
                }
                (State::DataCr | State::DataLf, _) => return Err(BAD_CHUNK),
                // Trailer fields are read and dropped, but must be fields
                // (RFC 9112 §7.1.2): a name, a colon, a value; no folding.
                (State::TrailerStart, b'\r') => State::EndLf,
                (State::TrailerStart | State::TrailerName, _) if is_tchar(b) => {
                    self.count_trailer()?;
                    State::TrailerName
                }
                (State::TrailerName, b':') => State::TrailerValue,
                (State::TrailerStart | State::TrailerName, _) => return Err(BAD_TRAILER),
                (State::TrailerValue, b'\r') => State::TrailerLf,
                (State::TrailerValue, _) if b == b'\t' || b >= 0x20 && b != 0x7f => {
                    self.count_trailer()?;
                    State::TrailerValue
                }
                (State::TrailerValue, _) => return Err(BAD_TRAILER),
                (State::TrailerLf, b'\n') => State::TrailerStart,
                (State::TrailerLf, _) => return Err(BAD_TRAILER),
                (State::EndLf, b'\n') => State::Done,
                (State::EndLf, _) => return Err(BAD_CHUNK),
                (State::Data | State::Done, _) => self.state,
            };
        }
        Ok(i)
    }

    fn count_trailer(&mut self) -> Result<(), HttpError> {
        self.trailer_len += 1;
        if self.trailer_len > MAX_TRAILERS {
            return Err(HttpError::HeadersTooLarge);
        }
        Ok(())
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
        let input = b"a;ext=1;q=\"a \\\"b\\\" c\";flag\r\n0123456789\r\n1F\r\n0123456789012345678901234567890\r\n0\r\nX-T: 1\r\n\r\n";
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
