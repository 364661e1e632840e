//! Close codes and the Close frame body (RFC 6455 §5.5.1, §7.4).
//!
//! Owns which status codes may appear on the wire and how a Close payload is
//! parsed and built. The close *handshake* (who sends what, when) belongs to
//! the session.

/// 1000: normal closure (RFC 6455 §7.4.1).
pub const NORMAL: u16 = 1000;
/// 1001: the endpoint is going away (server shutdown).
pub const GOING_AWAY: u16 = 1001;
/// 1002: protocol error.
pub const PROTOCOL_ERROR: u16 = 1002;
/// 1003: a data type the endpoint cannot accept.
pub const UNSUPPORTED: u16 = 1003;
/// 1007: data inconsistent with the message type (invalid UTF-8 text).
pub const INVALID_PAYLOAD: u16 = 1007;
/// 1008: a message (or behaviour) that violates policy.
pub const POLICY: u16 = 1008;
/// 1009: a message too big to process.
pub const TOO_BIG: u16 = 1009;
/// 1011: an unexpected condition on the server.
pub const INTERNAL: u16 = 1011;

/// Largest reason that fits a control frame: 125 bytes minus the code.
pub const MAX_REASON: usize = 123;

/// Whether `code` may appear in a Close frame on the wire (RFC 6455 §7.4.1,
/// §7.4.2 and the IANA registry): 1000–1003 and 1007–1014 are defined;
/// 1004 is reserved, 1005/1006/1015 must never be sent; 3000–4999 are for
/// libraries and applications; everything else (below 1000, the unassigned
/// rest of 1000–2999, 5000 and up) is invalid.
pub fn is_valid_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Why a Close payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseError {
    /// A one-byte body, or a code outside [`is_valid_code`].
    BadCode,
    /// The reason is not UTF-8 (§5.5.1).
    BadReason,
}

/// A parsed Close body: `None` when the peer sent no code (an empty body).
pub fn parse(payload: &[u8]) -> Result<Option<(u16, &str)>, CloseError> {
    match payload {
        [] => Ok(None),
        [_] => Err(CloseError::BadCode),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_code(code) {
                return Err(CloseError::BadCode);
            }
            let reason = std::str::from_utf8(reason).map_err(|_| CloseError::BadReason)?;
            Ok(Some((code, reason)))
        }
    }
}

/// A Close body for `code` and `reason`, the reason cut at a character
/// boundary to fit a control frame.
pub fn payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = Vec::with_capacity(2 + end);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&reason.as_bytes()[..end]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_table() {
        let valid = [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ];
        let invalid = [
            0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ];
        for code in valid {
            assert!(is_valid_code(code), "{code} should be valid");
        }
        for code in invalid {
            assert!(!is_valid_code(code), "{code} should be invalid");
        }
    }

    #[test]
    fn parse_bodies() {
        assert_eq!(parse(b""), Ok(None));
        assert_eq!(parse(b"\x03"), Err(CloseError::BadCode));
        assert_eq!(parse(b"\x03\xe8"), Ok(Some((1000, ""))));
        assert_eq!(parse(b"\x03\xe9bye"), Ok(Some((1001, "bye"))));
        assert_eq!(parse(b"\x03\xed"), Err(CloseError::BadCode)); // 1005
        assert_eq!(parse(b"\x03\xe8\xff"), Err(CloseError::BadReason));
    }

    #[test]
    fn payload_truncates_at_char_boundary() {
        let reason = "é".repeat(70); // 140 bytes
        let body = payload(1000, &reason);
        assert!(body.len() <= 125);
        assert!(std::str::from_utf8(&body[2..]).is_ok());
        assert_eq!(&body[..2], &[0x03, 0xe8]);
    }
}
