//! Raw-byte HTTP/1.1 cases against the live server: keep-alive, pipelining,
//! HTTP/1.0, framing refusals (RFC 9112 §6), limits, timeouts, the JSON API
//! and the connection limit. After every refusal the server must still
//! answer `/healthz` (a protocol error never kills a worker). Runs against
//! the model in `GLASSHOUSE_TEST_MODEL` (`make test-models`); cases that
//! need connections served at once skip `iterative`.

mod support;

use std::io::Write;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use support::{
    find, lossy, parse_all, parse_response, read_until_close, send_raw, Client, Response, Server,
    PATIENCE,
};

/// Sends `bytes` on a fresh connection and expects exactly one response with
/// `status`, a JSON error body, `Connection: close`, and then the close.
fn expect_refusal(server: &Server, bytes: &[u8], status: u16) -> Response {
    let raw = send_raw(server.addr(), bytes);
    let (rs, rest) = parse_all(&raw);
    assert_eq!(
        rs.len(),
        1,
        "expected one response to {:?}, got {:?} + {:?}",
        lossy(bytes),
        rs,
        lossy(&rest)
    );
    let r = rs.into_iter().next().unwrap();
    r.assert_json_error(status);
    assert!(r.closes(), "a refusal closes the connection: {r:?}");
    assert!(
        rest.is_empty(),
        "nothing after a refusal: {:?}",
        lossy(&rest)
    );
    server.assert_healthy();
    r
}

/// Same as [`expect_refusal`] but without half-closing first: the server
/// must close on its own after the answer.
fn expect_refusal_and_close(server: &Server, bytes: &[u8], status: u16) -> Response {
    let mut c = Client::connect(server.addr());
    c.send(bytes);
    let r = c
        .read_response()
        .unwrap_or_else(|| panic!("no response to {:?}", lossy(bytes)));
    r.assert_json_error(status);
    assert!(r.closes(), "{r:?}");
    assert!(
        c.closed_within(PATIENCE),
        "server keeps the connection open after a {status}"
    );
    server.assert_healthy();
    r
}

