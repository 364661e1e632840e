//! WebSockets over real sockets (RFC 6455): the handshake's refusals, close
//! codes for protocol errors, /ws/stats pushes, and the drain when a client
//! never answers the close.

mod support;

use std::io::Write;

use support::{
    parse_response, send_raw, ws_close_code, ws_connect, ws_recv, ws_send, Client, Server, PATIENCE,
};

#[test]
fn protocol_errors_close_with_the_right_code() {
    let server = Server::start(&["--ws-max-message", "1024"]);
    // 1009: a message over --ws-max-message.
    let mut ws = ws_connect(server.addr(), "/ws/echo");
    ws_send(&mut ws, 0x2, &vec![0u8; 2048]);
    assert_eq!(ws_close_code(&mut ws), Some(1009));
    // 1007: invalid UTF-8 in a text message.
    let mut ws = ws_connect(server.addr(), "/ws/echo");
    ws_send(&mut ws, 0x1, b"\xff\xfe");
    assert_eq!(ws_close_code(&mut ws), Some(1007));
    // 1002: an unmasked client frame.
    let mut ws = ws_connect(server.addr(), "/ws/echo");
    ws.send(b"\x81\x02hi");
    assert_eq!(ws_close_code(&mut ws), Some(1002));
    // 1002: a reserved opcode.
    let mut ws = ws_connect(server.addr(), "/ws/echo");
    ws_send(&mut ws, 0x3, b"x");
    assert_eq!(ws_close_code(&mut ws), Some(1002));
    server.assert_healthy();
}

#[test]
fn handshake_refusals() {
    let server = Server::start(&["--ws-allowed-origins", "http://good.example"]);
    let base = "GET /ws/echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
    for (extra, what) in [
        ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n", "version 8"),
        ("Sec-WebSocket-Version: 13\r\n", "no key"),
        ("Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n", "bad key"),
        (
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://evil.example\r\n",
            "foreign origin",
        ),
    ] {
        let raw = send_raw(server.addr(), format!("{base}{extra}\r\n").as_bytes());
        let (r, _) = parse_response(&raw, false).unwrap_or_else(|| panic!("{what}: no answer"));
        assert!(
            (400..500).contains(&r.status),
            "{what}: expected a 4xx, got {r:?}"
        );
    }
    // The allowed origin is accepted.
    let mut c = Client::connect(server.addr());
    let r = c.request(
        format!(
            "{base}Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://good.example\r\n\r\n",
            support::WS_KEY
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 101, "{r:?}");
}

#[test]
fn stats_stream_pushes_json() {
    let server = Server::start(&[]);
    let mut ws = ws_connect(server.addr(), "/ws/stats");
    for _ in 0..2 {
        let (op, payload) = ws_recv(&mut ws).expect("a stats push");
        assert_eq!(op, 0x1);
        let v: serde_json::Value = serde_json::from_slice(&payload).expect("JSON");
        assert_eq!(v["state"], "serving", "{v}");
        assert!(v["websockets_open"].as_u64().unwrap_or(0) >= 1, "{v}");
    }
}

#[test]
fn drain_does_not_wait_forever_for_a_silent_websocket() {
    let mut server = Server::start(&["--drain-timeout", "2"]);
    let mut ws = ws_connect(server.addr(), "/ws/echo");
    server.signal(libc::SIGTERM);
    assert_eq!(ws_close_code(&mut ws), Some(1001));
    // We never answer the close: the server ends it by itself.
    let status = server.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "{}", server.log());
    let _ = ws.stream.flush();
}
