//! Session tests, driven with byte literals and the `client` codec:
//! framing rules, fragmentation, UTF-8, limits, the close handshake,
//! keepalive, ticks, permessage-deflate, and robustness.

use std::time::{Duration, Instant};

use super::*;
use crate::ws::client::{self, ServerFrame};
use crate::ws::deflate::{Deflater, Inflater};
use crate::ws::frame::OpCode;
use crate::ws::{DeflateParams, EchoApp, Message, Outbox, SessionConfig, WsApp};

fn t0() -> Instant {
    Instant::now()
}

fn echo_session(config: SessionConfig) -> (Session, Instant) {
    let now = t0();
    (Session::new(config, Box::new(EchoApp), now), now)
}

/// Feed bytes, expect all consumed, return the server's frames.
fn feed(s: &mut Session, bytes: &[u8], now: Instant) -> Vec<ServerFrame> {
    s.receive(bytes, now);
    drain(s)
}

fn drain(s: &mut Session) -> Vec<ServerFrame> {
    let (frames, used) = client::decode(s.output()).unwrap();
    assert_eq!(used, s.output().len(), "partial frame in output");
    s.consume_output(used);
    frames
}

fn text_frame(s: &str) -> ServerFrame {
    ServerFrame {
        fin: true,
        rsv1: false,
        opcode: OpCode::Text,
        payload: s.as_bytes().to_vec(),
    }
}

/// The session failed with `code` and closes once flushed.
fn assert_failed(frames: &[ServerFrame], s: &Session, code: u16) {
    let last = frames.last().expect("a close frame");
    assert_eq!(last.opcode, OpCode::Close);
    assert_eq!(last.close_code(), Some(code), "frames {frames:?}");
    assert_eq!(s.state(), State::Flushing);
    assert!(s.should_close_transport());
    assert!(!s.wants_read());
}

#[test]
fn echoes_rfc_masked_hello() {
    let (mut s, now) = echo_session(SessionConfig::default());
    let n = s.receive(b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", now);
    assert_eq!(n, 11);
    assert_eq!(s.output(), b"\x81\x05Hello");
    s.consume_output(7);
    assert_eq!(s.take_counts(), (1, 1));
    assert_eq!(s.take_counts(), (0, 0));
    assert_eq!(s.state(), State::Open);
    assert!(!s.should_close_transport());
}

#[test]
fn byte_at_a_time_and_many_frames_per_read() {
    let (mut s, now) = echo_session(SessionConfig::default());
    let mut wire = client::text("one");
    wire.extend(client::binary(&[0u8; 300]));
    wire.extend(client::binary(&vec![7u8; 70_000]));
    wire.extend(client::text(""));
    for b in &wire {
        assert_eq!(s.receive(std::slice::from_ref(b), now), 1);
    }
    let frames = drain(&mut s);
    assert_eq!(frames.len(), 4);
    assert_eq!(frames[0], text_frame("one"));
    assert_eq!(frames[1].payload, vec![0u8; 300]);
    assert_eq!(frames[2].payload, vec![7u8; 70_000]);
    assert_eq!(frames[3], text_frame(""));
    // All in one read.
    assert_eq!(s.receive(&wire, now), wire.len());
    assert_eq!(drain(&mut s).len(), 4);
}

#[test]
fn protocol_violations_close_1002() {
    let key = client::KEY;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unmasked", b"\x81\x05Hello".to_vec()),
        (
            "rsv2",
            client::encode(OpCode::Text, true, false, b"x", key)
                .into_iter()
                .enumerate()
                .map(|(i, b)| if i == 0 { b | 0x20 } else { b })
                .collect(),
        ),
        (
            "rsv3",
            client::encode(OpCode::Text, true, false, b"x", key)
                .into_iter()
                .enumerate()
                .map(|(i, b)| if i == 0 { b | 0x10 } else { b })
                .collect(),
        ),
        (
            "rsv1 without deflate",
            client::encode(OpCode::Text, true, true, b"x", key),
        ),
        (
            "opcode 3",
            client::encode(OpCode::Reserved(3), true, false, b"", key),
        ),
        (
            "opcode 0xB",
            client::encode(OpCode::Reserved(0xb), true, false, b"", key),
        ),
        (
            "fragmented ping",
            client::encode(OpCode::Ping, false, false, b"x", key),
        ),
        (
            "long ping",
            client::encode(OpCode::Ping, true, false, &[0; 126], key),
        ),
        (
            "rsv1 ping",
            client::encode(OpCode::Ping, true, true, b"", key),
        ),
        (
            "lone continuation",
            client::encode(OpCode::Continuation, true, false, b"x", key),
        ),
        ("text inside fragmented", {
            let mut v = client::encode(OpCode::Text, false, false, b"a", key);
            v.extend(client::text("b"));
            v
        }),
        (
            "length msb",
            b"\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04".to_vec(),
        ),
        (
            "close one byte",
            client::encode(OpCode::Close, true, false, b"\x03", key),
        ),
        (
            "close bad reason",
            client::encode(OpCode::Close, true, false, b"\x03\xe8\xff\xfe", key),
        ),
    ];
    for (name, wire) in cases {
        let (mut s, now) = echo_session(SessionConfig::default());
        let frames = feed(&mut s, &wire, now);
        assert!(
            !frames.iter().any(|f| f.opcode == OpCode::Text),
            "{name}: nothing delivered"
        );
        assert_failed(&frames, &s, 1002);
    }
}

