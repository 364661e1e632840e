//! Connection behaviour as table tests with no socket: the connection
//! engine driven by the in-memory transport (`engine::memory`), with a
//! clock the test moves and a peer that reads as slowly as the test says.

use std::time::Duration;

use glasshouse::engine::invariants::{parse_answers, Answer};
use glasshouse::engine::memory::MemoryTransport;
use glasshouse::engine::sample::{SampleApp, SAMPLE_FILE};
use glasshouse::engine::{Action, Config, Env, Send};
use glasshouse::ws::client;

fn transport() -> MemoryTransport {
    MemoryTransport::new(Box::new(SampleApp::new()), config())
}

fn config() -> Config {
    Config {
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        ..Config::default()
    }
}

fn answers(bytes: &[u8]) -> (Vec<Answer>, Vec<u8>) {
    let (a, used) = parse_answers(bytes);
    (a, bytes[used..].to_vec())
}

fn all(bytes: &[u8]) -> Vec<Answer> {
    let (a, rest) = answers(bytes);
    assert!(
        rest.is_empty(),
        "unparsed output: {:?}",
        String::from_utf8_lossy(&rest)
    );
    a
}

#[test]
fn pipelined_requests_are_answered_in_order_in_one_write() {
    let mut t = transport();
    t.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /c HTTP/1.1\r\nHost: x\r\n\r\n");
    let got = all(&t.take_received());
    assert_eq!(
        got.iter().map(|a| a.status).collect::<Vec<_>>(),
        [200, 200, 200]
    );
    assert_eq!(got[0].body, b"hello");
    assert_eq!(got[1].body, b"hello");
    assert_eq!(t.sends, 1, "a pipelined batch is one write");
    assert!(!t.closed);
}

#[test]
fn a_request_split_at_every_byte_is_answered_once() {
    let req = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let mut t = transport();
    for b in req.iter() {
        t.send(&[*b]);
    }
    let got = all(&t.take_received());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, b"abc");
}

#[test]
fn expect_100_continue_comes_before_the_body_is_sent() {
    let mut t = transport();
    t.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(t.take_received(), b"HTTP/1.1 100 Continue\r\n\r\n");
    t.send(b"ping");
    let got = all(&t.take_received());
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].status, &got[0].body[..]), (200, &b"ping"[..]));
}

#[test]
fn a_refusal_closes_after_shutting_the_write_side_and_lingering() {
    let mut t = transport();
    t.send(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\nmore bytes the client keeps sending");
    let got = all(&t.take_received());
    assert_eq!(got[0].status, 400);
    assert_eq!(got[0].header("connection"), Some("close"));
    assert!(String::from_utf8_lossy(&got[0].body).contains("\"error\""));
    assert!(t.write_shut, "the write side is shut before closing");
    assert!(!t.closed, "input is drained while lingering");
    t.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        t.take_received().is_empty(),
        "nothing answered while lingering"
    );
    t.advance(config().linger);
    assert!(t.closed, "the linger deadline closes");
}

#[test]
fn lingering_ends_when_the_peer_closes() {
    let mut t = transport();
    t.send(b"BAD\r\n\r\n");
    assert!(t.write_shut);
    t.send_eof();
    assert!(t.closed);
}

