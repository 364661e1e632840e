//! What each server model (`--model`) must show beyond the shared suites
//! (which `make test-models` runs against every model): a slow client that
//! sends half a head and stalls is cut off at the header timeout — while
//! another client is served, or, in `iterative`, with the other client
//! waiting in the backlog until it is — and SIGTERM under load drains with
//! zero failures among the requests sent before the signal. Each test
//! names its model, so these run once per `cargo test` whatever
//! `GLASSHOUSE_TEST_MODEL` says. No timing assertions: the order of events
//! is read from the server's own counts.

mod support;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Client, Server, PATIENCE};

/// A slow client in a model that serves connections at once: a second
/// client is answered while the first is still held (the server counts
/// both open), then the first gets its 408 and is closed.
fn slow_client_is_cut_off_while_others_are_served(model: &str) {
    let server = Server::start(&["--model", model, "--header-timeout", "3", "--workers", "2"]);
    let mut slow = Client::connect(server.addr());
    slow.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\n");
    // The other client is served while the slow one is held: its stats
    // count both open (a connection thread counts itself once it runs, so
    // ask again, boundedly, until it does).
    let mut other = Client::connect(server.addr());
    let end = Instant::now() + PATIENCE;
    loop {
        let stats = other.get("/api/stats");
        assert_eq!(stats.status, 200, "{stats:?}");
        let v = stats.json();
        assert_eq!(v["model"], model, "{v}");
        if v["connections_open"].as_u64() >= Some(2) {
            break;
        }
        assert!(
            Instant::now() < end,
            "the slow client never counted open: {v}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = slow.read_response().expect("408 at the header timeout");
    r.assert_json_error(408);
    assert!(r.closes(), "{r:?}");
    assert!(slow.closed_within(PATIENCE), "the slow client is closed");
    assert_eq!(other.get("/healthz").status, 200);
}

#[test]
fn threaded_cuts_off_a_slow_client_and_serves_others() {
    slow_client_is_cut_off_while_others_are_served("threaded");
}

#[test]
fn prethreaded_cuts_off_a_slow_client_and_serves_others() {
    slow_client_is_cut_off_while_others_are_served("prethreaded");
}

#[test]
fn poll_cuts_off_a_slow_client_and_serves_others() {
    slow_client_is_cut_off_while_others_are_served("poll");
}

#[test]
fn io_uring_cuts_off_a_slow_client_and_serves_others() {
    slow_client_is_cut_off_while_others_are_served("io_uring");
}

/// In `iterative` the slow client holds the only thread: the other client
/// waits in the backlog and is served once the slow one has had its 408
/// and been closed — the stats it gets count only itself open, and the
/// refusal among the requests.
#[test]
fn iterative_serves_the_next_client_once_a_slow_one_is_cut_off() {
    let server = Server::start(&["--model", "iterative", "--header-timeout", "2"]);
    let mut slow = Client::connect(server.addr());
    slow.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\n");
    let mut other = Client::connect(server.addr());
    other.send(b"GET /api/stats HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = slow.read_response().expect("408 at the header timeout");
    r.assert_json_error(408);
    assert!(slow.closed_within(PATIENCE), "the slow client is closed");
    let stats = other.read_response().expect("the waiting client is served");
    assert_eq!(stats.status, 200, "{stats:?}");
    let v = stats.json();
    assert_eq!(v["model"], "iterative", "{v}");
    assert_eq!(
        v["connections_open"], 1,
        "served only after the slow one was closed: {v}"
    );
    assert!(v["requests_total"].as_u64() >= Some(1), "{v}");
}

/// Load from several keep-alive clients (quick and held-back answers),
/// SIGTERM in the middle of it: every request fully sent before the signal
/// is answered 200, and the server exits 0. Requests sent after the signal
/// may be refused or cut off; that is the drain.
fn sigterm_under_load(model: &str) {
    let mut server = Server::start(&["--model", model, "--drain-timeout", "20"]);
    let addr = server.addr();
    let signalled = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = (0..6)
        .map(|i| {
            let (signalled, answered, failures) =
                (signalled.clone(), answered.clone(), failures.clone());
            std::thread::spawn(move || {
                let paths = ["/healthz", "/api/slow?ms=20", "/digits.txt"];
                let mut n = 0usize;
                'connections: loop {
                    let before_connect = !signalled.load(Ordering::SeqCst);
                    let Ok(mut c) = Client::try_connect(addr) else {
                        if before_connect {
                            failures.lock().unwrap().push(format!("client {i}: connect refused before the signal"));
                        }
                        return;
                    };
                    loop {
                        let path = paths[(i + n) % paths.len()];
                        n += 1;
                        let req = format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n");
                        let wrote = c.stream.write_all(req.as_bytes()).is_ok();
                        // Read after the write: false means the whole request
                        // was sent before the signal flag was raised, and so
                        // before the signal.
                        let before = wrote && !signalled.load(Ordering::SeqCst);
                        let r = if wrote { c.read_response() } else { None };
                        match r {
                            Some(r) if r.status == 200 => {
                                answered.fetch_add(1, Ordering::SeqCst);
                                if r.closes() {
                                    if signalled.load(Ordering::SeqCst) {
                                        return;
                                    }
                                    continue 'connections;
                                }
                            }
                            other => {
                                if before {
                                    failures.lock().unwrap().push(format!(
                                        "client {i}: GET {path} sent before the signal got {other:?}"
                                    ));
                                }
                                return;
                            }
                        }
                        if signalled.load(Ordering::SeqCst) && !before {
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    // Load first: wait (bounded) until answers flow.
    let end = Instant::now() + PATIENCE * 3;
    while answered.load(Ordering::SeqCst) < 60 {
        assert!(
            Instant::now() < end,
            "no load reached the server; stderr:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    signalled.store(true, Ordering::SeqCst);
    server.signal(libc::SIGTERM);
    for c in clients {
        c.join().expect("client thread");
    }
    let status = server.wait_exit(PATIENCE * 3);
    assert_eq!(
        status.code(),
        Some(0),
        "exit after SIGTERM; stderr:\n{}",
        server.log()
    );
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "requests started before SIGTERM failed under --model {model}:\n{}\nstderr:\n{}",
        failures.join("\n"),
        server.log()
    );
}

#[test]
fn iterative_drains_under_load() {
    sigterm_under_load("iterative");
}

#[test]
fn threaded_drains_under_load() {
    sigterm_under_load("threaded");
}

#[test]
fn prethreaded_drains_under_load() {
    sigterm_under_load("prethreaded");
}

#[test]
fn poll_drains_under_load() {
    sigterm_under_load("poll");
}

#[test]
fn epoll_drains_under_load() {
    sigterm_under_load("epoll");
}

#[test]
fn io_uring_drains_under_load() {
    sigterm_under_load("io_uring");
}

#[test]
fn models_not_built_yet_are_a_clear_configuration_error() {
    for model in ["forking", "preforked"] {
        let (status, stderr) =
            support::run_to_exit(&["--model", model, "--listen", "127.0.0.1:0"], PATIENCE);
        assert_eq!(status.code(), Some(2), "{model}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains("not built yet") && stderr.contains(model),
            "{stderr}"
        );
    }
}