#[test]
fn invalid_close_codes_close_1002_valid_ones_echo() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        let (mut s, now) = echo_session(SessionConfig::default());
        let frames = feed(&mut s, &client::close(code, ""), now);
        assert_failed(&frames, &s, 1002);
    }
    for code in [1000u16, 1001, 1003, 1007, 1011, 1014, 3000, 4999] {
        let (mut s, now) = echo_session(SessionConfig::default());
        let frames = feed(&mut s, &client::close(code, "bye"), now);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].close_code(), Some(code), "echo {code}");
        assert_eq!(s.close_codes(), (Some(code), Some(code)));
        assert!(s.should_close_transport());
    }
}

#[test]
fn close_handshake_initiated_by_peer() {
    let (mut s, now) = echo_session(SessionConfig::default());
    let mut wire = client::close(1000, "bye");
    wire.extend(client::text("after close"));
    let n = s.receive(&wire, now);
    assert_eq!(
        n,
        client::close(1000, "bye").len(),
        "nothing read after Close"
    );
    assert_eq!(s.state(), State::Flushing);
    assert!(!s.should_close_transport(), "close reply not yet written");
    let frames = drain(&mut s);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].payload, b"\x03\xe8");
    assert!(s.should_close_transport());
    // An empty Close is answered with an empty Close.
    let (mut s, now) = echo_session(SessionConfig::default());
    let frames = feed(
        &mut s,
        &client::encode(OpCode::Close, true, false, b"", client::KEY),
        now,
    );
    assert_eq!(frames[0].opcode, OpCode::Close);
    assert!(frames[0].payload.is_empty());
    assert_eq!(s.close_codes(), (None, Some(1005)));
}

#[test]
fn close_handshake_initiated_by_server() {
    let config = SessionConfig::default();
    let timeout = config.close_timeout;
    let (mut s, now) = echo_session(config);
    s.start_close(1001, "shutting down", now);
    assert_eq!(s.state(), State::Closing);
    assert_eq!(s.next_deadline(), Some(now + timeout));
    let frames = drain(&mut s);
    assert_eq!(frames[0].close_code(), Some(1001));
    assert_eq!(&frames[0].payload[2..], b"shutting down");
    // Data arriving meanwhile is read but not answered.
    assert!(feed(&mut s, &client::text("late"), now).is_empty());
    assert!(feed(&mut s, &client::ping(b"p"), now).is_empty());
    // A second start_close does nothing.
    s.start_close(1000, "", now);
    assert!(drain(&mut s).is_empty());
    // The peer's answer completes the handshake; no second Close is sent.
    assert!(feed(&mut s, &client::close(1001, ""), now).is_empty());
    assert!(s.should_close_transport());
}