#[test]
fn a_drain_finishes_what_is_in_flight_and_closes_after_it() {
    let mut t = transport();
    t.send(b"GET /slow?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(t.take_received().is_empty());
    let outcome = t.drain();
    assert!(outcome.in_flight);
    assert!(!outcome.closed_idle);
    t.advance(Duration::from_millis(500));
    let got = all(&t.take_received());
    assert_eq!(got[0].status, 200);
    assert_eq!(got[0].body, b"slept");
    assert_eq!(got[0].header("connection"), Some("close"));
    assert_eq!(t.conn.take_drained(), 1);
    assert!(t.write_shut || t.closed);
}

#[test]
fn a_drain_closes_an_idle_keep_alive_connection() {
    let mut t = transport();
    t.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(all(&t.take_received()).len(), 1);
    let outcome = t.drain();
    assert!(!outcome.in_flight);
    assert!(outcome.closed_idle);
    assert!(t.closed);
}

#[test]
fn a_drain_answers_a_request_already_buffered() {
    let mut t = transport();
    t.send(b"GET /slow?ms=10 HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    t.drain();
    t.advance(Duration::from_millis(10));
    let got = all(&t.take_received());
    // The first answer says close; the pipelined second is never answered
    // on a closing connection.
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("connection"), Some("close"));
}

#[test]
fn the_head_timeout_answers_408_and_closes() {
    let mut t = transport();
    t.send(b"GET / HTTP/1.1\r\nHost:");
    t.advance(Duration::from_secs(9));
    assert!(t.take_received().is_empty());
    t.advance(Duration::from_secs(1));
    let got = all(&t.take_received());
    assert_eq!(got[0].status, 408);
    assert_eq!(got[0].header("connection"), Some("close"));
}

/// A blocking driver steps the engine one action at a time and looks at
/// the clock between steps: the 408 must not be refused again between its
/// send and the shutdown that follows it.
#[test]
fn the_head_timeout_fires_once_for_a_driver_that_checks_the_clock_between_steps() {
    let mut t = transport();
    t.send(b"GET /a HTTP/1.1\r\nHost: x\r\n");
    let mut env = Env {
        handler: &mut *t.handler,
        observer: &mut t.observer,
        config: &t.config,
        now: t.now + Duration::from_secs(11),
        date: glasshouse::engine::memory::DATE,
        worker: 0,
        draining: false,
    };
    t.conn.on_timer(&mut env);
    let sent = match t.conn.poll(&mut env) {
        Action::Send(Send::Bytes { data, .. }) => data.to_vec(),
        other => panic!("expected the 408, got {other:?}"),
    };
    t.conn.advance(&mut env, sent.len());
    assert!(
        t.conn.next_deadline().is_none_or(|d| d > env.now),
        "no deadline is due between the answer and its shutdown"
    );
    t.conn.on_timer(&mut env);
    assert!(matches!(t.conn.poll(&mut env), Action::ShutdownWrite));
    let got = all(&sent);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].status, 408);
}

#[test]
fn a_silent_connection_is_closed_at_the_head_timeout_without_an_answer() {
    let mut t = transport();
    assert!(t.advance_to_deadline());
    assert!(t.closed);
    assert!(t.take_received().is_empty());
}

#[test]
fn the_idle_timeout_closes_a_kept_alive_connection_silently() {
    let mut t = transport();
    t.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    t.take_received();
    t.advance(Duration::from_secs(59));
    assert!(!t.closed);
    t.advance(Duration::from_secs(1));
    assert!(t.closed);
    assert!(t.take_received().is_empty());
}

#[test]
fn a_slow_reader_gets_the_whole_stream_as_it_reads() {
    let mut t = transport();
    t.window = Some(0);
    t.send(b"GET /stream?n=200 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(t.take_received().is_empty());
    let mut got = Vec::new();
    for _ in 0..10_000 {
        if !got.is_empty() && t.conn.is_idle() {
            break;
        }
        t.peer_reads(7);
        let now = t.take_received();
        assert!(now.len() <= 7, "never more than the peer's window");
        got.extend(now);
    }
    let a = all(&got);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].header("transfer-encoding"), Some("chunked"));
    assert_eq!(a[0].body, b"chunk\n".repeat(200));
    assert!(!t.closed);
}

#[test]
fn a_peer_that_reads_nothing_is_cut_off_after_the_send_timeout() {
    let mut t = transport();
    t.window = Some(0);
    t.send(b"GET /stream?n=1000 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(t.take_received().is_empty());
    t.advance(Duration::from_secs(59));
    assert!(!t.closed, "within the send timeout");
    // Reading a little is progress: the timeout starts again.
    t.peer_reads(100);
    let first = t.take_received();
    assert_eq!(first.len(), 100);
    t.advance(Duration::from_secs(59));
    assert!(!t.closed, "the timeout restarted when the peer read");
    t.advance(Duration::from_secs(1));
    assert!(t.closed, "a peer that stops reading is dropped");
    assert!(t.take_received().is_empty(), "nothing more was sent");
}

#[test]
fn a_reading_peer_is_never_cut_off_by_the_send_timeout() {
    let mut t = transport();
    t.window = Some(0);
    t.send(b"GET /stream?n=1000 HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut got = Vec::new();
    for _ in 0..10_000 {
        t.advance(Duration::from_secs(30));
        t.peer_reads(64);
        got.extend(t.take_received());
        if all_complete(&got) {
            break;
        }
        assert!(!t.closed, "closed after {} bytes", got.len());
    }
    let a = all(&got);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].body, b"chunk\n".repeat(1000));
    assert!(!t.closed);
    // Idle counts from when the answer was read, not when it was queued.
    t.advance(Duration::from_secs(59));
    assert!(!t.closed, "idle counts from the last byte read");
    t.advance(Duration::from_secs(1));
    assert!(t.closed, "then the idle timeout holds");
}

fn all_complete(bytes: &[u8]) -> bool {
    let (a, rest) = answers(bytes);
    a.len() == 1 && rest.is_empty()
}

