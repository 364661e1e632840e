//! The frame header codec (RFC 6455 §5.2).
//!
//! Parses and writes the FIN bit, the three RSV bits, the opcode, the mask
//! bit and key, and the 7/16/64-bit payload length. Sans-I/O in the httparse
//! manner: [`FrameHeader::parse`] returns `Ok(None)` when more bytes are
//! needed. Which combinations are legal in a given session (masking
//! required, RSV1 only with permessage-deflate, control frames short and
//! unfragmented) is decided by the session, which knows the context.

/// Largest possible header: 2 + 8 (length) + 4 (mask key).
pub const MAX_HEADER: usize = 14;

/// Frame opcodes (RFC 6455 §5.2, §11.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
    /// 0x3–0x7 and 0xB–0xF: reserved, a protocol error when received.
    Reserved(u8),
}

impl OpCode {
    pub fn from_u8(v: u8) -> OpCode {
        match v {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => OpCode::Reserved(other & 0x0f),
        }
    }

    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
            OpCode::Reserved(v) => v & 0x0f,
        }
    }

    /// Control frames have the high bit of the opcode set (§5.5).
    pub fn is_control(self) -> bool {
        self.as_u8() & 0x8 != 0
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Final fragment of a message.
    pub fin: bool,
    /// RSV1: "compressed" under permessage-deflate (RFC 7692 §6).
    pub rsv1: bool,
    pub rsv2: bool,
    pub rsv3: bool,
    pub opcode: OpCode,
    /// The masking key, present when the mask bit is set.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub len: u64,
}

/// A header that can never be valid, whatever the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// A 64-bit length with its most significant bit set (§5.2).
    LengthOverflow,
}

impl FrameHeader {
    /// Parse a header from the start of `buf`. `Ok(None)`: incomplete, call
    /// again with more bytes. `Ok(Some((header, n)))`: the header took `n`
    /// bytes and the payload follows.
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, HeaderError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let masked = b1 & 0x80 != 0;
        let (len, mut n) = match b1 & 0x7f {
            126 => {
                let Some(bytes) = buf.get(2..4) else {
                    return Ok(None);
                };
                (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 4)
            }
            127 => {
                let Some(bytes) = buf.get(2..10) else {
                    return Ok(None);
                };
                let mut word = [0u8; 8];
                word.copy_from_slice(bytes);
                let len = u64::from_be_bytes(word);
                if len >> 63 != 0 {
                    return Err(HeaderError::LengthOverflow);
                }
                (len, 10)
            }
            short => (u64::from(short), 2),
        };
        let mask = if masked {
            let Some(bytes) = buf.get(n..n + 4) else {
                return Ok(None);
            };
            n += 4;
            Some([bytes[0], bytes[1], bytes[2], bytes[3]])
        } else {
            None
        };
        let header = FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv1: b0 & 0x40 != 0,
            rsv2: b0 & 0x20 != 0,
            rsv3: b0 & 0x10 != 0,
            opcode: OpCode::from_u8(b0 & 0x0f),
            mask,
            len,
        };
        Ok(Some((header, n)))
    }

    /// Append this header to `out`, using the shortest length encoding.
    pub fn write(&self, out: &mut Vec<u8>) {
        let b0 = (u8::from(self.fin) << 7)
            | (u8::from(self.rsv1) << 6)
            | (u8::from(self.rsv2) << 5)
            | (u8::from(self.rsv3) << 4)
            | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        out.push(b0);
        if self.len < 126 {
            out.push(mask_bit | self.len as u8);
        } else if let Ok(len) = u16::try_from(self.len) {
            out.push(mask_bit | 126);
            out.extend_from_slice(&len.to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&self.len.to_be_bytes());
        }
        if let Some(key) = self.mask {
            out.extend_from_slice(&key);
        }
    }
}

/// Append one unmasked frame (as a server sends) with `payload` to `out`.
pub fn write_frame(out: &mut Vec<u8>, opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8]) {
    FrameHeader {
        fin,
        rsv1,
        rsv2: false,
        rsv3: false,
        opcode,
        mask: None,
        len: payload.len() as u64,
    }
    .write(out);
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rfc_examples() {
        // RFC 6455 §5.7: unmasked "Hello".
        let (h, n) = FrameHeader::parse(b"\x81\x05Hello").unwrap().unwrap();
        assert_eq!(n, 2);
        assert!(h.fin && !h.rsv1);
        assert_eq!(h.opcode, OpCode::Text);
        assert_eq!(h.len, 5);
        assert_eq!(h.mask, None);
        // Masked "Hello".
        let (h, n) = FrameHeader::parse(b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58")
            .unwrap()
            .unwrap();
        assert_eq!(n, 6);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        // Fragmented: first fragment has FIN clear.
        let (h, _) = FrameHeader::parse(b"\x01\x03Hel").unwrap().unwrap();
        assert!(!h.fin);
        // 256-byte binary, 16-bit length.
        let (h, n) = FrameHeader::parse(b"\x82\x7e\x01\x00").unwrap().unwrap();
        assert_eq!((h.len, n), (256, 4));
        // 64 KiB binary, 64-bit length.
        let (h, n) = FrameHeader::parse(b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00")
            .unwrap()
            .unwrap();
        assert_eq!((h.len, n), (65536, 10));
    }

    #[test]
    fn incomplete_headers_wait() {
        let full = b"\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00\x01\x02\x03\x04";
        for cut in 0..full.len() {
            assert_eq!(FrameHeader::parse(&full[..cut]), Ok(None), "cut {cut}");
        }
        let (h, n) = FrameHeader::parse(full).unwrap().unwrap();
        assert_eq!(n, MAX_HEADER);
        assert_eq!(h.mask, Some([1, 2, 3, 4]));
    }

    #[test]
    fn length_msb_is_rejected() {
        assert_eq!(
            FrameHeader::parse(b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00"),
            Err(HeaderError::LengthOverflow)
        );
    }

    #[test]
    fn rsv_bits_and_opcodes() {
        let (h, _) = FrameHeader::parse(b"\xf3\x00").unwrap().unwrap();
        assert!(h.rsv1 && h.rsv2 && h.rsv3);
        assert_eq!(h.opcode, OpCode::Reserved(3));
        assert!(!h.opcode.is_control());
        let (h, _) = FrameHeader::parse(b"\x8b\x00").unwrap().unwrap();
        assert_eq!(h.opcode, OpCode::Reserved(0xb));
        assert!(h.opcode.is_control());
    }

    #[test]
    fn write_uses_shortest_length() {
        for (len, expect) in [
            (0usize, 2usize),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
        ] {
            let mut out = Vec::new();
            write_frame(&mut out, OpCode::Binary, true, false, &vec![0; len]);
            assert_eq!(out.len() - len, expect, "len {len}");
            let (h, n) = FrameHeader::parse(&out).unwrap().unwrap();
            assert_eq!((h.len as usize, n), (len, expect));
        }
        let mut out = Vec::new();
        write_frame(&mut out, OpCode::Text, true, true, b"x");
        assert_eq!(out, b"\xc1\x01x");
    }
}
