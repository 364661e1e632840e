//! The client side of the frame codec, for tests.
//!
//! Unit and integration tests speak to a server with these helpers: encode
//! masked frames as a client must (RFC 6455 §5.3), decode the server's
//! unmasked frames, and build an upgrade request. Not used by the server.

use super::close;
use super::frame::{FrameHeader, OpCode};
use super::mask::apply_mask;

/// The masking key used by the shorthand encoders.
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The example key of RFC 6455 §1.3 and its accept value.
pub const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// One masked frame with full control over its bits.
pub fn encode(opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    FrameHeader {
        fin,
        rsv1,
        rsv2: false,
        rsv3: false,
        opcode,
        mask: Some(key),
        len: payload.len() as u64,
    }
    .write(&mut out);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key, 0);
    out
}

/// A masked, final text frame.
pub fn text(s: &str) -> Vec<u8> {
    encode(OpCode::Text, true, false, s.as_bytes(), KEY)
}

/// A masked, final binary frame.
pub fn binary(b: &[u8]) -> Vec<u8> {
    encode(OpCode::Binary, true, false, b, KEY)
}

/// A masked Ping.
pub fn ping(payload: &[u8]) -> Vec<u8> {
    encode(OpCode::Ping, true, false, payload, KEY)
}

/// A masked Pong.
pub fn pong(payload: &[u8]) -> Vec<u8> {
    encode(OpCode::Pong, true, false, payload, KEY)
}

/// A masked Close with a code and reason.
pub fn close(code: u16, reason: &str) -> Vec<u8> {
    encode(
        OpCode::Close,
        true,
        false,
        &close::payload(code, reason),
        KEY,
    )
}

/// A frame as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFrame {
    pub fin: bool,
    pub rsv1: bool,
    pub opcode: OpCode,
    pub payload: Vec<u8>,
}

impl ServerFrame {
    /// The code of a Close frame (`None` for an empty body or another opcode).
    pub fn close_code(&self) -> Option<u16> {
        match (self.opcode, self.payload.as_slice()) {
            (OpCode::Close, [hi, lo, ..]) => Some(u16::from_be_bytes([*hi, *lo])),
            _ => None,
        }
    }
}

/// Decode every complete server frame at the start of `buf`; returns them
/// and the bytes they took. A masked server frame is an error (§5.1).
pub fn decode(buf: &[u8]) -> Result<(Vec<ServerFrame>, usize), String> {
    let mut frames = Vec::new();
    let mut pos = 0;
    while let Some((h, n)) = FrameHeader::parse(&buf[pos..]).map_err(|e| format!("{e:?}"))? {
        if h.mask.is_some() {
            return Err("server frame is masked".into());
        }
        let len = usize::try_from(h.len).map_err(|e| e.to_string())?;
        let Some(payload) = buf.get(pos + n..pos + n + len) else {
            break;
        };
        frames.push(ServerFrame {
            fin: h.fin,
            rsv1: h.rsv1,
            opcode: h.opcode,
            payload: payload.to_vec(),
        });
        pos += n + len;
    }
    Ok((frames, pos))
}

/// A raw upgrade request for `path`, with extra header lines
/// (each ending in `\r\n`).
pub fn upgrade_request(host: &str, path: &str, extra_headers: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
    )
}
