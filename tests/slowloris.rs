//! Slowloris against the real server: 5,000 connections dribbling a head
//! one byte a second while an ordinary client keeps asking. The ordinary
//! client is answered every time; every dribbler is cut at the head
//! timeout (which a trickle of bytes does not extend) with a 408 or a
//! close, and counted; afterwards no connection is left open.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use support::{get_close, prom_value, Client, Server, PATIENCE};

const DRIBBLERS: u64 = 5_000;

#[test]
fn dribbled_heads_are_cut_at_the_head_timeout_while_others_are_served() {
    // Room for the dribblers on our side too (the soft limit is often 1024).
    // (as root, the hard limit too).
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    let want = DRIBBLERS + 512;
    setrlimit(Resource::RLIMIT_NOFILE, want, hard.max(want)).unwrap_or_else(|e| {
        panic!("this test needs {want} descriptors (`ulimit -Hn` is {hard}, raising it: {e})")
    });
    let server = Server::builder()
        .args(&["--header-timeout", "4", "--max-connections", "20000"])
        .fd_limit(want + 512)
        .start();

    let mut dribblers: Vec<Option<TcpStream>> = (0..DRIBBLERS)
        .map(|_| {
            let s = TcpStream::connect(server.addr()).expect("connect");
            s.set_nonblocking(true).unwrap();
            Some(s)
        })
        .collect();
    let head = b"GET / HTTP/1.1\r\nHost: a\r\n";
    let mut ordinary = Client::connect(server.addr());
    let mut answered = 0;
    let mut cut = 0u64;
    let mut refused_408 = 0u64;
    let end = Instant::now() + Duration::from_secs(60);
    let mut byte = 0;
    // One byte a second from each dribbler, until all are cut (bounded).
    while cut < DRIBBLERS {
        assert!(
            Instant::now() < end,
            "{} dribblers outlived the head timeout",
            DRIBBLERS - cut
        );
        for slot in dribblers.iter_mut() {
            let Some(s) = slot else { continue };
            let mut buf = [0u8; 512];
            let gone = match s.read(&mut buf) {
                Ok(0) => true,
                Ok(n) => {
                    if buf[..n].starts_with(b"HTTP/1.1 408") {
                        refused_408 += 1;
                    }
                    true
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => false,
                Err(_) => true,
            };
            if gone {
                *slot = None;
                cut += 1;
            } else if byte < head.len() {
                let _ = s.write(&head[byte..byte + 1]);
            }
        }
        byte += 1;
        // The ordinary client, in between: answered each time.
        for _ in 0..5 {
            let r = ordinary
                .get_with("/healthz", &[])
                .expect("the ordinary client is answered");
            assert_eq!(r.status, 200);
            answered += 1;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(answered >= 5);
    assert!(refused_408 > 0, "the dribblers were cut without a 408");
    let text = get_close(server.addr(), "/metrics").text();
    let counted = prom_value(
        &text,
        "glasshouse_limit_refusals_total{limit=\"request_timeout\"}",
    );
    assert_eq!(counted, Some(refused_408 as f64), "every 408 counted");
    drop(ordinary);
    // Nothing is left behind.
    let end = Instant::now() + PATIENCE;
    loop {
        let open = server.get("/api/stats").json()["connections_open"].as_u64();
        if open == Some(1) {
            break;
        }
        assert!(Instant::now() < end, "connections left open: {open:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
