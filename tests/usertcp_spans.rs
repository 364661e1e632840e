//! Request spans over glasshouse's own TCP/IP carry the TCP under them: a
//! `tcp` event with the connection's state, RTT, RTO, congestion window,
//! and what it retransmitted and received out of order during the
//! request. Runs under `GLASSHOUSE_TEST_STACK=user` (`make test-usertcp`,
//! root): the OTLP receiver is started inside the server's namespace, so
//! the server exports to it over the kernel's loopback there.

#[path = "support/otlp_receiver.rs"]
mod otlp_receiver;
mod support;

use std::time::Duration;

use otlp_receiver::{attr, OtlpReceiver};
use support::{Client, Netns, Server};

const EXPORT_WAIT: Duration = Duration::from_secs(20);

/// An OTLP receiver and a server exporting to it, in a namespace of their
/// own; `None` (with a note naming `test`) off the user stack.
fn traced_server(test: &str) -> Option<(OtlpReceiver, Server)> {
    if !support::test_user_stack() {
        eprintln!("{test}: runs with GLASSHOUSE_TEST_STACK=user (make test-usertcp)");
        return None;
    }
    let ns = Netns::create();
    ns.enter();
    let receiver = OtlpReceiver::start();
    let endpoint = receiver.endpoint();
    let server = Server::builder()
        .netns(ns)
        .envs(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ])
        .start();
    Some((receiver, server))
}

#[test]
fn request_spans_over_the_user_stack_carry_a_tcp_event() {
    let Some((receiver, server)) =
        traced_server("request_spans_over_the_user_stack_carry_a_tcp_event")
    else {
        return;
    };
    // Enough bytes per answer for the window to grow and RTT samples to
    // be taken.
    server.add_file("big.bin", &vec![7u8; 300_000]);
    let mut client = Client::connect(server.addr());
    for _ in 0..3 {
        let r = client.get("/big.bin");
        assert_eq!((r.status, r.body.len()), (200, 300_000));
    }
    let event = receiver
        .wait_for(EXPORT_WAIT, |r| {
            r.spans()
                .into_iter()
                .filter(|s| s.name.starts_with("GET"))
                .flat_map(|s| s.events)
                .find(|e| e.name == "tcp" && attr(&e.attributes, "tcp.srtt_ms").is_some())
        })
        .unwrap_or_else(|| {
            panic!(
                "no request span with a tcp event; spans: {:?}",
                receiver.with(|r| r
                    .spans()
                    .iter()
                    .map(|s| (s.name.clone(), s.events.len()))
                    .collect::<Vec<_>>())
            )
        });
    let num = |k: &str| -> i64 {
        attr(&event.attributes, k)
            .unwrap_or_else(|| panic!("{k} missing from {:?}", event.attributes))
            .parse()
            .unwrap_or_else(|e| panic!("{k}: {e}"))
    };
    assert_eq!(
        attr(&event.attributes, "tcp.state").as_deref(),
        Some("ESTABLISHED")
    );
    assert!(num("tcp.cwnd") >= 1460, "cwnd {}", num("tcp.cwnd"));
    assert!(
        num("tcp.rto_ms") >= 200,
        "RFC 6298's minimum is 200 ms here"
    );
    // Present and numeric (a clean loopback path has nothing to count).
    for k in [
        "tcp.retransmissions",
        "tcp.out_of_order_segments",
        "tcp.srtt_ms",
    ] {
        num(k);
    }
}

#[test]
fn a_connections_state_changes_are_events_on_its_first_request_span() {
    let Some((receiver, server)) =
        traced_server("a_connections_state_changes_are_events_on_its_first_request_span")
    else {
        return;
    };
    let mut client = Client::connect(server.addr());
    assert_eq!(client.get("/healthz").status, 200);
    assert_eq!(client.get("/readyz").status, 200);
    // (from, to) of each `tcp.state` event of the span of path `q`.
    let changes = |q: &'static str| {
        receiver.wait_for(EXPORT_WAIT, move |r| {
            r.spans()
                .into_iter()
                .find(|s| attr(&s.attributes, "url.path").as_deref() == Some(q))
                .map(|s| {
                    s.events
                        .iter()
                        .filter(|e| e.name == "tcp.state")
                        .map(|e| {
                            (
                                attr(&e.attributes, "tcp.state.from").unwrap_or_default(),
                                attr(&e.attributes, "tcp.state.to").unwrap_or_default(),
                            )
                        })
                        .collect::<Vec<_>>()
                })
        })
    };
    let first = changes("/healthz").expect("the first request's span");
    let want = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        first,
        vec![
            want("LISTEN", "SYN-RECEIVED"),
            want("SYN-RECEIVED", "ESTABLISHED")
        ],
        "the handshake, on the connection's first span"
    );
    let second = changes("/readyz").expect("the second request's span");
    assert_eq!(
        second,
        vec![],
        "nothing changed while the second was served"
    );
    // The same changes, counted by the state entered: read off the copy of
    // the stack's figures its driver publishes every 200 ms, so asked
    // again until that copy has them (bounded).
    let sample = |text: &str, series: &str| -> f64 {
        let line = format!("{series} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no {line:?} in /metrics"))
            .trim()
            .parse()
            .unwrap()
    };
    let count = |text: &str, state: &str| -> u64 {
        sample(
            text,
            &format!("glasshouse_tcp_transitions_total{{state=\"{state}\"}}"),
        ) as u64
    };
    let deadline = std::time::Instant::now() + EXPORT_WAIT;
    loop {
        let metrics = client.get("/metrics");
        let text = String::from_utf8_lossy(&metrics.body).into_owned();
        let seen = ["SYN-RECEIVED", "ESTABLISHED"].map(|s| count(&text, s));
        if seen.iter().all(|&n| n >= 1) {
            // The client's connection is still open: the RTO and window
            // gauges cover it (RFC 6298's 200 ms floor, at least one MSS).
            let rto = sample(&text, "glasshouse_tcp_rto_seconds{stat=\"min\"}");
            let cwnd = sample(&text, "glasshouse_tcp_cwnd_bytes{stat=\"max\"}");
            assert!(rto >= 0.2, "rto min {rto}");
            assert!(cwnd >= 1460.0, "cwnd max {cwnd}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "transitions into SYN-RECEIVED and ESTABLISHED: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
