//! WebSocket on a [`Client`]: the upgrade, and frames encoded and decoded
//! by the one client-side codec, `glasshouse::ws::client` (masked client
//! frames, unmasked server frames; RFC 6455 §5).

use std::net::SocketAddr;
use std::time::Instant;

use glasshouse::ws::client::{self, ServerFrame};
use glasshouse::ws::frame::OpCode;

use super::http::{Client, Response};
use super::PATIENCE;

/// The RFC 6455 §1.3 sample key and its accept value.
pub const WS_KEY: &str = client::SAMPLE_KEY;
pub const WS_ACCEPT: &str = client::SAMPLE_ACCEPT;

/// Opens a WebSocket on `path`; panics unless the server answers 101.
pub fn ws_connect(addr: SocketAddr, path: &str) -> Client {
    ws_open(addr, path, "", &[]).0
}

/// Upgrades a new connection to `path` with extra header lines (each
/// ending in `\r\n`), writing `after` in the same write as the request.
/// Panics unless the server answers 101 with the right accept value;
/// returns the connection and the 101.
pub fn ws_open(
    addr: SocketAddr,
    path: &str,
    extra_headers: &str,
    after: &[u8],
) -> (Client, Response) {
    let mut c = Client::connect(addr);
    let mut req = client::upgrade_request("test", path, extra_headers).into_bytes();
    req.extend_from_slice(after);
    c.send(&req);
    let r = c
        .read_response()
        .unwrap_or_else(|| panic!("no answer to the upgrade of {path}"));
    assert_eq!(r.status, 101, "upgrade refused: {r:?}");
    assert_eq!(r.header("sec-websocket-accept"), Some(WS_ACCEPT), "{r:?}");
    (c, r)
}

/// One masked client frame, FIN set, any opcode (reserved ones too).
pub fn ws_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    client::encode(OpCode::from_u8(opcode), true, false, payload, client::KEY)
}

/// Writes one masked client frame (FIN set).
pub fn ws_send(c: &mut Client, opcode: u8, payload: &[u8]) {
    c.send(&ws_frame(opcode, payload));
}

/// The next server frame. None when the connection closed or nothing came
/// within `PATIENCE`; panics on a frame no server may send (masked).
pub fn ws_next(c: &mut Client) -> Option<ServerFrame> {
    let end = Instant::now() + PATIENCE;
    loop {
        let (frames, _) = client::decode(&c.buf).unwrap_or_else(|e| panic!("server frame: {e}"));
        if let Some(f) = frames.into_iter().next() {
            c.buf.drain(..wire_len(&f));
            return Some(f);
        }
        if !matches!(c.fill(end), Ok(n) if n > 0) {
            return None;
        }
    }
}

/// The next server frame as (opcode, payload); see [`ws_next`].
pub fn ws_recv(c: &mut Client) -> Option<(u8, Vec<u8>)> {
    ws_next(c).map(|f| (f.opcode.as_u8(), f.payload))
}

/// Reads frames until a Close and returns its code (1005 for a Close
/// without one, RFC 6455 §7.1.5); data frames before it are skipped. None
/// when the connection ends first.
pub fn ws_close_code(c: &mut Client) -> Option<u16> {
    for _ in 0..10_000 {
        let f = ws_next(c)?;
        if f.opcode == OpCode::Close {
            return Some(f.close_code().unwrap_or(1005));
        }
    }
    panic!("no Close frame in 10000 frames");
}

/// The wire length of a server frame (unmasked, so header + payload).
fn wire_len(f: &ServerFrame) -> usize {
    let len = f.payload.len();
    let ext = match len {
        0..=125 => 0,
        126..=0xffff => 2,
        _ => 8,
    };
    2 + ext + len
}
