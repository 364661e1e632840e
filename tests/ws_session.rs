//! The WebSocket layer through its public surface only, as the reactor and
//! the service layer will use it: `accept` on an upgrade request, then a
//! `Session` fed with bytes built by `ws::client`.

use std::net::SocketAddr;
use std::time::Instant;

use glasshouse::app::{Header, Request, Version};
use glasshouse::engine::upgrade;
use glasshouse::ws::deflate::{Deflater, Inflater};
use glasshouse::ws::frame::OpCode;
use glasshouse::ws::{client, DeflatePolicy, EchoApp, Session, State, WsOptions};

fn upgrade_request<'a>(headers: &'a [Header<'a>]) -> Request<'a> {
    let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    Request {
        method: "GET",
        path: "/ws/echo",
        query: "",
        version: Version::Http11,
        headers,
        body: b"",
        peer: addr,
        local: addr,
    }
}

#[test]
fn handshake_then_compressed_echo_then_close() {
    let headers = [
        Header {
            name: "Host",
            value: b"localhost",
        },
        Header {
            name: "Upgrade",
            value: b"websocket",
        },
        Header {
            name: "Connection",
            value: b"Upgrade",
        },
        Header {
            name: "Sec-WebSocket-Key",
            value: client::SAMPLE_KEY.as_bytes(),
        },
        Header {
            name: "Sec-WebSocket-Version",
            value: b"13",
        },
        Header {
            name: "Sec-WebSocket-Extensions",
            value: b"permessage-deflate; client_max_window_bits",
        },
    ];
    let opts = WsOptions {
        deflate: Some(DeflatePolicy::default()),
        ..WsOptions::default()
    };
    let hs = upgrade::accept(&upgrade_request(&headers), &opts, Box::new(EchoApp));
    assert_eq!(hs.response.status, 101);
    let upgrade = hs.upgrade.expect("101 carries the session");
    let now = Instant::now();
    let mut session = Session::from_upgrade(upgrade, now);

    // The client compresses with context takeover, as browsers do.
    let mut deflater = Deflater::new(15, false);
    let mut inflater = Inflater::new(false);
    for text in ["hello", "hello", "hello, world"] {
        let mut compressed = Vec::new();
        deflater.compress(text.as_bytes(), &mut compressed).unwrap();
        let wire = client::encode(OpCode::Text, true, true, &compressed, client::KEY);
        assert_eq!(session.receive(&wire, now), wire.len());
        let (frames, used) = client::decode(session.output()).unwrap();
        session.consume_output(used);
        assert_eq!(frames.len(), 1);
        assert!(frames[0].rsv1);
        let mut echoed = Vec::new();
        inflater
            .inflate(&frames[0].payload, &mut echoed, 1 << 20)
            .unwrap();
        assert_eq!(echoed, text.as_bytes());
    }
    assert_eq!(session.take_counts(), (3, 3));

    // Graceful shutdown: the server closes with 1001, the client answers.
    session.start_close(1001, "server shutting down", now);
    let (frames, used) = client::decode(session.output()).unwrap();
    session.consume_output(used);
    assert_eq!(frames[0].close_code(), Some(1001));
    session.receive(&client::close(1001, ""), now);
    assert_eq!(session.state(), State::Flushing);
    assert!(session.should_close_transport());
}