#[test]
fn close_handshake_times_out() {
    let (mut s, now) = echo_session(SessionConfig::default());
    s.start_close(1001, "", now);
    drain(&mut s);
    let deadline = s.next_deadline().unwrap();
    s.on_timer(deadline - Duration::from_millis(1));
    assert_eq!(s.state(), State::Closing);
    s.on_timer(deadline);
    assert_eq!(s.state(), State::Done);
    assert!(s.should_close_transport());
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn flushing_times_out_when_peer_does_not_read() {
    let (mut s, now) = echo_session(SessionConfig::default());
    s.receive(&client::close(1000, ""), now);
    assert!(!s.should_close_transport());
    let deadline = s.next_deadline().unwrap();
    s.on_timer(deadline);
    assert!(s.should_close_transport());
}

#[test]
fn fragmented_message_with_interleaved_control() {
    let (mut s, now) = echo_session(SessionConfig::default());
    let key = client::KEY;
    let mut wire = client::encode(OpCode::Text, false, false, b"Hel", key);
    wire.extend(client::ping(b"are you there"));
    wire.extend(client::encode(OpCode::Continuation, false, false, b"", key));
    wire.extend(client::pong(b"unsolicited"));
    wire.extend(client::encode(
        OpCode::Continuation,
        true,
        false,
        b"lo",
        key,
    ));
    let frames = feed(&mut s, &wire, now);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].opcode, OpCode::Pong);
    assert_eq!(frames[0].payload, b"are you there");
    assert_eq!(frames[1], text_frame("Hello"));
    // Binary fragments too.
    let mut wire = client::encode(OpCode::Binary, false, false, &[1, 2], key);
    wire.extend(client::encode(OpCode::Continuation, true, false, &[3], key));
    let frames = feed(&mut s, &wire, now);
    assert_eq!(frames[0].opcode, OpCode::Binary);
    assert_eq!(frames[0].payload, vec![1, 2, 3]);
}

#[test]
fn ping_gets_pong_and_unsolicited_pong_is_ignored() {
    let (mut s, now) = echo_session(SessionConfig::default());
    let frames = feed(&mut s, &client::ping(b"\x00\x01payload"), now);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].opcode, OpCode::Pong);
    assert_eq!(frames[0].payload, b"\x00\x01payload");
    assert!(feed(&mut s, &client::pong(b"whatever"), now).is_empty());
    assert_eq!(s.state(), State::Open);
    let frames = feed(&mut s, &client::ping(&[0xab; 125]), now);
    assert_eq!(frames[0].payload, vec![0xab; 125]);
}

#[test]
fn utf8_fails_fast_across_fragments() {
    let (mut s, now) = echo_session(SessionConfig::default());
    let key = client::KEY;
    // "κ" then the start of a surrogate: invalid before the message ends.
    let mut wire = client::encode(OpCode::Text, false, false, b"\xce\xba", key);
    wire.extend(client::encode(
        OpCode::Continuation,
        false,
        false,
        b"\xed\xa0\x80",
        key,
    ));
    let frames = feed(&mut s, &wire, now);
    assert_failed(&frames, &s, 1007);
}

#[test]
fn utf8_fails_fast_inside_a_frame() {
    let (mut s, now) = echo_session(SessionConfig::default());
    // A 100-byte text frame whose first bytes are already invalid.
    let mut payload = b"ok\xff".to_vec();
    payload.resize(100, b'a');
    let wire = client::encode(OpCode::Text, true, false, &payload, client::KEY);
    let consumed = s.receive(&wire[..20], now);
    assert_eq!(consumed, 20);
    let frames = drain(&mut s);
    assert_failed(&frames, &s, 1007);
}

#[test]
fn utf8_character_split_across_fragments_is_fine() {
    let (mut s, now) = echo_session(SessionConfig::default());
    let key = client::KEY;
    let euro = "€".as_bytes(); // e2 82 ac
    let mut wire = client::encode(OpCode::Text, false, false, &euro[..1], key);
    wire.extend(client::encode(
        OpCode::Continuation,
        false,
        false,
        &euro[1..2],
        key,
    ));
    wire.extend(client::encode(
        OpCode::Continuation,
        true,
        false,
        &euro[2..],
        key,
    ));
    assert_eq!(feed(&mut s, &wire, now), vec![text_frame("€")]);
    // Cut at the end of the message: invalid.
    let wire = client::encode(OpCode::Text, true, false, &euro[..2], key);
    let frames = feed(&mut s, &wire, now);
    assert_failed(&frames, &s, 1007);
}

