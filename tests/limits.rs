//! Bounds a peer runs into, against the real server: each refusal is what
//! the peer gets (a status, or a closed connection) and is counted in
//! `glasshouse_limit_refusals_total{limit}` on `/metrics`; the server goes
//! on serving others. The slow reader: a peer that reads none of a large
//! answer is cut off after `--send-timeout`, holding at most what the
//! kernel's buffers and one output batch took.

mod support;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use support::{get_close, prom_value, send_raw, Client, Server, PATIENCE};

fn refusals(server: &Server, limit: &str) -> f64 {
    let text = get_close(server.addr(), "/metrics").text();
    let key = format!("glasshouse_limit_refusals_total{{limit=\"{limit}\"}}");
    prom_value(&text, &key).unwrap_or_else(|| panic!("{key} missing from /metrics"))
}

/// Waits (bounded) until the counter reaches `want`.
fn wait_refusals(server: &Server, limit: &str, want: f64) -> f64 {
    let end = Instant::now() + PATIENCE;
    loop {
        let n = refusals(server, limit);
        if n >= want || Instant::now() > end {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_limit_is_listed_at_zero() {
    let server = Server::builder().start();
    for limit in [
        "request_timeout",
        "headers_too_large",
        "uri_too_long",
        "body_too_large",
        "send_timeout",
        "ws_message_too_big",
        "ws_output_full",
        "linger_input",
        "connections_per_client",
    ] {
        assert_eq!(refusals(&server, limit), 0.0, "{limit}");
    }
}

#[test]
fn protocol_limits_are_refused_and_counted() {
    let server = Server::builder()
        .args(&["--max-body", "1024", "--header-timeout", "1"])
        .start();
    let big_field = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "b".repeat(40_000)
    );
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "t".repeat(9_000));
    let cases = [
        (big_field.into_bytes(), 431, "headers_too_large"),
        (long_target.into_bytes(), 414, "uri_too_long"),
        (
            b"POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n".to_vec(),
            413,
            "body_too_large",
        ),
    ];
    for (request, status, limit) in cases {
        let answer = send_raw(server.addr(), &request);
        let line = String::from_utf8_lossy(&answer[..answer.len().min(12)]).into_owned();
        assert!(
            line.starts_with(&format!("HTTP/1.1 {status}")),
            "{limit}: {line:?}"
        );
        assert_eq!(wait_refusals(&server, limit, 1.0), 1.0, "{limit}");
    }
    // Half a head, then silence: 408 after the head timeout.
    let mut c = Client::connect(server.addr());
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n");
    let r = c.read_response_opts(false, PATIENCE).expect("a 408");
    assert_eq!(r.status, 408);
    assert_eq!(wait_refusals(&server, "request_timeout", 1.0), 1.0);
    // None of it disturbed anyone else.
    assert_eq!(get_close(server.addr(), "/healthz").status, 200);
}

#[test]
fn a_reader_that_stops_reading_is_cut_off_and_counted() {
    let server = Server::builder().args(&["--send-timeout", "1"]).start();
    // Sparse: the kernel reads zero pages, the disk holds nothing.
    let size: u64 = 256 << 20;
    std::fs::File::create(server.root().join("big.bin"))
        .and_then(|f| f.set_len(size))
        .expect("big file");
    let mut c = Client::connect(server.addr());
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n");
    // Read nothing while the server gives up on us.
    assert_eq!(
        wait_refusals(&server, "send_timeout", 1.0),
        1.0,
        "the slow reader was not cut off"
    );
    // What reaches us is what the kernel already held, then a reset: the
    // server dropped what we never read instead of queueing a FIN behind it.
    let mut got = 0u64;
    let mut buf = vec![0; 1 << 20];
    c.stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let end = loop {
        match c.stream.read(&mut buf) {
            Ok(0) => break None,
            Err(e) => break Some(e.kind()),
            Ok(n) => got += n as u64,
        }
    };
    assert_eq!(
        end,
        Some(std::io::ErrorKind::ConnectionReset),
        "a peer given up on is reset"
    );
    assert!(
        got < size,
        "the whole body went out ({got} bytes) to a peer that did not read"
    );
    // Others are served throughout, and this counted once.
    assert_eq!(get_close(server.addr(), "/healthz").status, 200);
    assert_eq!(refusals(&server, "send_timeout"), 1.0);
    let _ = c.stream.shutdown(Shutdown::Both);
}

#[test]
fn a_reader_that_keeps_reading_slowly_gets_everything() {
    let server = Server::builder().args(&["--send-timeout", "10"]).start();
    let body: Vec<u8> = (0..(2u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(server.root().join("two.bin"), &body).expect("file");
    let mut c = Client::connect(server.addr());
    c.stream
        .write_all(b"GET /two.bin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    // Reads in small sips with pauses shorter than the send timeout.
    let mut got = Vec::new();
    let mut buf = [0u8; 64 << 10];
    c.stream.set_read_timeout(Some(PATIENCE)).unwrap();
    loop {
        match c.stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read: {e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let at = support::find(&got, b"\r\n\r\n").expect("a head") + 4;
    assert_eq!(&got[at..], &body[..], "the whole body arrived");
    assert_eq!(refusals(&server, "send_timeout"), 0.0);
}

#[test]
fn an_oversized_websocket_message_costs_a_close_and_is_counted() {
    let server = Server::builder()
        .args(&["--ws-max-message", "1000"])
        .start();
    let (mut c, _) = support::ws_open(server.addr(), "/ws/echo", "", b"");
    support::ws_send(&mut c, 0x2, &[7u8; 1001]);
    let frame = support::ws_next(&mut c).expect("a close frame");
    assert_eq!(frame.close_code(), Some(1009));
    drop(c);
    assert_eq!(wait_refusals(&server, "ws_message_too_big", 1.0), 1.0);
    // A message at the limit is still echoed on another session.
    let (mut c, _) = support::ws_open(server.addr(), "/ws/echo", "", b"");
    support::ws_send(&mut c, 0x2, &[7u8; 1000]);
    assert_eq!(
        support::ws_next(&mut c).expect("the echo").payload.len(),
        1000
    );
}

#[test]
fn a_peer_that_keeps_sending_after_a_refusal_is_closed_and_counted() {
    let server = Server::builder().start();
    let mut c = Client::connect(server.addr());
    c.send(b"GET / HTTP/9.9\r\nHost: a\r\n\r\n");
    let r = c.read_response_opts(false, PATIENCE).expect("a 505");
    assert_eq!(r.status, 505);
    // Keep sending past the linger bound; the server stops reading at some
    // point (a reset or a full window), so errors and stalls end the loop.
    c.stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    // 16 MiB: four times the bound.
    let junk = vec![b'x'; 64 << 10];
    for _ in 0..256 {
        if c.stream.write_all(&junk).is_err() {
            break;
        }
    }
    assert_eq!(wait_refusals(&server, "linger_input", 1.0), 1.0);
    assert_eq!(get_close(server.addr(), "/healthz").status, 200);
}

/// `POST /api/echo` with a JSON body of `len` bytes: the status.
fn post_status(server: &Server, len: usize) -> u16 {
    let mut req = format!(
        "POST /api/echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    )
    .into_bytes();
    // A JSON string: the echo takes JSON.
    req.push(b'"');
    req.resize(req.len() + len - 2, b'x');
    req.push(b'"');
    let raw = send_raw(server.addr(), &req);
    support::parse_response(&raw, false)
        .map(|(r, _)| r.status)
        .unwrap_or_else(|| panic!("no answer: {:?}", support::lossy(&raw)))
}

/// A keep-alive client that got its 200 (held open), or the status it got.
fn hold(server: &Server) -> Result<Client, u16> {
    let mut c = Client::connect(server.addr());
    c.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
    match c.read_response_opts(false, PATIENCE) {
        Some(r) if r.status == 200 => Ok(c),
        Some(r) => Err(r.status),
        None => Err(0),
    }
}

/// [`hold`], waiting (bounded) for a place: a model may give a closed
/// connection's place back a moment after the client saw it close (the
/// forking model, when it reaps the child that served it).
fn hold_place(server: &Server) -> Client {
    let end = Instant::now() + PATIENCE;
    loop {
        match hold(server) {
            Ok(c) => return c,
            Err(503) if Instant::now() < end => std::thread::sleep(Duration::from_millis(50)),
            Err(status) => panic!("no place under the cap: {status}"),
        }
    }
}

#[test]
fn a_reload_changes_timeouts_and_limits_for_what_comes_next() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("glasshouse.toml");
    std::fs::write(
        &cfg,
        "max_body = 100\nmax_connections = 2\nheader_timeout = 600\n",
    )
    .unwrap();
    // Eight workers hold what the test holds at once (five connections);
    // a preforked reload replaces each of them, and a host with many CPUs
    // would otherwise make that hundreds of processes.
    let server = Server::builder()
        .args(&["--config", cfg.to_str().unwrap(), "--workers", "8"])
        .start();
    assert_eq!(post_status(&server, 500), 413);
    // Connections held at once need a model that serves them at once.
    let capped = support::serves_concurrently();
    let mut held = Vec::new();
    if capped {
        held = (0..2).map(|_| hold_place(&server)).collect();
        assert_eq!(hold(&server).err(), Some(503), "the third is over the cap");
    }

    std::fs::write(
        &cfg,
        "max_body = 1000\nmax_connections = 10\nheader_timeout = 1\n",
    )
    .unwrap();
    server.signal(libc::SIGHUP);
    assert!(
        server.wait_log("configuration reloaded", PATIENCE),
        "{}",
        server.log()
    );
    // A preforked child holds the configuration it forked with: the
    // reload is in force once the pool is replaced.
    if support::model() == "preforked" {
        assert!(
            server.wait_log("every worker process replaced", support::POOL_PATIENCE),
            "{}",
            server.log()
        );
    }
    assert!(
        !server.log().contains("need a restart"),
        "timeouts and limits apply live: {}",
        server.log()
    );
    // The new cap and body limit hold for the next connection and request.
    if capped {
        held.push(hold_place(&server));
    }
    assert_eq!(post_status(&server, 500), 200, "the new body limit");
    // The new head timeout: half a head, then silence, is answered 408
    // (under the old one, 600 s, the client would give up first).
    let mut c = Client::connect(server.addr());
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n");
    let r = c
        .read_response_opts(false, PATIENCE)
        .expect("a 408 under the new head timeout");
    assert_eq!(r.status, 408);
    drop(held);
    assert_eq!(get_close(server.addr(), "/healthz").status, 200);
}
