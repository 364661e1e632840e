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