#[test]
fn oversized_messages_close_1009() {
    let config = SessionConfig {
        max_message: 1000,
        ..SessionConfig::default()
    };
    // One frame announcing too much: refused from its header alone.
    let (mut s, now) = echo_session(config.clone());
    let wire = client::encode(OpCode::Binary, true, false, &[0; 1001], client::KEY);
    // 2 bytes, a 16-bit length and the mask key.
    let frames = feed(&mut s, &wire[..8], now);
    assert_failed(&frames, &s, 1009);
    // Fragments adding up to too much.
    let (mut s, now) = echo_session(config.clone());
    let mut wire = client::encode(OpCode::Binary, false, false, &[0; 600], client::KEY);
    wire.extend(client::encode(
        OpCode::Continuation,
        true,
        false,
        &[0; 600],
        client::KEY,
    ));
    let frames = feed(&mut s, &wire, now);
    assert_failed(&frames, &s, 1009);
    // Exactly the limit is fine.
    let (mut s, now) = echo_session(config);
    let frames = feed(&mut s, &client::binary(&[0; 1000]), now);
    assert_eq!(frames[0].payload.len(), 1000);
}

#[test]
fn keepalive_ping_and_pong() {
    let config = SessionConfig {
        ping_interval: Some(Duration::from_secs(30)),
        ..SessionConfig::default()
    };
    let (mut s, now) = echo_session(config);
    assert_eq!(s.next_deadline(), Some(now + Duration::from_secs(30)));
    s.on_timer(now + Duration::from_secs(10));
    assert!(s.output().is_empty(), "not due yet");
    let t1 = now + Duration::from_secs(30);
    s.on_timer(t1);
    let frames = drain(&mut s);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].opcode, OpCode::Ping);
    // The pong must arrive within another interval.
    assert_eq!(s.next_deadline(), Some(t1 + Duration::from_secs(30)));
    // A pong with another payload does not count.
    feed(&mut s, &client::pong(b"nope"), t1);
    assert_eq!(s.next_deadline(), Some(t1 + Duration::from_secs(30)));
    feed(&mut s, &client::pong(&frames[0].payload), t1);
    s.on_timer(t1 + Duration::from_secs(30));
    assert_eq!(s.state(), State::Open);
    assert_eq!(drain(&mut s)[0].opcode, OpCode::Ping);
}

#[test]
fn keepalive_drops_silent_peer() {
    let (mut s, now) = echo_session(SessionConfig::default());
    let interval = Duration::from_secs(30);
    s.on_timer(now + interval);
    drain(&mut s);
    s.on_timer(now + interval * 2 - Duration::from_millis(1));
    assert_eq!(s.state(), State::Open);
    s.on_timer(now + interval * 2);
    assert_eq!(s.state(), State::Done);
    assert!(s.should_close_transport());
}

#[test]
fn peer_that_does_not_read_is_dropped() {
    let config = SessionConfig {
        max_output: 1000,
        ..SessionConfig::default()
    };
    let (mut s, now) = echo_session(config);
    let msg = client::binary(&[0; 400]);
    for _ in 0..3 {
        s.receive(&msg, now);
        assert_eq!(s.state(), State::Open);
    }
    // 1200 bytes pending: the next message finds no room.
    s.receive(&msg, now);
    assert_eq!(s.state(), State::Done);
    assert!(s.should_close_transport());
    let frames = client::decode(s.output()).unwrap().0;
    assert_eq!(frames.last().unwrap().close_code(), Some(1008));
}

/// Pushes "tick" on every tick and remembers what it was told.
struct Ticker {
    slow: std::sync::Arc<std::sync::Mutex<Vec<bool>>>,
}

impl WsApp for Ticker {
    fn on_message(&mut self, msg: Message, out: &mut Outbox) {
        if msg == Message::Text("bye".into()) {
            out.close = Some((4000, "app says bye".into()));
        }
    }
    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }
    fn on_tick(&mut self, out: &mut Outbox, slow_peer: bool) {
        self.slow.lock().unwrap().push(slow_peer);
        if !slow_peer {
            out.send(Message::Text("tick".into()));
        }
    }
}

