//! The real binary with a broken collector: nothing listening at the OTLP
//! endpoint, or a collector that accepts and never answers. The server must
//! keep serving every request, count what it could not export
//! (`glasshouse_telemetry_dropped_total`), warn sparingly, and still stop
//! gracefully (exit 0) on SIGTERM because the final flush is bounded.
//!
//! No timing assertions: only generous bounds against hangs.

#[path = "support/otlp_receiver.rs"]
mod otlp_receiver;
mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use otlp_receiver::{Behaviour, OtlpReceiver};
use support::{prom_value, Client, Server};

const REQUESTS: usize = 3_000;
const CONNECTIONS: usize = 4;
/// Most warning/error lines tolerated on stderr for the whole run: the
/// server warns at most once per 10 s per signal, so a handful; a line per
/// failed export (or per request) would be hundreds.
const MAX_WARNINGS: usize = 20;
/// The final flush is bounded: a graceful exit comes within this after
/// SIGTERM, whatever the collector does.
const EXIT_WAIT: Duration = Duration::from_secs(60);

/// Runs `REQUESTS` GETs over `CONNECTIONS` keep-alive connections and
/// asserts every one answered 200.
fn load(server: &Server) {
    let addr = server.addr();
    let per = REQUESTS / CONNECTIONS;
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mut ok = 0;
                for i in 0..per {
                    let path = if i % 2 == 0 { "/api/stats" } else { "/healthz" };
                    let r = c
                        .get_with(path, &[])
                        .unwrap_or_else(|e| panic!("connection {t}, request {i}: {e}"));
                    assert_eq!(r.status, 200, "connection {t}, request {i} {path}");
                    assert!(!r.closes(), "keep-alive kept");
                    ok += 1;
                }
                ok
            })
        })
        .collect();
    let ok: usize = threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .sum();
    assert_eq!(ok, per * CONNECTIONS);
}

/// Polls `/metrics` (bounded) until `glasshouse_telemetry_dropped_total`
/// counts something for every signal in `signals`.
fn wait_for_drops(server: &Server, signals: &[&str]) -> Vec<(String, f64)> {
    let end = Instant::now() + Duration::from_secs(90);
    loop {
        let text = server.metrics_text();
        let values: Vec<(String, f64)> = signals
            .iter()
            .map(|s| {
                let key = format!("glasshouse_telemetry_dropped_total{{signal=\"{s}\"}}");
                (s.to_string(), prom_value(&text, &key).unwrap_or(0.0))
            })
            .collect();
        if values.iter().all(|(_, v)| *v > 0.0) {
            return values;
        }
        assert!(
            Instant::now() < end,
            "drops never counted: {values:?}\n{}",
            text.lines()
                .filter(|l| l.contains("dropped"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `/metrics` (bounded) until every request's span and access-log
/// record is accounted for as dropped: with a collector that never takes
/// anything, none can have been delivered.
fn wait_all_accounted(server: &Server) {
    let end = Instant::now() + Duration::from_secs(90);
    loop {
        let text = server.metrics_text();
        let v = |s: &str| {
            prom_value(
                &text,
                &format!("glasshouse_telemetry_dropped_total{{signal=\"{s}\"}}"),
            )
            .unwrap_or(0.0)
        };
        let (traces, logs) = (v("traces"), v("logs"));
        if traces >= REQUESTS as f64 && logs >= REQUESTS as f64 {
            eprintln!("all accounted: traces {traces}, logs {logs}");
            return;
        }
        assert!(
            Instant::now() < end,
            "lost spans/logs not all counted: traces {traces}, logs {logs} for {REQUESTS} requests"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn warnings(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .map(|v| v["level"] == "WARN" || v["level"] == "ERROR")
                .unwrap_or(true) // anything not a JSON line is suspicious too
        })
        .cloned()
        .collect()
}

fn check_quiet(lines: &[String]) {
    let w = warnings(lines);
    eprintln!("{} warning/error lines:\n{}", w.len(), w.join("\n"));
    assert!(
        w.len() <= MAX_WARNINGS,
        "{} warning lines for {REQUESTS} requests (spam):\n{}",
        w.len(),
        w.join("\n")
    );
    assert!(
        w.iter().any(|l| l.contains("dropped")),
        "the drops were reported at least once"
    );
    // A warning about the exporter is not part of whichever request's span
    // happened to be current when the drop was noticed.
    for l in &w {
        assert!(
            !l.contains("\"trace_id\""),
            "an exporter warning carries a request's trace id: {l}"
        );
    }
}

fn env(endpoint: &str) -> Vec<(&str, &str)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
    ]
}

#[test]
fn nothing_listening_at_the_endpoint() {
    // A port that was free a moment ago and has nothing listening now.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    let server = Server::builder()
        .args(&["--workers", "2", "--access-log"])
        .envs(&env(&endpoint))
        .start();
    load(&server);
    let drops = wait_for_drops(&server, &["traces", "metrics", "logs"]);
    eprintln!("dropped: {drops:?}");
    wait_all_accounted(&server);
    // Still serving after the drops were counted.
    let mut c = Client::connect(server.addr());
    assert_eq!(c.get("/healthz").status, 200);
    drop(c);
    let lines = server.stop(EXIT_WAIT);
    check_quiet(&lines);
}

#[test]
fn a_collector_that_never_answers() {
    let receiver = OtlpReceiver::start();
    receiver.set_behaviour(Behaviour::Hang(Duration::from_secs(300)));
    let endpoint = receiver.endpoint();
    // Default export timeout (10 s): spans and log records pile up behind a
    // hanging export and the gate drops what does not fit.
    let server = Server::builder()
        .args(&["--workers", "2", "--access-log"])
        .envs(&env(&endpoint))
        .start();
    load(&server);
    let drops = wait_for_drops(&server, &["traces", "logs"]);
    eprintln!("dropped: {drops:?}");
    let mut c = Client::connect(server.addr());
    assert_eq!(c.get("/healthz").status, 200);
    drop(c);
    let lines = server.stop(EXIT_WAIT);
    check_quiet(&lines);
    assert!(
        receiver.with(|r| !r.requests.is_empty()),
        "the server did try to export"
    );
}

#[test]
fn a_collector_that_refuses_every_export() {
    let receiver = OtlpReceiver::start();
    receiver.set_behaviour(Behaviour::Refuse(503));
    let endpoint = receiver.endpoint();
    let server = Server::builder()
        .args(&["--workers", "2", "--access-log"])
        .envs(&env(&endpoint))
        .start();
    load(&server);
    let drops = wait_for_drops(&server, &["traces", "metrics", "logs"]);
    eprintln!("dropped: {drops:?}");
    wait_all_accounted(&server);
    let lines = server.stop(EXIT_WAIT);
    check_quiet(&lines);
    receiver.with(|r| {
        assert!(r.traces.is_empty() && r.logs.is_empty(), "nothing kept");
        assert!(
            r.requests.iter().any(|l| l == "POST /v1/traces"),
            "exports were tried: {:?}",
            r.requests.iter().take(5).collect::<Vec<_>>()
        );
    });
}
