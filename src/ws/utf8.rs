//! Incremental UTF-8 validation for text messages (RFC 6455 §5.6, §8.1).
//!
//! A text message may arrive in many fragments, and a character may straddle
//! two of them. [`Utf8Validator`] checks each piece as it arrives: a byte
//! sequence that can never become valid fails at once (so the session can
//! close with 1007 without waiting for the rest of the message), while an
//! incomplete character at the end of a piece waits for the next one.

/// Validation state carried between pieces of one text message.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    /// The start of a character cut by the end of the previous piece.
    pending: [u8; 4],
    pending_len: usize,
}

/// The text is not UTF-8 (whatever follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    pub fn new() -> Utf8Validator {
        Utf8Validator::default()
    }

    /// Check the next piece of the message.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.pending_len > 0 {
            // Complete the cut character with at most three more bytes.
            let take = data.len().min(4 - self.pending_len);
            let mut tmp = [0u8; 8];
            tmp[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
            tmp[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            let tmp = &tmp[..self.pending_len + take];
            let valid = match std::str::from_utf8(tmp) {
                Ok(_) => tmp.len(),
                Err(e) => e.valid_up_to(),
            };
            if valid == 0 {
                // The character is still unfinished, or is broken.
                match std::str::from_utf8(tmp) {
                    Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                    _ => {
                        self.pending[..tmp.len()].copy_from_slice(tmp);
                        self.pending_len = tmp.len();
                        return Ok(());
                    }
                }
            }
            // The pending bytes are a strict prefix of one character, so a
            // valid prefix of `tmp` covers that character entirely.
            data = data
                .get(valid.saturating_sub(self.pending_len)..)
                .unwrap_or_default();
            self.pending_len = 0;
        }
        match std::str::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                let rest = &data[e.valid_up_to()..];
                self.pending[..rest.len()].copy_from_slice(rest);
                self.pending_len = rest.len();
                Ok(())
            }
        }
    }

    /// The message ended: an unfinished character is an error.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.pending_len == 0;
        self.pending_len = 0;
        if complete {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(bytes: &[u8]) -> Vec<Result<(), InvalidUtf8>> {
        // Validate `bytes` cut at every possible pair of points.
        let mut results = Vec::new();
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let mut v = Utf8Validator::new();
                let r = v
                    .feed(&bytes[..i])
                    .and_then(|_| v.feed(&bytes[i..j]))
                    .and_then(|_| v.feed(&bytes[j..]))
                    .and_then(|_| v.finish());
                results.push(r);
            }
        }
        results
    }

    #[test]
    fn valid_text_in_any_pieces() {
        let text = "Hello-µ@ßöäüàá-UTF-8!! κόσμε 𝄞 \u{10FFFF}".as_bytes();
        assert!(split_all(text).iter().all(|r| r.is_ok()));
    }

    #[test]
    fn invalid_text_in_any_pieces() {
        for bad in [
            &b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"[..],
            b"\xff",
            b"a\xc0\xafb",
            b"\xf4\x90\x80\x80",
            b"\xe0\x80\x80",
            b"ok\xe2\x82",
        ] {
            assert!(split_all(bad).iter().all(|r| r.is_err()), "{bad:?}");
        }
    }

    #[test]
    fn fails_fast_before_message_end() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"hello \xce"), Ok(()));
        assert_eq!(v.feed(b"\xba"), Ok(()));
        // A surrogate start is invalid as soon as its second byte is seen.
        assert_eq!(v.feed(b"\xed\xa0"), Err(InvalidUtf8));
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xf4"), Ok(()));
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xe2"), Ok(()));
        assert_eq!(v.feed(b"\x82"), Ok(()));
        assert_eq!(v.feed(b"\xac"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }
}