#[test]
fn ticks_and_slow_peer_flag() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let now = t0();
    let app = Ticker { slow: seen.clone() };
    let mut s = Session::new(SessionConfig::default(), Box::new(app), now);
    let second = Duration::from_secs(1);
    assert_eq!(s.next_deadline(), Some(now + second));
    s.on_timer(now + second);
    assert_eq!(s.next_deadline(), Some(now + second * 2));
    // Output not consumed: the next tick is told the peer is slow.
    s.on_timer(now + second * 2);
    let frames = drain(&mut s);
    assert_eq!(frames, vec![text_frame("tick")]);
    s.on_timer(now + second * 3);
    assert_eq!(drain(&mut s), vec![text_frame("tick")]);
    assert_eq!(*seen.lock().unwrap(), vec![false, true, false]);
    assert_eq!(s.take_counts(), (0, 2));
    // Falling far behind does not cause a burst.
    s.on_timer(now + second * 10);
    assert_eq!(s.next_deadline(), Some(now + second * 11));
    // The application may close.
    feed(&mut s, &client::text("bye"), now);
    assert_eq!(s.state(), State::Closing);
    assert_eq!(s.close_codes().0, Some(4000));
}

// ----- permessage-deflate in a session -----

fn deflate_config(max_message: usize) -> SessionConfig {
    SessionConfig {
        max_message,
        deflate: Some(DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            send_server_max_window_bits: false,
        }),
        ..SessionConfig::default()
    }
}

#[test]
fn deflate_echo_round_trip() {
    let (mut s, now) = echo_session(deflate_config(1 << 20));
    // RFC 7692 §7.2.3.1: compressed "Hello".
    let wire = client::encode(
        OpCode::Text,
        true,
        true,
        &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
        client::KEY,
    );
    let frames = feed(&mut s, &wire, now);
    assert_eq!(frames.len(), 1);
    assert!(frames[0].rsv1, "the echo is compressed");
    let mut inflater = Inflater::new(false);
    let mut back = Vec::new();
    inflater
        .inflate(&frames[0].payload, &mut back, 100)
        .unwrap();
    assert_eq!(back, b"Hello");
    // Uncompressed frames are still accepted, and fragmented compressed ones.
    let frames = feed(&mut s, &client::text("plain"), now);
    let mut back = Vec::new();
    inflater
        .inflate(&frames[0].payload, &mut back, 100)
        .unwrap();
    assert_eq!(back, b"plain");
    let mut compressed = Vec::new();
    Deflater::new(15, true)
        .compress(b"fragmented and compressed", &mut compressed)
        .unwrap();
    let (a, b) = compressed.split_at(5);
    let mut wire = client::encode(OpCode::Binary, false, true, a, client::KEY);
    wire.extend(client::encode(
        OpCode::Continuation,
        true,
        false,
        b,
        client::KEY,
    ));
    let frames = feed(&mut s, &wire, now);
    let mut back = Vec::new();
    inflater
        .inflate(&frames[0].payload, &mut back, 100)
        .unwrap();
    assert_eq!(back, b"fragmented and compressed");
}

#[test]
fn deflate_bomb_closes_1009() {
    let (mut s, now) = echo_session(deflate_config(1 << 20));
    let mut bomb = Vec::new();
    Deflater::new(15, true)
        .compress(&vec![0u8; 8 << 20], &mut bomb)
        .unwrap();
    assert!(bomb.len() < 1 << 20);
    let wire = client::encode(OpCode::Binary, true, true, &bomb, client::KEY);
    let frames = feed(&mut s, &wire, now);
    assert_failed(&frames, &s, 1009);
    // Caught while the frame is still arriving.
    let (mut s, now) = echo_session(deflate_config(1 << 20));
    let frames = feed(&mut s, &wire[..wire.len() / 2], now);
    assert_failed(&frames, &s, 1009);
}

#[test]
fn deflate_utf8_fails_fast_across_fragments() {
    let (mut s, now) = echo_session(deflate_config(1 << 20));
    let mut compressed = Vec::new();
    Deflater::new(15, true)
        .compress(b"fine so far \xff and then more text", &mut compressed)
        .unwrap();
    // Only the first fragment: the message is not over, yet it fails.
    let wire = client::encode(OpCode::Text, false, true, &compressed, client::KEY);
    let frames = feed(&mut s, &wire, now);
    assert_failed(&frames, &s, 1007);
}