#[test]
fn a_lingering_connection_reads_only_so_much_before_it_closes() {
    let mut t = transport();
    t.send(b"GET / HTTP/9.9\r\nHost: x\r\n\r\n");
    assert_eq!(all(&t.take_received())[0].status, 505);
    assert!(t.write_shut && !t.closed, "a refusal lingers");
    let junk = vec![b'x'; 64 * 1024];
    for _ in 0..glasshouse::engine::MAX_LINGER_INPUT / junk.len() {
        t.send(&junk);
    }
    assert!(!t.closed, "up to the bound, input is read and dropped");
    t.send(&junk);
    assert!(t.closed, "past it, the connection closes at once");
    assert!(t.take_received().is_empty());
}

#[test]
fn a_peer_that_half_closes_still_gets_its_answers() {
    let mut t = transport();
    t.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /file HTTP/1.1\r\nHost: x\r\n\r\n");
    t.window = Some(0);
    t.send_eof();
    t.window = None;
    t.peer_reads(0);
    let got = all(&t.take_received());
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].body, SAMPLE_FILE);
    assert!(t.closed, "closed once nothing more can come");
    assert!(!t.write_shut, "no linger for a peer that already closed");
}

#[test]
fn a_half_received_request_dies_with_the_peer() {
    let mut t = transport();
    t.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    t.send_eof();
    assert!(t.closed);
    assert!(t.take_received().is_empty());
}

#[test]
fn a_file_body_follows_its_head() {
    let mut t = transport();
    t.send(b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n");
    let got = all(&t.take_received());
    assert_eq!(got[0].body, SAMPLE_FILE);
    assert_eq!(t.sends, 2, "the head, then the file region");
}

#[test]
fn head_gets_the_length_without_the_body() {
    let mut t = transport();
    t.send(b"HEAD /file HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let (got, rest) = answers(&t.take_received());
    assert!(rest.is_empty());
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].header("content-length"),
        Some(SAMPLE_FILE.len().to_string().as_str())
    );
    assert!(got[0].body.is_empty());
    assert_eq!(got[1].body, b"hello");
}

#[test]
fn http_10_closes_unless_keep_alive_was_asked_for() {
    let mut t = transport();
    t.send(b"GET / HTTP/1.0\r\n\r\n");
    let got = all(&t.take_received());
    assert_eq!(
        (got[0].version, got[0].header("connection")),
        (0, Some("close"))
    );
    assert!(
        t.closed,
        "HTTP/1.0 without keep-alive closes (no unread input: no linger)"
    );

    let mut t = transport();
    t.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let got = all(&t.take_received());
    assert_eq!(got[0].header("connection"), Some("keep-alive"));
    assert!(!t.closed);
}

