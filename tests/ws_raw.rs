//! Raw bytes against the real binary: WebSocket handshake refusals, frames
//! pipelined behind the upgrade, protocol errors, the inflated-size limit, a
//! peer that never reads, and the graceful drain (close 1001, exit 0).
//!
//! Each test starts its own server on 127.0.0.1:0 (`tests/support`). Every wait is
//! bounded (socket timeouts, poll timeouts, bounded loops); nothing asserts
//! on timing.

use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use glasshouse::ws::client::{self, ServerFrame};
use glasshouse::ws::deflate::Deflater;
use glasshouse::ws::frame::OpCode;

/// Longest any single wait may take before the test gives up.
const PATIENCE: Duration = Duration::from_secs(20);

mod support;

use support::{ws_close_code, ws_connect, ws_next, ws_open, Client, Response, Server};

/// One request on a fresh connection, and its answer.
fn request(server: &Server, raw: &str) -> Response {
    Client::connect(server.addr()).request(raw.as_bytes())
}

/// The next frame from the server; panics when none comes.
fn frame(ws: &mut Client) -> ServerFrame {
    ws_next(ws).expect("a frame from the server")
}

/// Reads to EOF (or reset); true when the server closed the connection.
fn closed_by_server(ws: &mut Client) -> bool {
    ws.until_close(PATIENCE).1
}

// ----- handshake refusals --------------------------------------------------