#[test]
fn deflate_errors() {
    let key = client::KEY;
    // Garbage compressed data.
    let (mut s, now) = echo_session(deflate_config(1 << 20));
    let frames = feed(
        &mut s,
        &client::encode(OpCode::Binary, true, true, &[0xff; 8], key),
        now,
    );
    assert_failed(&frames, &s, 1007);
    // Compressed text that inflates to invalid UTF-8.
    let (mut s, now) = echo_session(deflate_config(1 << 20));
    let mut compressed = Vec::new();
    Deflater::new(15, true)
        .compress(b"bad \xff text", &mut compressed)
        .unwrap();
    let frames = feed(
        &mut s,
        &client::encode(OpCode::Text, true, true, &compressed, key),
        now,
    );
    assert_failed(&frames, &s, 1007);
    // RSV1 on a continuation frame.
    let (mut s, now) = echo_session(deflate_config(1 << 20));
    let mut wire = client::encode(OpCode::Binary, false, true, b"", key);
    wire.extend(client::encode(OpCode::Continuation, true, true, b"", key));
    let frames = feed(&mut s, &wire, now);
    assert_failed(&frames, &s, 1002);
}

// ----- robustness -----

/// A small deterministic generator, so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Everything the server wrote for `wire` fed in pieces cut at random.
fn run_split(config: &SessionConfig, wire: &[u8], rng: &mut Lcg) -> (Vec<u8>, State) {
    let now = t0();
    let mut s = Session::new(config.clone(), Box::new(EchoApp), now);
    let mut written = Vec::new();
    let mut pos = 0;
    while pos < wire.len() && s.wants_read() {
        let n = 1 + (rng.next() as usize % 300).min(wire.len() - pos - 1);
        let consumed = s.receive(&wire[pos..pos + n], now);
        assert!(consumed <= n);
        pos += n;
        written.extend_from_slice(s.output());
        let len = s.output().len();
        s.consume_output(len);
    }
    (written, s.state())
}

#[test]
fn any_split_gives_the_same_result() {
    let key = client::KEY;
    let mut compressed = Vec::new();
    Deflater::new(15, false)
        .compress("compressed κόσμε ".repeat(50).as_bytes(), &mut compressed)
        .unwrap();
    let mut wire = Vec::new();
    wire.extend(client::text("hello"));
    wire.extend(client::encode(
        OpCode::Text,
        false,
        false,
        "κό".as_bytes(),
        key,
    ));
    wire.extend(client::ping(b"in between"));
    wire.extend(client::encode(
        OpCode::Continuation,
        true,
        false,
        "σμε".as_bytes(),
        key,
    ));
    wire.extend(client::binary(&vec![9u8; 70_000]));
    wire.extend(client::encode(OpCode::Text, true, true, &compressed, key));
    wire.extend(client::close(1000, "done"));
    let config = deflate_config(1 << 20);
    let mut rng = Lcg(7);
    // Cut points from a fixed seed, then from many others.
    let whole = run_split(&config, &wire, &mut Lcg(0));
    assert_eq!(whole.1, State::Flushing);
    for _ in 0..50 {
        assert_eq!(run_split(&config, &wire, &mut rng), whole);
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Lcg(42);
    for round in 0..300 {
        let len = rng.next() as usize % 400;
        let mut wire: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Often start with a plausible masked header so the deeper paths run.
        if round % 2 == 0 && wire.len() > 6 {
            wire[1] |= 0x80;
            wire[1] &= 0xfe;
        }
        let config = if round % 3 == 0 {
            deflate_config(4096)
        } else {
            SessionConfig::default()
        };
        let (_, state) = run_split(&config, &wire, &mut rng);
        assert!(matches!(
            state,
            State::Open | State::Flushing | State::Closing | State::Done
        ));
    }
}

#[test]
fn nothing_is_read_after_the_end() {
    let (mut s, now) = echo_session(SessionConfig::default());
    s.receive(b"\x81\x05Hello", now); // unmasked: fails
    assert_eq!(s.receive(&client::text("more"), now), 0);
    s.on_timer(now + Duration::from_secs(3600));
    assert_eq!(s.state(), State::Done);
    assert_eq!(s.receive(&client::text("more"), now), 0);
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn start_close_never_sends_a_reserved_code() {
    let (mut s, now) = echo_session(SessionConfig::default());
    s.start_close(1005, "", now);
    assert_eq!(drain(&mut s)[0].close_code(), Some(1000));
}