#[test]
fn connections_are_tls_exactly_when_the_suite_runs_over_tls() {
    // `GLASSHOUSE_TEST_TLS=1` (make test-tls-suites): the harness serves
    // HTTPS and the clients speak TLS; a suite that silently fell back to
    // plain TCP would prove nothing.
    let tls = support::test_tls();
    let server = Server::start(&[]);
    assert_eq!(server.is_tls(), tls);
    let mut c = Client::connect(server.addr());
    assert_eq!(c.stream.is_tls(), tls);
    assert_eq!(c.get("/healthz").status, 200);
    let scheme = if tls { "https://" } else { "http://" };
    assert!(
        server.log().contains(&format!("listening on {scheme}")),
        "{}",
        server.log()
    );
    // A test about what plaintext clients see opts out.
    let plain = Server::builder().plaintext().start();
    assert!(!plain.is_tls());
    assert!(!Client::connect(plain.addr()).stream.is_tls());
    assert_eq!(plain.get("/healthz").status, 200);
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let server = Server::start(&[]);
    let mut c = Client::connect(server.addr());
    for _ in 0..2 {
        let r = c.get("/healthz");
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json(), serde_json::json!({"status": "ok"}));
        assert!(!r.closes(), "HTTP/1.1 persists by default: {r:?}");
    }
    // Date and Server on every response (RFC 9110 §6.6.1, §10.2.4).
    let r = c.get("/healthz");
    assert!(
        r.header("date").is_some_and(|d| d.ends_with("GMT")),
        "{r:?}"
    );
    assert!(
        r.header("server")
            .is_some_and(|s| s.starts_with("glasshouse")),
        "{r:?}"
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = Server::start(&[]);
    let mut batch = Vec::new();
    let mut expect: Vec<(u16, Option<String>)> = Vec::new();
    for i in 0..10 {
        match i % 4 {
            0 => {
                batch.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
                expect.push((200, Some(r#"{"status":"ok"}"#.into())));
            }
            1 => {
                let body = format!(r#"{{"i":{i}}}"#);
                write!(
                    batch,
                    "POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
                expect.push((200, Some(body)));
            }
            2 => {
                // Held back by a timer: the ones behind it must wait.
                batch.extend_from_slice(b"GET /api/slow?ms=50 HTTP/1.1\r\nHost: t\r\n\r\n");
                expect.push((200, Some(r#"{"slept_ms":50}"#.into())));
            }
            _ => {
                write!(
                    batch,
                    "GET /no-such-file-{i}.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                )
                .unwrap();
                expect.push((404, None));
            }
        }
    }
    let mut c = Client::connect(server.addr());
    c.send(&batch);
    for (i, (status, body)) in expect.iter().enumerate() {
        let r = c
            .read_response()
            .unwrap_or_else(|| panic!("response {i} missing"));
        assert_eq!(r.status, *status, "response {i}: {r:?}");
        if let Some(b) = body {
            assert_eq!(&lossy(&r.body), b, "response {i} out of order? {r:?}");
        }
    }
    // And the connection is still usable.
    assert_eq!(c.get("/healthz").status, 200);
}

#[test]
fn http10_without_keep_alive_closes() {
    let server = Server::start(&[]);
    let mut c = Client::connect(server.addr());
    c.send(b"GET /healthz HTTP/1.0\r\n\r\n");
    let r = c.read_response().expect("response");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        !r.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("keep-alive")),
        "{r:?}"
    );
    assert!(c.closed_within(PATIENCE), "HTTP/1.0 closes by default");
}

#[test]
fn http10_keep_alive_is_echoed_and_honoured() {
    let server = Server::start(&[]);
    let mut c = Client::connect(server.addr());
    for _ in 0..2 {
        let r = c.request(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(r.status, 200, "{r:?}");
        assert!(
            r.header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("keep-alive")),
            "ab -k needs the echo: {r:?}"
        );
        assert!(r.header("content-length").is_some(), "{r:?}");
    }
}

#[test]
fn absolute_form_target_is_served() {
    let server = Server::start(&[]);
    let raw = send_raw(
        server.addr(),
        b"GET http://example.com/healthz HTTP/1.1\r\nHost: example.com\r\n\r\n",
    );
    let (r, _) = parse_response(&raw, false).expect("response");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["status"], "ok");
}

#[test]
fn host_header_rules() {
    let server = Server::start(&[]);
    // RFC 9112 §3.2: exactly one Host in HTTP/1.1.
    expect_refusal_and_close(&server, b"GET /healthz HTTP/1.1\r\n\r\n", 400);
    expect_refusal_and_close(
        &server,
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        400,
    );
    // HTTP/1.0 may omit it.
    let raw = send_raw(server.addr(), b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(parse_response(&raw, false).expect("response").0.status, 200);
}

#[test]
fn framing_ambiguities_are_refused() {
    let server = Server::start(&[]);
    // obs-fold (RFC 9112 §5.2): a server must reject or replace; we reject.
    expect_refusal(
        &server,
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n",
        400,
    );
    // Content-Length with Transfer-Encoding (RFC 9112 §6.1).
    expect_refusal(
        &server,
        b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        400,
    );
    // Conflicting Content-Length (RFC 9110 §8.6).
    expect_refusal(
        &server,
        b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{} ",
        400,
    );
    expect_refusal(
        &server,
        b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 2, 3\r\n\r\n{} ",
        400,
    );
    // Unknown transfer coding (RFC 9112 §6.1): 501.
    expect_refusal(
        &server,
        b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
    );
    // Unsupported major version: 505 (RFC 9110 §15.6.6).
    expect_refusal(&server, b"GET /healthz HTTP/2.0\r\nHost: a\r\n\r\n", 505);
    // Bare garbage.
    expect_refusal(&server, b"\x01\x02\x03 nonsense\r\n\r\n", 400);
}

#[test]
fn chunked_body_to_echo() {
    let server = Server::start(&[]);
    let mut c = Client::connect(server.addr());
    let r = c.request(
        b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\n{\"a\":\r\n3;ext=1\r\n [1\r\nA\r\n,2,3],\"b\":\r\n4\r\ntrue\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(lossy(&r.body), r#"{"a": [1,2,3],"b":true}"#);
    assert!(r
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/json")));
    // Still in sync for the next request.
    assert_eq!(c.get("/healthz").status, 200);
}

#[test]
fn expect_100_continue() {
    let server = Server::start(&["--max-body", "1000"]);
    let mut c = Client::connect(server.addr());
    c.send(b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 8\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.read_response().expect("interim response");
    assert_eq!(interim.status, 100, "{interim:?}");
    c.send(br#"{"x":12}"#);
    let r = c.read_response().expect("final response");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(lossy(&r.body), r#"{"x":12}"#);
    // Closed, so that a model serving one connection at a time gets to the next.
    drop(c);

    // Declared length over --max-body: 413 at once, never 100 (RFC 9110 §10.1.1).
    let mut c = Client::connect(server.addr());
    c.send(b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n");
    let r = c.read_response().expect("413");
    r.assert_json_error(413);
    assert!(r.closes(), "{r:?}");
    server.assert_healthy();
}

#[test]
fn size_limits() {
    let server = Server::start(&["--max-body", "1024"]);
    // 414: a target longer than 8 KiB.
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9 * 1024));
    expect_refusal(&server, long.as_bytes(), 414);
    // 431: a head larger than 32 KiB, and too many fields.
    let mut big = b"GET /healthz HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..40 {
        write!(big, "X-Filler-{i}: {}\r\n", "v".repeat(1000)).unwrap();
    }
    big.extend_from_slice(b"\r\n");
    expect_refusal(&server, &big, 431);
    let mut many = b"GET /healthz HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..150 {
        write!(many, "X-{i}: v\r\n").unwrap();
    }
    many.extend_from_slice(b"\r\n");
    expect_refusal(&server, &many, 431);
    // 413: declared and chunked bodies over --max-body.
    let mut body = b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n".to_vec();
    body.extend(std::iter::repeat_n(b' ', 2000));
    expect_refusal(&server, &body, 413);
    let mut chunked = b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        chunked.extend_from_slice(b"200\r\n");
        chunked.extend(std::iter::repeat_n(b' ', 0x200));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    expect_refusal(&server, &chunked, 413);
}

#[test]
fn head_has_length_but_no_body() {
    let server = Server::start(&[]);
    let mut c = Client::connect(server.addr());
    // HEAD then GET in one write: if HEAD carried a body, the GET's
    // response would not parse where it should.
    c.send(b"HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
    let h = c.read_head_response().expect("HEAD response");
    assert_eq!(h.status, 200, "{h:?}");
    assert_eq!(h.header("content-length"), Some("15"), "{h:?}");
    let g = c.read_response().expect("GET response");
    assert_eq!(g.status, 200, "{g:?}");
    assert_eq!(lossy(&g.body), r#"{"status":"ok"}"#);
    assert!(c.leftover().is_empty());
}

#[test]
fn api_errors_are_json() {
    let server = Server::start(&[]);
    let mut c = Client::connect(server.addr());
    c.get("/no/such/thing.txt").assert_json_error(404);
    // 405 with Allow (RFC 9110 §15.5.6).
    let r = c.request(b"DELETE /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
    r.assert_json_error(405);
    let allow = r.header("allow").expect("Allow on 405");
    assert!(allow.contains("GET"), "{r:?}");
    let r = c.get("/api/echo");
    r.assert_json_error(405);
    assert!(
        r.header("allow").is_some_and(|a| a.contains("POST")),
        "{r:?}"
    );
    // 415 and 400 on /api/echo.
    c.request(b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}")
        .assert_json_error(415);
    c.request(b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{nope")
        .assert_json_error(400);
    // Application errors keep the connection (they are not protocol errors).
    assert_eq!(c.get("/healthz").status, 200);
}

#[test]
fn slow_endpoint() {
    if support::needs_concurrency("slow_endpoint") {
        return;
    }
    let server = Server::start(&[]);
    let mut c = Client::connect(server.addr());
    let r = c.get("/api/slow?ms=200");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["slept_ms"], 200);
    c.get("/api/slow?ms=70000").assert_json_error(400);
    c.get("/api/slow?ms=abc").assert_json_error(400);
    // A slow request does not block its worker: with 2 workers and 4 slow
    // connections pending, /healthz is answered and then every slow one.
    let mut slow: Vec<Client> = (0..4)
        .map(|_| {
            let mut s = Client::connect(server.addr());
            s.send(b"GET /api/slow?ms=1000 HTTP/1.1\r\nHost: a\r\n\r\n");
            s
        })
        .collect();
    let mut fast = Client::connect(server.addr());
    assert_eq!(fast.get("/healthz").status, 200);
    for s in &mut slow {
        assert_eq!(s.read_response().expect("slow response").status, 200);
    }
}

#[test]
fn header_timeout_answers_408() {
    let server = Server::start(&["--header-timeout", "1"]);
    let mut c = Client::connect(server.addr());
    c.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\n");
    let r = c.read_response().expect("408 after the head timeout");
    r.assert_json_error(408);
    assert!(r.closes(), "{r:?}");
    assert!(c.closed_within(PATIENCE));
    server.assert_healthy();
}

#[test]
fn idle_timeout_closes_keep_alive_connection() {
    let server = Server::start(&["--idle-timeout", "1"]);
    let mut c = Client::connect(server.addr());
    assert_eq!(c.get("/healthz").status, 200);
    let started = Instant::now();
    assert!(
        c.closed_within(PATIENCE),
        "idle connection still open after {:?}",
        started.elapsed()
    );
    server.assert_healthy();
}

#[test]
fn malformed_request_does_not_affect_other_connections() {
    if support::needs_concurrency("malformed_request_does_not_affect_other_connections") {
        return;
    }
    let server = Server::start(&[]);
    let mut good = Client::connect(server.addr());
    assert_eq!(good.get("/healthz").status, 200);
    // Half of a request on a third connection, left pending.
    let mut pending = Client::connect(server.addr());
    pending.send(b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\"");
    for bad in [
        &b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n"[..],
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
    ] {
        let raw = send_raw(server.addr(), bad);
        let (r, _) = parse_response(&raw, false).expect("an answer");
        assert_eq!(r.status, 400, "{r:?}");
        assert_eq!(good.get("/healthz").status, 200, "neighbour after {bad:?}");
    }
    pending.send(b":1}");
    let r = pending.read_response().expect("pending request completes");
    assert_eq!(r.status, 200);
    assert_eq!(lossy(&r.body), r#"{"a":1}"#);
}

#[test]
fn max_connections_refuses_the_extra_one_and_recovers() {
    if support::needs_concurrency("max_connections_refuses_the_extra_one_and_recovers") {
        return;
    }
    let server = Server::start(&["--max-connections", "3"]);
    let mut held: Vec<Client> = (0..3)
        .map(|_| {
            let mut c = Client::connect(server.addr());
            assert_eq!(c.get("/healthz").status, 200);
            c
        })
        .collect();
    // The fourth gets a 503 and a close, and does not get served. Over
    // TLS it is closed without a word: a plaintext 503 would reach a TLS
    // client as a bad record (tests/tls.rs checks the TCP side of it).
    let mut fourth = support::connect(server.addr());
    let _ = fourth.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
    let (raw, closed) = read_until_close(&mut fourth, PATIENCE);
    if server.is_tls() {
        assert!(closed && raw.is_empty(), "{:?}", lossy(&raw));
    } else {
        let (rs, _) = parse_all(&raw);
        assert_eq!(rs.len(), 1, "{:?}", lossy(&raw));
        rs[0].assert_json_error(503);
        assert!(rs[0].closes() && closed, "{:?}", rs[0]);
    }
    // The held ones still work.
    for c in &mut held {
        assert_eq!(c.get("/healthz").status, 200);
    }
    for c in &held {
        let _ = c.stream.shutdown(Shutdown::Both);
    }
    drop(held);
    // The server notices the closes asynchronously: retry, bounded.
    let end = Instant::now() + PATIENCE;
    loop {
        let raw = send_raw(
            server.addr(),
            b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        );
        match parse_response(&raw, false) {
            Some((r, _)) if r.status == 200 => break,
            other => {
                assert!(
                    Instant::now() < end,
                    "not served again after closing the others: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

#[test]
fn head_of_request_split_across_writes() {
    // Edge-triggered reads must not lose bytes that arrive in pieces.
    let server = Server::start(&[]);
    let mut c = Client::connect(server.addr());
    let req = b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"k\":\"vvv\"}";
    for piece in req.chunks(7) {
        c.send(piece);
        std::thread::sleep(Duration::from_millis(2));
    }
    let r = c.read_response().expect("response");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(lossy(&r.body), r#"{"k":"vvv"}"#);
    assert!(find(&r.body, b"vvv").is_some());
}

#[test]
fn byte_at_a_time_pipeline() {
    // Every read boundary inside heads, chunk sizes and bodies.
    let server = Server::start(&[]);
    let batch = b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n\
POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n\
POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\n[3 ]\
GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let mut c = Client::connect(server.addr());
    for b in batch.iter() {
        c.send(std::slice::from_ref(b));
    }
    let r = c.read_response().expect("1");
    assert_eq!(r.status, 200, "{r:?}");
    let r = c.read_response().expect("2");
    assert_eq!((r.status, lossy(&r.body)), (200, "[1,2]".into()), "{r:?}");
    let r = c.read_response().expect("3");
    assert_eq!((r.status, lossy(&r.body)), (200, "[3 ]".into()), "{r:?}");
    let r = c.read_response().expect("4");
    assert!(r.status == 200 && r.closes(), "{r:?}");
    assert!(c.closed_within(PATIENCE));
}

#[test]
fn many_pipelined_requests_with_a_late_reader() {
    // 500 requests written before reading anything: the server must apply
    // back-pressure rather than lose or reorder answers.
    let server = Server::start(&[]);
    server.add_file("k.txt", &vec![b'k'; 8 * 1024]);
    let mut batch = Vec::new();
    for i in 0..500 {
        if i % 5 == 0 {
            batch.extend_from_slice(b"GET /k.txt HTTP/1.1\r\nHost: a\r\n\r\n");
        } else {
            let body = format!("[{i}]");
            write!(
                batch,
                "POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
    }
    let mut c = Client::connect(server.addr());
    let writer = {
        let mut s = c.stream.try_clone().unwrap();
        std::thread::spawn(move || s.write_all(&batch).is_ok())
    };
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..500 {
        let r = c
            .read_response()
            .unwrap_or_else(|| panic!("response {i} missing"));
        assert_eq!(r.status, 200, "{i}: {r:?}");
        if i % 5 == 0 {
            assert_eq!(r.body.len(), 8 * 1024, "{i}");
        } else {
            assert_eq!(lossy(&r.body), format!("[{i}]"), "{i}");
        }
    }
    assert!(writer.join().unwrap(), "the server stopped reading");
}

#[test]
fn large_file_to_a_slow_reader_arrives_intact() {
    let server = Server::start(&[]);
    let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    server.add_file("big.bin", &data);
    let mut c = Client::connect(server.addr());
    c.stream.set_read_timeout(Some(PATIENCE)).unwrap();
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n");
    // Let the socket buffers fill before reading.
    std::thread::sleep(Duration::from_millis(300));
    let r = c.read_response().expect("response");
    assert_eq!(r.status, 200, "{:?}", r.headers);
    assert_eq!(r.body.len(), data.len());
    assert!(r.body == data, "body differs");
    assert_eq!(c.get("/healthz").status, 200);
}

#[test]
fn connection_close_is_honoured() {
    let server = Server::start(&[]);
    let mut c = Client::connect(server.addr());
    // The request after `Connection: close` must not be answered.
    c.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.read_response().expect("response");
    assert!(r.status == 200 && r.closes(), "{r:?}");
    assert!(c.closed_within(PATIENCE), "answered past Connection: close");
}

#[test]
fn more_framing_refusals() {
    let server = Server::start(&[]);
    let post = "POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n";
    for (extra, body, status) in [
        (
            "Transfer-Encoding: chunked, chunked\r\n",
            "2\r\n{}\r\n0\r\n\r\n",
            400,
        ),
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
            "",
            400,
        ),
        (
            "Transfer-Encoding: chunked\r\n",
            "fffffffffffffffffff\r\n",
            400,
        ),
        ("Transfer-Encoding: chunked\r\n", "2\r\n{}XX0\r\n\r\n", 400),
        ("Transfer-Encoding: chunked\r\n", "2\n{}\r\n0\r\n\r\n", 400),
        ("Content-Length: +2\r\n", "{}", 400),
        ("Content-Length: 0x2\r\n", "{}", 400),
        ("Expect: teapot\r\n", "", 417),
    ] {
        let req = format!("{post}{extra}\r\n{body}");
        expect_refusal(&server, req.as_bytes(), status);
    }
    // Transfer-Encoding in HTTP/1.0 (RFC 9112 §6.1).
    expect_refusal(
        &server,
        b"POST /api/echo HTTP/1.0\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        400,
    );
    // Whitespace between field name and colon (RFC 9112 §5.1).
    expect_refusal(&server, b"GET /healthz HTTP/1.1\r\nHost : a\r\n\r\n", 400);
    expect_refusal(
        &server,
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length : 0\r\n\r\n",
        400,
    );
    // A request line with extra spaces or a bare CR.
    expect_refusal(&server, b"GET  /healthz HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    expect_refusal(&server, b"GET /healthz HTTP/1.1\rHost: a\r\n\r\n", 400);
}

#[test]
fn leading_empty_lines_are_ignored() {
    // RFC 9112 §2.2: at least one empty line before a request-line is ignored.
    let server = Server::start(&[]);
    let raw = send_raw(
        server.addr(),
        b"\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let (rs, _) = parse_all(&raw);
    assert_eq!(rs.len(), 1, "{:?}", lossy(&raw));
    assert_eq!(rs[0].status, 200);
}

#[test]
fn half_closed_client_still_gets_its_answers() {
    let server = Server::start(&[]);
    let raw = send_raw(
        server.addr(),
        b"GET /api/slow?ms=300 HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let (rs, rest) = parse_all(&raw);
    assert_eq!(rs.len(), 2, "{rs:?} + {:?}", lossy(&rest));
    assert_eq!((rs[0].status, rs[1].status), (200, 200));
}

#[test]
fn slow_response_outlives_the_idle_timeout() {
    // The idle timeout is for connections without a request in progress.
    let server = Server::start(&["--idle-timeout", "1", "--header-timeout", "1"]);
    let mut c = Client::connect(server.addr());
    let r = c.get("/api/slow?ms=2500");
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn silent_connection_is_closed_without_an_answer() {
    let server = Server::start(&["--header-timeout", "1"]);
    let mut c = Client::connect(server.addr());
    let (bytes, closed) = read_until_close(&mut c.stream, PATIENCE);
    assert!(closed, "a connection that never speaks is closed");
    assert!(bytes.is_empty(), "nothing to answer: {:?}", lossy(&bytes));
}

#[test]
fn static_files_stay_inside_the_root() {
    let server = Server::start(&[]);
    let outside = server
        .root()
        .parent()
        .unwrap()
        .join("glasshouse-outside-secret.txt");
    std::fs::write(&outside, b"SECRET").unwrap();
    let name = "glasshouse-outside-secret.txt";
    for target in [
        format!("/../{name}"),
        format!("/%2e%2e/{name}"),
        format!("/%2E%2E%2F{name}"),
        format!("/digits.txt/../../{name}"),
        format!("/..%2f{name}"),
        format!("/..\\{name}"),
        "/../../../../../../etc/passwd".to_string(),
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd".to_string(),
        "//etc/passwd".to_string(),
    ] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        let raw = send_raw(server.addr(), req.as_bytes());
        let (rs, _) = parse_all(&raw);
        assert_eq!(rs.len(), 1, "{target}: {:?}", lossy(&raw));
        let r = &rs[0];
        assert!(
            find(&r.body, b"SECRET").is_none() && find(&r.body, b"root:").is_none(),
            "{target} escaped the root: {r:?}"
        );
        assert!(
            matches!(r.status, 400 | 403 | 404),
            "{target}: expected 400/403/404, got {r:?}"
        );
    }
    let _ = std::fs::remove_file(outside);
    server.assert_healthy();
}

#[test]
fn static_file_validators_and_ranges() {
    let server = Server::start(&[]);
    let mut c = Client::connect(server.addr());
    let r = c.get("/digits.txt");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(lossy(&r.body), support::DIGITS_TXT);
    let etag = r.header("etag").expect("ETag").to_string();
    assert!(r.header("last-modified").is_some(), "{r:?}");
    let r = c.request(
        format!("GET /digits.txt HTTP/1.1\r\nHost: a\r\nIf-None-Match: {etag}\r\n\r\n").as_bytes(),
    );
    assert_eq!(r.status, 304, "{r:?}");
    assert!(r.body.is_empty());
    let r = c.request(b"GET /digits.txt HTTP/1.1\r\nHost: a\r\nRange: bytes=-5\r\n\r\n");
    assert_eq!(r.status, 206, "{r:?}");
    assert_eq!(lossy(&r.body), "wxyz\n");
    let r = c.request(b"GET /digits.txt HTTP/1.1\r\nHost: a\r\nRange: bytes=1000-\r\n\r\n");
    assert_eq!(r.status, 416, "{r:?}");
    assert!(
        r.header("content-range")
            .is_some_and(|v| v.starts_with("bytes */")),
        "{r:?}"
    );
    // Directory → index.html; SPA fallback for HTML navigations.
    let r = c.get("/");
    assert_eq!(
        (r.status, lossy(&r.body)),
        (200, support::INDEX_HTML.to_string())
    );
    let r = c.request(b"GET /some/app/route HTTP/1.1\r\nHost: a\r\nAccept: text/html\r\n\r\n");
    assert_eq!(
        (r.status, lossy(&r.body)),
        (200, support::INDEX_HTML.to_string()),
        "{r:?}"
    );
    // HEAD of a file: the length without the body.
    c.send(b"HEAD /digits.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    let h = c.read_head_response().expect("HEAD");
    assert_eq!(h.header("content-length"), Some("37"), "{h:?}");
    assert_eq!(c.get("/healthz").status, 200);
}

#[test]
fn many_concurrent_connections() {
    if support::needs_concurrency("many_concurrent_connections") {
        return;
    }
    let server = Server::start(&[]);
    let addr = server.addr();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut conns: Vec<Client> = (0..25).map(|_| Client::connect(addr)).collect();
                for round in 0..4 {
                    for (i, c) in conns.iter_mut().enumerate() {
                        let body = format!("[{t},{i},{round}]");
                        let r = c.request(
                            format!("POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
                        );
                        assert_eq!((r.status, lossy(&r.body)), (200, body));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    server.assert_healthy();
}

/// A JSON document of exactly `n` bytes.
fn json_of_len(n: usize) -> String {
    let s = format!("[{}]", " ".repeat(n - 2));
    assert_eq!(s.len(), n);
    s
}

#[test]
fn limits_are_exact() {
    if support::needs_concurrency("limits_are_exact") {
        return;
    }
    let server = Server::start(&["--max-body", "1024"]);
    let mut c = Client::connect(server.addr());
    // Body: exactly --max-body is accepted (declared and chunked).
    let body = json_of_len(1024);
    let r = c.request(format!("POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 1024\r\n\r\n{body}").as_bytes());
    assert_eq!(r.status, 200, "{r:?}");
    let r = c.request(format!("POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n{}\r\n200\r\n{}\r\n0\r\n\r\n", &body[..512], &body[512..]).as_bytes());
    assert_eq!((r.status, r.body.len()), (200, 1024), "{r:?}");
    let over = json_of_len(1025);
    expect_refusal(
        &server,
        format!("POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 1025\r\n\r\n{over}").as_bytes(),
        413,
    );
    // Header fields: 100 are accepted, 101 are not.
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..99 {
        write!(head, "X-{i}: v\r\n").unwrap();
    }
    let mut ok = head.clone();
    ok.extend_from_slice(b"\r\n");
    assert_eq!(c.request(&ok).status, 200);
    head.extend_from_slice(b"X-last: v\r\n\r\n");
    expect_refusal(&server, &head, 431);
    // Target: 8 KiB is accepted (404: no such file), one more byte is 414.
    let target = format!("/{}", "t".repeat(8 * 1024 - 1));
    let r = c.request(format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
    assert_eq!(r.status, 404, "{:?}", r.status);
    expect_refusal(
        &server,
        format!("GET {target}t HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
        414,
    );
}

#[test]
fn pipeline_mixing_large_files_and_small_answers() {
    let server = Server::start(&[]);
    let big: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 241) as u8).collect();
    server.add_file("big.bin", &big);
    let mut c = Client::connect(server.addr());
    c.send(
        b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n\
GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n\
GET /big.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=1000-1999\r\n\r\n\
HEAD /big.bin HTTP/1.1\r\nHost: a\r\n\r\n\
GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n\
GET /digits%2Etxt HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let r = c.read_response().expect("1");
    assert!(r.status == 200 && r.body == big, "1: {:?}", r.headers);
    let r = c.read_response().expect("2");
    assert_eq!(lossy(&r.body), r#"{"status":"ok"}"#);
    let r = c.read_response().expect("3");
    assert_eq!(r.status, 206, "{:?}", r.headers);
    assert!(r.body == big[1000..2000], "range body");
    let r = c.read_head_response().expect("4");
    assert_eq!(r.header("content-length"), Some("1048576"), "{r:?}");
    let r = c.read_response().expect("5");
    assert!(r.status == 200 && r.body == big, "5: {:?}", r.headers);
    let r = c.read_response().expect("6");
    assert_eq!(
        (r.status, lossy(&r.body)),
        (200, support::DIGITS_TXT.to_string()),
        "{r:?}"
    );
}

#[test]
fn http10_keep_alive_with_files_and_bodies() {
    let server = Server::start(&[]);
    let big = vec![b'z'; 300 * 1024];
    server.add_file("z.bin", &big);
    let mut c = Client::connect(server.addr());
    for _ in 0..2 {
        let r = c.request(b"GET /z.bin HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!((r.status, r.body.len()), (200, big.len()));
        assert_eq!(r.header("connection"), Some("keep-alive"), "{r:?}");
        let r = c.request(b"POST /api/echo HTTP/1.0\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
        assert_eq!((r.status, lossy(&r.body)), (200, "{}".to_string()));
        assert_eq!(r.header("connection"), Some("keep-alive"), "{r:?}");
    }
    // Without keep-alive, a 1.0 file answer ends with the close.
    let r = c.request(b"GET /z.bin HTTP/1.0\r\n\r\n");
    assert_eq!(r.body.len(), big.len());
    assert!(c.closed_within(PATIENCE));
}

#[test]
fn header_timeout_applies_to_later_requests_and_trickled_heads() {
    let server = Server::start(&["--header-timeout", "1", "--idle-timeout", "30"]);
    // The second request on a kept-alive connection has the same guard.
    let mut c = Client::connect(server.addr());
    assert_eq!(c.get("/healthz").status, 200);
    c.send(b"GET /healthz HTTP/1.1\r\n");
    c.read_response().expect("408").assert_json_error(408);
    assert!(c.closed_within(PATIENCE));
    // Slowloris: a head trickled a byte at a time does not extend the
    // deadline; the server cuts it off long before the 40 bytes are done.
    let mut c = Client::connect(server.addr());
    c.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: ");
    let mut cut_off = false;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(200));
        if std::io::Write::write_all(&mut c.stream, b"z").is_err() {
            cut_off = true;
            break;
        }
        let mut probe = Client::from_stream(c.stream.try_clone().unwrap());
        if let Some(r) = probe.read_response_opts(false, Duration::from_millis(1)) {
            r.assert_json_error(408);
            cut_off = true;
            break;
        }
    }
    assert!(
        cut_off,
        "a trickled head outlived --header-timeout 1 by far"
    );
    server.assert_healthy();
}

#[test]
fn slow_but_progressing_body_is_accepted() {
    // The head timeout guards heads; a body that keeps arriving is fine.
    let server = Server::start(&["--header-timeout", "1"]);
    let mut c = Client::connect(server.addr());
    c.send(b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n");
    for piece in [&b"[1,"[..], b"2,", b"3,", b"4,", b"5,", b"6]"] {
        std::thread::sleep(Duration::from_millis(400));
        c.send(piece);
    }
    let r = c.read_response().expect("response");
    assert_eq!(
        (r.status, lossy(&r.body)),
        (200, "[1,2,3,4,5,6]".to_string()),
        "{r:?}"
    );
}

#[test]
fn websocket_paths_and_upgrades() {
    let server = Server::start(&[]);
    let mut c = Client::connect(server.addr());
    // Plain GET on a WebSocket endpoint: 426 Upgrade Required.
    let r = c.get("/ws/echo");
    assert_eq!(r.status, 426, "{r:?}");
    // Closed, so that a model serving one connection at a time gets to the next.
    drop(c);
    // A working upgrade and echo, text and binary, with a 64 KiB message.
    let mut ws = support::ws_connect(server.addr(), "/ws/echo");
    support::ws_send(&mut ws, 0x1, "héllo".as_bytes());
    assert_eq!(
        support::ws_recv(&mut ws),
        Some((0x1, "héllo".as_bytes().to_vec()))
    );
    let blob: Vec<u8> = (0..65536u32).map(|i| i as u8).collect();
    support::ws_send(&mut ws, 0x2, &blob);
    assert_eq!(support::ws_recv(&mut ws), Some((0x2, blob)));
    support::ws_send(&mut ws, 0x9, b"p");
    assert_eq!(
        support::ws_recv(&mut ws),
        Some((0xA, b"p".to_vec())),
        "pong"
    );
    support::ws_send(&mut ws, 0x8, &1000u16.to_be_bytes());
    let (op, payload) = support::ws_recv(&mut ws).expect("close reply");
    assert_eq!(op, 0x8);
    assert_eq!(&payload[..2], &1000u16.to_be_bytes());
    assert!(ws.closed_within(PATIENCE));
    // An HTTP/1.0 upgrade attempt is not switched (RFC 6455 §4.1: 1.1+).
    let raw = send_raw(
        server.addr(),
        format!(
            "GET /ws/echo HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            support::WS_KEY
        )
        .as_bytes(),
    );
    let (r, _) = parse_response(&raw, false).expect("an answer");
    assert_ne!(r.status, 101, "{r:?}");
    server.assert_healthy();
}

/// Closes a socket with a reset (SO_LINGER 0) instead of a FIN.
fn reset(stream: support::Wire) {
    let lin = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::Linger, &lin)
        .expect("SO_LINGER");
    drop(stream);
}

/// How long the figures of a process model can lag behind its children
/// (measured: 30-95 ms with 256 worker processes on a loaded 2-core
/// machine), with a margin.
const FIGURES_LAG: Duration = Duration::from_millis(400);

fn connections_open(server: &Server) -> u64 {
    server.get("/api/stats").json()["connections_open"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

#[test]
fn abandoned_connections_are_all_released() {
    if support::needs_concurrency("abandoned_connections_are_all_released") {
        return;
    }
    // Every way a client can leave: reset mid-head, reset mid-body, reset
    // while a slow answer is held back, close mid-file, refusal, timeout.
    let server = Server::start(&["--header-timeout", "1", "--max-connections", "50"]);
    server.add_file("big.bin", &vec![b'b'; 2 << 20]);
    let mut kept = Vec::new();
    for round in 0..5 {
        let mut c = Client::connect(server.addr());
        c.send(b"GET /healthz HTTP/1.1\r\nHo");
        reset(c.stream);
        let mut c = Client::connect(server.addr());
        c.send(b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[1,");
        reset(c.stream);
        let mut c = Client::connect(server.addr());
        c.send(b"GET /api/slow?ms=300 HTTP/1.1\r\nHost: a\r\n\r\n");
        reset(c.stream);
        let mut c = Client::connect(server.addr());
        c.send(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n");
        let mut first = [0u8; 100];
        let _ = std::io::Read::read(&mut c.stream, &mut first);
        if round % 2 == 0 {
            reset(c.stream);
        } else {
            drop(c);
        }
        let _ = send_raw(server.addr(), b"BROKEN\r\n\r\n");
        let mut silent_partial = Client::connect(server.addr());
        silent_partial.send(b"GET /");
        // Left open: the head timeout must end it.
        kept.push(silent_partial);
    }
    // Timeouts fire within a couple of seconds; bounded wait for the count
    // to come back to just the stats connection itself, and stay there for
    // FIGURES_LAG: in the preforked model a child's figures reach the
    // sibling that answers the stats through the parent, tens of
    // milliseconds later, so a reading right after the last connect can
    // miss the connections just accepted.
    let end = Instant::now() + PATIENCE;
    let mut settled: Option<Instant> = None;
    loop {
        let open = connections_open(&server);
        if open != 1 {
            settled = None;
        } else if settled.get_or_insert_with(Instant::now).elapsed() >= FIGURES_LAG {
            break;
        }
        assert!(
            Instant::now() < end,
            "{open} connections still counted open"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // And the limit still admits a full set. The stats connection just
    // closed holds its place until its server side reads the close (in a
    // process model, a worker process a moment later), so a 503 may come
    // while that happens, never for long: a place lost for good would
    // refuse the last connection until the deadline.
    let end = Instant::now() + PATIENCE;
    let mut held: Vec<Client> = Vec::new();
    while held.len() < 49 {
        let mut c = Client::connect(server.addr());
        // Over TLS a refusal is a close, no 503 (see max_connections_...).
        let status = match c.get_with("/healthz", &[]) {
            Ok(r) => r.status,
            Err(e) if server.is_tls() => {
                eprintln!("refused over TLS: {e}");
                503
            }
            Err(e) => panic!("GET /healthz: {e}"),
        };
        if status == 200 {
            held.push(c);
            continue;
        }
        assert_eq!(status, 503, "refusals are 503s");
        assert!(
            Instant::now() < end,
            "only {} of 49 places came back",
            held.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_client_that_never_reads_cannot_grow_the_server() {
    // Pipelined requests for a 1 MiB file, never reading the answers: the
    // server must stop reading (back-pressure) instead of buffering
    // answers or requests without bound.
    let server = Server::start(&[]);
    server.add_file("big.bin", &vec![b'b'; 1 << 20]);
    let before = rss_kib(server.pid());
    let c = Client::connect(server.addr());
    let mut w = c.stream.try_clone().unwrap();
    w.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let req = b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut sent = 0usize;
    for _ in 0..200_000 {
        match w.write(req) {
            Ok(n) => sent += n,
            Err(_) => break, // blocked: the server stopped reading
        }
    }
    assert!(
        sent < 200_000 * req.len(),
        "the server read {sent} bytes of requests it could not answer"
    );
    let after = rss_kib(server.pid());
    assert!(
        after < before + 64 * 1024,
        "server RSS grew from {before} KiB to {after} KiB"
    );
    drop(c);
    drop(w);
    server.assert_healthy();
}

#[test]
fn api_edges() {
    let server = Server::start(&[]);
    let mut c = Client::connect(server.addr());
    for ct in [
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/problem+json",
    ] {
        let r = c.request(
            format!("POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: {ct}\r\nContent-Length: 7\r\n\r\n{{\"a\":1}}")
                .as_bytes(),
        );
        assert_eq!(
            (r.status, lossy(&r.body)),
            (200, r#"{"a":1}"#.to_string()),
            "{ct}"
        );
    }
    // An empty body is not JSON.
    c.request(b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n")
        .assert_json_error(400);
    for q in ["ms=60001", "ms=-1", "ms=", "ms=1e3"] {
        c.get(&format!("/api/slow?{q}")).assert_json_error(400);
    }
    assert_eq!(c.get("/api/slow?ms=0").status, 200);
    // Static files: GET and HEAD only.
    let r = c.request(b"POST /digits.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    r.assert_json_error(405);
    assert!(
        r.header("allow")
            .is_some_and(|a| a.contains("GET") && a.contains("HEAD")),
        "{r:?}"
    );
    assert_eq!(c.get("/healthz?probe=1").status, 200);
}

#[test]
fn refusal_behind_pipelined_answers_comes_after_them() {
    // The answers owed before a malformed request are sent in full and in
    // order, then the refusal, then the close.
    let server = Server::start(&[]);
    let big: Vec<u8> = (0..2 * 1024 * 1024u32).map(|i| (i % 239) as u8).collect();
    server.add_file("big.bin", &big);
    let mut c = Client::connect(server.addr());
    c.send(
        b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n\
GET /api/slow?ms=100 HTTP/1.1\r\nHost: a\r\n\r\n\
GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n\
GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n\
GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let r = c.read_response().expect("file");
    assert!(r.status == 200 && r.body == big, "{:?}", r.headers);
    let r = c.read_response().expect("slow");
    assert_eq!(
        (r.status, lossy(&r.body)),
        (200, r#"{"slept_ms":100}"#.to_string())
    );
    let r = c.read_response().expect("healthz");
    assert_eq!(r.status, 200);
    let r = c.read_response().expect("refusal");
    r.assert_json_error(400);
    assert!(r.closes());
    assert!(c.closed_within(PATIENCE), "nothing after the refusal");
}

#[test]
fn refusal_is_not_lost_to_a_reset_while_the_client_keeps_sending() {
    // 413 on the declared length while the client is still writing a
    // 4 MiB body: the server must let the answer reach the client (lingering
    // close) rather than reset the connection with unread input.
    let server = Server::start(&[]);
    for _ in 0..3 {
        let mut c = Client::connect(server.addr());
        c.send(b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 4194304\r\n\r\n");
        let mut w = c.stream.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            let chunk = vec![b' '; 64 * 1024];
            for _ in 0..64 {
                if w.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        let r = c.read_response().expect("413 must arrive");
        r.assert_json_error(413);
        writer.join().unwrap();
    }
    server.assert_healthy();
}

// ---- Known server bugs: these fail until src/ is fixed ----

#[test]
fn bare_lf_inside_the_head_is_refused() {
    // RFC 9112 §2.2 lets a recipient accept a bare LF, but doing so inside
    // the field section lets `Content-Length` hide in what another parser
    // reads as one field value (request smuggling, RFC 9112 §11.2). Our own
    // rule (src/http/head.rs: refuse every framing ambiguity) and llhttp
    // refuse it; we answer both requests: 200 for `/`, 404 for `/admin`.
    let server = Server::start(&[]);
    expect_refusal(
        &server,
        b"GET / HTTP/1.1\r\nHost: localhost\r\nDummy: x\nContent-Length: 23\r\n\r\n\
GET / HTTP/1.1\r\nDummy: GET /admin HTTP/1.1\r\nHost: localhost\r\n\r\n",
        400,
    );
    expect_refusal(
        &server,
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nX: y\nZ: w\r\n\r\n",
        400,
    );
}

#[test]
fn malformed_chunk_size_lines_are_refused() {
    // RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF, and
    // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ).
    // Whitespace or text after the size without `;`, and `;` without a
    // name, are invalid (llhttp refuses all three in strict mode).
    let server = Server::start(&[]);
    let head = "POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut accepted = Vec::new();
    for body in [
        "2 erfrferferf\r\n{}\r\n0\r\n\r\n",
        "2;\r\n{}\r\n0\r\n\r\n",
        "2 \r\n{}\r\n0\r\n\r\n",
        "2\t\r\n{}\r\n0\r\n\r\n",
        "2;ext=val ue\r\n{}\r\n0\r\n\r\n",
    ] {
        let raw = send_raw(server.addr(), format!("{head}{body}").as_bytes());
        let status = parse_response(&raw, false).map(|(r, _)| r.status);
        if status != Some(400) {
            accepted.push(format!("{body:?} -> {status:?}"));
        }
    }
    assert!(
        accepted.is_empty(),
        "not refused with 400:\n{}",
        accepted.join("\n")
    );
    server.assert_healthy();
}

#[test]
fn malformed_trailer_lines_are_refused() {
    // RFC 9112 §7.1.2: trailer-section = *( field-line CRLF ), field-line =
    // field-name ":" OWS field-value OWS. Trailers are discarded, but lines
    // that are not field lines are still a malformed message (llhttp and
    // our own head parser refuse the same bytes in a head).
    let server = Server::start(&[]);
    let head = "POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n";
    let mut accepted = Vec::new();
    for trailer in ["Bad Trailer: x\r\n\r\n", ": x\r\n\r\n", "no colon\r\n\r\n"] {
        let raw = send_raw(server.addr(), format!("{head}{trailer}").as_bytes());
        let status = parse_response(&raw, false).map(|(r, _)| r.status);
        if status != Some(400) {
            accepted.push(format!("{trailer:?} -> {status:?}"));
        }
    }
    assert!(
        accepted.is_empty(),
        "not refused with 400:\n{}",
        accepted.join("\n")
    );
}

#[test]
fn non_ascii_request_target_is_refused() {
    // RFC 9112 §3.2 / RFC 3986 §2: a request-target is ASCII; raw UTF-8
    // bytes make the request-line invalid, which SHOULD get 400 (RFC 9112 §3).
    let server = Server::start(&[]);
    expect_refusal(
        &server,
        "GET /δ¶/δt/pope?q=1 HTTP/1.1\r\nHost: github.com\r\n\r\n".as_bytes(),
        400,
    );
}