#[test]
fn handshake_refusals() {
    let server = Server::start(&[]);
    let base = |method: &str, version: &str, upgrade: bool, key: bool, ws_version: &str| {
        let mut r = format!("{method} /ws/echo {version}\r\nHost: localhost\r\n");
        if upgrade {
            r.push_str("Upgrade: websocket\r\nConnection: Upgrade\r\n");
        }
        if key {
            r.push_str(&format!("Sec-WebSocket-Key: {}\r\n", client::SAMPLE_KEY));
        }
        r.push_str(&format!("Sec-WebSocket-Version: {ws_version}\r\n\r\n"));
        r
    };

    let missing_key = request(&server, &base("GET", "HTTP/1.1", true, false, "13"));
    assert_eq!(missing_key.status, 400, "{missing_key:?}");

    let v8 = request(&server, &base("GET", "HTTP/1.1", true, true, "8"));
    assert_eq!(v8.status, 426, "{v8:?}");
    assert_eq!(v8.header("sec-websocket-version"), Some("13"));

    let post = request(&server, &base("POST", "HTTP/1.1", true, true, "13"));
    assert_eq!(post.status, 405, "{post:?}");

    let no_upgrade = request(&server, &base("GET", "HTTP/1.1", false, true, "13"));
    assert_eq!(no_upgrade.status, 426, "{no_upgrade:?}");
    assert_eq!(no_upgrade.header("sec-websocket-version"), Some("13"));

    let http10 = request(&server, &base("GET", "HTTP/1.0", true, true, "13"));
    assert_eq!(http10.status, 400, "{http10:?}");

    // None of these took the server down.
    let health = request(&server, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(health.status, 200);
}

// ----- frames ----------------------------------------------------------------

#[test]
fn frame_pipelined_with_the_upgrade_is_echoed() {
    let server = Server::start(&[]);
    let mut after = client::text("right behind the request");
    after.extend_from_slice(&client::binary(&[0, 1, 2, 255]));
    let (mut ws, _) = ws_open(server.addr(), "/ws/echo", "", &after);
    let f = frame(&mut ws);
    assert_eq!(f.opcode, OpCode::Text);
    assert_eq!(f.payload, b"right behind the request");
    let f = frame(&mut ws);
    assert_eq!(f.opcode, OpCode::Binary);
    assert_eq!(f.payload, [0, 1, 2, 255]);

    ws.send(&client::close(1000, "bye"));
    assert_eq!(ws_close_code(&mut ws), Some(1000));
    assert!(closed_by_server(&mut ws));
}

#[test]
fn ping_is_answered_with_pong_between_fragments() {
    let server = Server::start(&[]);
    let mut ws = ws_connect(server.addr(), "/ws/echo");
    ws.send(&client::encode(
        OpCode::Text,
        false,
        false,
        b"frag",
        client::KEY,
    ));
    ws.send(&client::ping(b"are you there"));
    ws.send(&client::encode(
        OpCode::Continuation,
        true,
        false,
        b"mented",
        client::KEY,
    ));
    let pong = frame(&mut ws);
    assert_eq!(pong.opcode, OpCode::Pong);
    assert_eq!(pong.payload, b"are you there");
    let echo = frame(&mut ws);
    assert_eq!(echo.opcode, OpCode::Text);
    assert_eq!(echo.payload, b"fragmented");
}

#[test]
fn unmasked_client_frame_closes_with_1002() {
    let server = Server::start(&[]);
    let mut ws = ws_connect(server.addr(), "/ws/echo");
    // FIN + text, no mask bit, 5 bytes.
    ws.send(b"\x81\x05hello");
    assert_eq!(ws_close_code(&mut ws), Some(1002));
    assert!(closed_by_server(&mut ws));
}

#[test]
fn deflate_bomb_closes_with_1009() {
    let server = Server::start(&["--ws-max-message", "65536"]);
    let (mut ws, upgrade) = ws_open(
        server.addr(),
        "/ws/echo",
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
        &[],
    );
    let ext = upgrade
        .header("sec-websocket-extensions")
        .unwrap_or_else(|| panic!("permessage-deflate not negotiated: {upgrade:?}"))
        .to_string();
    assert!(ext.contains("permessage-deflate"), "{ext}");

    // A compressed message under the limit is echoed (compressed).
    let mut deflater = Deflater::new(15, true);
    let mut small = Vec::new();
    deflater.compress(&[b'a'; 1000], &mut small).unwrap();
    ws.send(&client::encode(
        OpCode::Binary,
        true,
        true,
        &small,
        client::KEY,
    ));
    let f = frame(&mut ws);
    assert_eq!(f.opcode, OpCode::Binary);
    assert!(f.rsv1, "the echo is compressed");

    // 4 MiB of zeros compress to a few kilobytes: far below the limit on
    // the wire, far above it once inflated.
    let mut bomb = Vec::new();
    deflater.compress(&vec![0u8; 4 << 20], &mut bomb).unwrap();
    assert!(bomb.len() < 65536, "bomb is {} bytes", bomb.len());
    ws.send(&client::encode(
        OpCode::Binary,
        true,
        true,
        &bomb,
        client::KEY,
    ));
    assert_eq!(ws_close_code(&mut ws), Some(1009));
    assert!(closed_by_server(&mut ws));
}

#[test]
fn uncompressed_message_over_the_limit_closes_with_1009() {
    let server = Server::start(&["--ws-max-message", "65536"]);
    let mut ws = ws_connect(server.addr(), "/ws/echo");
    // Announced in the header: the server need not read the payload.
    let mut frame = client::binary(&vec![7u8; 65537]);
    frame.truncate(64);
    let _ = ws.stream.write_all(&frame);
    assert_eq!(ws_close_code(&mut ws), Some(1009));
}

// ----- a peer that never reads --------------------------------------------

/// Waits (bounded) until the socket reports an error or hangup, without
/// reading from it. Returns false when nothing happened within `PATIENCE`.
fn wait_hangup(s: &support::Wire) -> bool {
    let mut pfd = libc::pollfd {
        fd: s.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    let deadline = Instant::now() + PATIENCE * 3;
    while Instant::now() < deadline {
        // SAFETY: one valid pollfd for a descriptor we own.
        let n = unsafe { libc::poll(&mut pfd, 1, 200) };
        if n > 0 && pfd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
            return true;
        }
    }
    false
}

#[test]
fn peer_that_never_reads_is_dropped() {
    // A short keepalive so the unanswered Ping gives up on the peer soon.
    let server = Server::start(&["--ws-ping-interval", "0.5"]);
    let mut ws = ws_connect(server.addr(), "/ws/echo");
    ws.stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let message = client::binary(&vec![0x5a; 1 << 20]);
    // Write until the server ends the connection (reset) or stops taking
    // input; bounded by a byte budget and a deadline. After its Close the
    // server lingers a moment, discarding input, before it lets go; only
    // a reset or hangup says it let go.
    let deadline = Instant::now() + PATIENCE * 3;
    let (mut sent, mut pos) = (0u64, 0usize);
    let mut ended = false;
    while sent < 64 << 30 && Instant::now() < deadline {
        match ws.stream.write(&message[pos..]) {
            Ok(n) => {
                sent += n as u64;
                pos = (pos + n) % message.len();
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                ended = wait_hangup(&ws.stream);
                break;
            }
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                ended = true;
                break;
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(
        ended,
        "the server kept a non-reading peer open ({sent} bytes taken)"
    );
    assert!(closed_by_server(&mut ws));

    // What the server held for it stayed bounded (the session's output cap
    // is 4 MiB; the peer sent far more than that).
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let hwm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    eprintln!(
        "peer sent {} MiB; server peak RSS {} MiB",
        sent >> 20,
        hwm_kib >> 10
    );
    assert!(hwm_kib < 128 << 10, "server peak RSS {hwm_kib} KiB");

    let health = request(&server, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(health.status, 200);
    assert_eq!(health.body, br#"{"status":"ok"}"#);
}

// ----- graceful drain -----------------------------------------------------

#[test]
fn sigterm_sends_1001_and_exits_zero() {
    let mut server = Server::start(&[]);
    let mut ws = ws_connect(server.addr(), "/ws/echo");
    ws.send(&client::text("before the drain"));
    assert_eq!(frame(&mut ws).payload, b"before the drain");

    server.signal(libc::SIGTERM);
    assert_eq!(ws_close_code(&mut ws), Some(1001));
    ws.send(&client::close(1001, ""));
    assert!(closed_by_server(&mut ws));
    let status = server.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
}

// ----- other handshake and connection rules --------------------------------

#[test]
fn origin_allow_list_is_enforced() {
    let server = Server::start(&["--ws-allowed-origins", "https://good.example"]);
    let bad = request(
        &server,
        &client::upgrade_request("localhost", "/ws/echo", "Origin: https://evil.example\r\n"),
    );
    assert_eq!(bad.status, 403, "{bad:?}");
    // Allowed origin (compared without regard to case), and no Origin at all
    // (a non-browser client), are let through.
    let (mut good, _) = ws_open(
        server.addr(),
        "/ws/echo",
        "Origin: https://GOOD.example\r\n",
        &[],
    );
    good.send(&client::text("ok"));
    assert_eq!(frame(&mut good).payload, b"ok");
    let mut none = ws_connect(server.addr(), "/ws/echo");
    none.send(&client::text("ok"));
    assert_eq!(frame(&mut none).payload, b"ok");
}

#[test]
fn websocket_outlives_the_http_idle_timeout() {
    let server = Server::start(&["--idle-timeout", "1", "--header-timeout", "1"]);
    let mut ws = ws_connect(server.addr(), "/ws/echo");
    ws.send(&client::text("first"));
    assert_eq!(frame(&mut ws).payload, b"first");
    // Quiet for longer than both HTTP timeouts (and the 1 s sweep).
    std::thread::sleep(Duration::from_millis(3500));
    ws.send(&client::text("still here"));
    assert_eq!(frame(&mut ws).payload, b"still here");
}

#[test]
fn message_size_limit_is_exact_plain_fragmented_and_compressed() {
    let server = Server::start(&["--ws-max-message", "65536"]);

    // Exactly the limit, in one frame: echoed.
    let mut ws = ws_connect(server.addr(), "/ws/echo");
    ws.send(&client::binary(&[1u8; 65536]));
    let f = frame(&mut ws);
    assert_eq!((f.opcode, f.payload.len()), (OpCode::Binary, 65536));

    // Exactly the limit in fragments: echoed; one byte more: 1009.
    ws.send(&client::encode(
        OpCode::Binary,
        false,
        false,
        &[2u8; 65000],
        client::KEY,
    ));
    ws.send(&client::encode(
        OpCode::Continuation,
        true,
        false,
        &[2u8; 536],
        client::KEY,
    ));
    assert_eq!(frame(&mut ws).payload.len(), 65536);
    ws.send(&client::encode(
        OpCode::Binary,
        false,
        false,
        &[3u8; 65000],
        client::KEY,
    ));
    ws.send(&client::encode(
        OpCode::Continuation,
        true,
        false,
        &[3u8; 537],
        client::KEY,
    ));
    assert_eq!(ws_close_code(&mut ws), Some(1009));

    // Compressed: the limit applies to the inflated size, exactly.
    let ext = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    let (mut ws, _) = ws_open(server.addr(), "/ws/echo", ext, &[]);
    let mut deflater = Deflater::new(15, true);
    let mut wire = Vec::new();
    deflater.compress(&[4u8; 65536], &mut wire).unwrap();
    ws.send(&client::encode(
        OpCode::Binary,
        true,
        true,
        &wire,
        client::KEY,
    ));
    let f = frame(&mut ws);
    assert!(f.rsv1 && f.opcode == OpCode::Binary);
    wire.clear();
    deflater.compress(&[5u8; 65537], &mut wire).unwrap();
    ws.send(&client::encode(
        OpCode::Binary,
        true,
        true,
        &wire,
        client::KEY,
    ));
    assert_eq!(ws_close_code(&mut ws), Some(1009));
}

#[test]
fn client_close_then_half_close_still_gets_the_close_reply() {
    let server = Server::start(&[]);
    let mut ws = ws_connect(server.addr(), "/ws/echo");
    ws.send(&client::text("last"));
    ws.send(&client::close(1000, "done"));
    ws.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let f = frame(&mut ws);
    assert_eq!(f.payload, b"last");
    assert_eq!(ws_close_code(&mut ws), Some(1000));
    assert!(closed_by_server(&mut ws));
}