#[test]
fn an_http_10_stream_is_delimited_by_the_close() {
    let mut t = transport();
    t.send(b"GET /stream?n=2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let got = t.take_received();
    assert!(got.ends_with(b"\r\n\r\nchunk\nchunk\n"));
    assert!(t.closed || t.write_shut);
}

#[test]
fn a_panicking_handler_costs_one_500_not_the_connection() {
    let mut t = transport();
    t.send(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let got = all(&t.take_received());
    assert_eq!(got.iter().map(|a| a.status).collect::<Vec<_>>(), [500, 200]);
    assert!(!t.closed);
}

#[test]
fn the_application_may_ask_to_close() {
    let mut t = transport();
    t.send(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n");
    let got = all(&t.take_received());
    assert_eq!(got[0].header("connection"), Some("close"));
    assert!(t.write_shut, "a keep-alive client may be sending: linger");
}

#[test]
fn a_websocket_upgrade_behind_pipelined_requests() {
    let mut t = transport();
    let mut input = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    input.extend_from_slice(client::upgrade_request("x", "/ws", "").as_bytes());
    input.extend_from_slice(&client::text("hi there"));
    t.send(&input);
    let out = t.take_received();
    let (got, rest) = answers(&out);
    assert_eq!(got.iter().map(|a| a.status).collect::<Vec<_>>(), [200, 101]);
    assert_eq!(
        got[1].header("sec-websocket-accept"),
        Some(client::SAMPLE_ACCEPT)
    );
    let (frames, _) = client::decode(&rest).unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].payload, b"hi there");
    assert!(t.conn.is_websocket());
    // The close handshake ends the connection.
    t.send(&client::close(1000, "bye"));
    let (frames, _) = client::decode(&t.take_received()).unwrap();
    assert_eq!(frames[0].close_code(), Some(1000));
    assert!(!t.conn.is_websocket());
}

#[test]
fn a_drain_sends_websockets_1001() {
    let mut t = transport();
    t.send(client::upgrade_request("x", "/ws", "").as_bytes());
    t.take_received();
    assert!(t.drain().in_flight);
    let (frames, _) = client::decode(&t.take_received()).unwrap();
    assert_eq!(frames[0].close_code(), Some(1001));
    t.send(&client::close(1001, ""));
    assert_eq!(
        t.conn.take_drained(),
        1,
        "the session ended well in the drain"
    );
}

#[test]
fn a_refused_upgrade_is_an_ordinary_answer() {
    let mut t = transport();
    t.send(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n");
    let got = all(&t.take_received());
    assert_eq!(got[0].status, 426);
    assert!(!t.conn.is_websocket());
    assert!(!t.closed);
}

#[test]
fn a_completion_transport_takes_bytes_while_input_goes_on() {
    let mut t = transport();
    t.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    t.take_received();
    t.window = Some(0);
    t.send(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    // The kernel holds this buffer until the send completes ...
    let lent = t.conn.take_bytes(Vec::new()).expect("bytes to send");
    assert!(
        t.conn.take_bytes(Vec::new()).is_none(),
        "one send at a time"
    );
    // ... while the next request arrives and is answered into a new buffer.
    t.window = None;
    t.send(b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        t.take_received().is_empty(),
        "nothing overtakes the lent bytes"
    );
    // The send completed partly: the rest goes first, then the new answer.
    let half = lent.len() / 2;
    let mut received = lent[..half].to_vec();
    let spare;
    {
        let t = &mut t;
        let mut env = glasshouse::engine::Env {
            handler: &mut *t.handler,
            observer: &mut t.observer,
            config: &t.config,
            now: t.now,
            date: glasshouse::engine::memory::DATE,
            worker: 0,
            draining: false,
        };
        spare = t.conn.give_back(&mut env, lent, half);
    }
    assert!(spare.is_empty(), "the buffer comes back empty, for reuse");
    t.peer_reads(0);
    received.extend(t.take_received());
    let got = all(&received);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|a| a.status == 200 && a.body == b"hello"));
}

#[test]
fn a_completion_transport_lends_the_101_and_then_the_session_bytes() {
    let mut t = transport();
    t.window = Some(0);
    let mut input = client::upgrade_request("x", "/ws", "").into_bytes();
    input.extend_from_slice(&client::text("right behind"));
    t.send(&input);
    // The 101 is the output queue's, taken while the session already
    // holds its echo: its return must not be counted as the session's.
    let lent = t.conn.take_bytes(Vec::new()).expect("the 101 to send");
    assert!(t.conn.is_websocket());
    let mut received = lent.clone();
    let spare;
    {
        let t = &mut t;
        let mut env = glasshouse::engine::Env {
            handler: &mut *t.handler,
            observer: &mut t.observer,
            config: &t.config,
            now: t.now,
            date: glasshouse::engine::memory::DATE,
            worker: 0,
            draining: false,
        };
        let n = lent.len();
        spare = t.conn.give_back(&mut env, lent, n);
    }
    assert!(spare.is_empty());
    t.window = None;
    t.peer_reads(0);
    received.extend(t.take_received());
    let (got, rest) = answers(&received);
    assert_eq!(got.iter().map(|a| a.status).collect::<Vec<_>>(), [101]);
    let (frames, _) = client::decode(&rest).unwrap();
    assert_eq!(frames.len(), 1, "the echo is not lost");
    assert_eq!(frames[0].payload, b"right behind");
}

#[test]
fn too_much_pipelined_input_stops_the_reading() {
    let mut t = transport();
    t.window = Some(0);
    let one = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut sent = 0;
    while t.wants_read() && sent < 100_000 {
        t.send(one);
        sent += 1;
    }
    assert!(
        sent < 100_000,
        "the engine asks the transport to stop reading"
    );
    t.window = None;
    t.peer_reads(0);
    let got = all(&t.take_received());
    assert_eq!(got.len(), sent, "every request accepted is answered");
}

#[test]
fn the_invariants_hold_on_the_fuzz_corpus() {
    // The fuzz target's check, on stable, over the seed corpus kept in the
    // repository, each seed under every split/timing plan (its first byte).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/engine");
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/engine") {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let Some((_, body)) = data.split_first() else {
            continue;
        };
        for plan in 0..=255u8 {
            let mut input = vec![plan];
            input.extend_from_slice(body);
            glasshouse::engine::invariants::check(&input);
        }
        seeds += 1;
    }
    assert!(seeds >= 10, "the corpus has its seeds ({seeds})");
}
