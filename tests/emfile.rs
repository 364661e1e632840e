//! Out of descriptors: with a tiny `ulimit -n`, connections beyond what the
//! process can hold are refused with a 503 (through the reserve descriptor)
//! and counted, the accept loop keeps working, and service recovers once
//! connections close.

mod support;

use std::io::Write;
use std::time::Duration;

use support::{parse_response, prom_value, send_raw, Client, Server};

#[test]
fn emfile_refuses_counts_and_recovers() {
    let server = Server::builder()
        .args(&["--workers", "1"])
        .fd_limit(64)
        .start();

    let mut held = Vec::new();
    let mut ok = 0;
    let mut refused = 0;
    for _ in 0..120 {
        let Ok(mut c) = Client::try_connect(server.addr()) else {
            refused += 1;
            continue;
        };
        // A refused connection may be closed before the request is written.
        let _ = c
            .stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
        match c.read_response_opts(false, Duration::from_secs(5)) {
            Some(r) if r.status == 200 => {
                ok += 1;
                held.push(c);
            }
            answer => {
                assert!(
                    answer.as_ref().is_none_or(|r| r.status == 503),
                    "unexpected answer: {answer:?}"
                );
                refused += 1;
            }
        }
    }
    assert!(ok > 10, "some connections are served ({ok})");
    assert!(
        refused > 0,
        "beyond the descriptor limit connections are refused"
    );

    // Free descriptors, then the server serves again and reports the refusals.
    held.clear();
    let mut metrics = None;
    for _ in 0..50 {
        let raw = send_raw(
            server.addr(),
            b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        if let Some((r, _)) = parse_response(&raw, false).filter(|(r, _)| r.status == 200) {
            metrics = Some(r);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics = metrics.expect("service recovered: /metrics answers 200");
    let rejected = prom_value(&metrics.text(), "glasshouse_connections_rejected_total")
        .expect("rejected counter exposed");
    assert!(rejected >= 1.0, "refusals counted: {rejected}");
}

/// Server CPU seconds so far (utime + stime from /proc/PID/stat).
fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // /proc counts in USER_HZ, which Linux fixes at 100 for user space.
    let hz = 100.0;
    ticks / hz
}

#[test]
fn a_thousand_clients_at_256_descriptors_are_refused_without_a_spin_and_served_after() {
    // Held connections must outlast the run of a slow machine: the test is
    // about descriptors, not the idle timeout, which would free them.
    let server = Server::builder()
        .args(&["--idle-timeout", "600"])
        .fd_limit(256)
        .start();
    // A thousand clients hold their connections open at once.
    let mut held = Vec::new();
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..1000 {
        let Ok(mut c) = Client::try_connect(server.addr()) else {
            refused += 1;
            continue;
        };
        let _ = c
            .stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
        match c.read_response_opts(false, Duration::from_secs(5)) {
            Some(r) if r.status == 200 => {
                ok += 1;
                held.push(c);
            }
            Some(r) => {
                assert_eq!(r.status, 503, "{r:?}");
                refused += 1;
            }
            None => refused += 1,
        }
    }
    assert!(ok > 100 && ok < 256, "served up to the limit ({ok})");
    assert!(refused >= 700, "the rest refused ({refused})");
    // Saturated and with more clients knocking, the server must not spin:
    // one more connect waits in the backlog while we look at its CPU.
    let knocking: Vec<_> = (0..20)
        .filter_map(|_| Client::try_connect(server.addr()).ok())
        .collect();
    let before = cpu_seconds(server.pid());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_seconds(server.pid()) - before;
    assert!(
        used < 1.0,
        "a saturated server burned {used:.2} CPU seconds in 2 s (a spin)"
    );
    drop(knocking);
    // Load falls: service is back at once.
    held.clear();
    let mut back = false;
    for _ in 0..50 {
        let raw = send_raw(
            server.addr(),
            b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
        if parse_response(&raw, false).is_some_and(|(r, _)| r.status == 200) {
            back = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(back, "service did not come back after the load fell");
    let text = support::get_close(server.addr(), "/metrics").text();
    let rejected = prom_value(&text, "glasshouse_connections_rejected_total").expect("counter");
    assert!(rejected >= 1.0, "refusals counted: {rejected}");
}
