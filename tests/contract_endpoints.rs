//! The contract's observable endpoints from the outside: `/metrics` names and
//! labels (bounded cardinality), `/api/stats` and `/api/config` shapes (as
//! documented in docs/api.md), `/readyz`, and the `healthcheck` subcommand.

mod support;

use std::collections::BTreeMap;

use support::{run_to_exit, Client, Server, PATIENCE};

/// Parses one `/metrics` answer (Prometheus text exposition) into
/// `series -> value`.
fn exposition(r: support::Response) -> BTreeMap<String, f64> {
    assert_eq!(r.status, 200, "{r:?}");
    let ct = r.header("content-type").unwrap_or("");
    assert!(
        ct.starts_with("text/plain") && ct.contains("version=0.0.4"),
        "content type {ct:?}"
    );
    let text = String::from_utf8(r.body).expect("UTF-8 exposition");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn sum_matching(m: &BTreeMap<String, f64>, prefix: &str, parts: &[&str]) -> f64 {
    m.iter()
        .filter(|(k, _)| k.starts_with(prefix) && parts.iter().all(|p| k.contains(p)))
        .map(|(_, v)| v)
        .sum()
}

#[test]
fn metrics_carry_the_contract_names() {
    let server = Server::start(&["--max-connections", "2"]);
    let mut c = Client::connect(server.addr());
    for _ in 0..3 {
        assert_eq!(c.get("/healthz").status, 200);
    }
    assert_eq!(c.get("/api/slow?ms=200").status, 200);
    assert_eq!(c.get("/no-such-page-7f3a9.txt").status, 404);
    // One rejected connection (the metrics scrape itself is the second).
    let mut second = Client::connect(server.addr());
    assert_eq!(second.get("/healthz").status, 200);
    let raw = support::send_raw(server.addr(), b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(raw.starts_with(b"HTTP/1.1 503"), "{}", support::lossy(&raw));
    drop(second);
    // Let the server see the close before scraping (bounded retry). The
    // scrape that gets in is the one read: another connection right after
    // it could find its place not yet given back.
    let mut m = BTreeMap::new();
    for _ in 0..100 {
        let raw = support::send_raw(
            server.addr(),
            b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        );
        if raw.starts_with(b"HTTP/1.1 200") {
            let (r, _) = support::parse_response(&raw, false).expect("a whole answer");
            m = exposition(r);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!m.is_empty(), "metrics never answered");
    for name in [
        "http_server_active_requests",
        "glasshouse_connections_open",
        "glasshouse_connections_accepted_total",
        "glasshouse_connections_rejected_total",
        "glasshouse_bytes_sent_total",
        "glasshouse_websocket_messages_total",
        "glasshouse_shutdown_drained_total",
        "glasshouse_shutdown_forced_total",
    ] {
        assert!(
            m.keys()
                .any(|k| k == name || k.starts_with(&format!("{name}{{"))),
            "{name} missing from /metrics"
        );
    }
    let healthz = sum_matching(
        &m,
        "http_server_request_duration_seconds_count{",
        &[
            "http_request_method=\"GET\"",
            "http_response_status_code=\"200\"",
            "http_route=\"/healthz\"",
        ],
    );
    assert!(healthz >= 4.0, "healthz count {healthz}");
    // The slow request's duration is at least what it slept.
    let slow = sum_matching(
        &m,
        "http_server_request_duration_seconds_sum{",
        &["http_route=\"/api/slow\""],
    );
    assert!(slow >= 0.2, "slow request duration sum {slow}");
    assert!(m["glasshouse_connections_rejected_total"] >= 1.0);
    assert!(m["glasshouse_bytes_sent_total"] > 0.0);
    // Unknown paths do not become label values (bounded cardinality).
    assert!(
        !m.keys().any(|k| k.contains("no-such-page-7f3a9")),
        "raw path used as a label"
    );
}

#[test]
fn stats_and_config_follow_docs_api() {
    let server = Server::start(&[]);
    let mut held: Vec<Client> = (0..3).map(|_| Client::connect(server.addr())).collect();
    for c in &mut held {
        assert_eq!(c.get("/healthz").status, 200);
    }
    let r = held[0].get("/api/stats");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/json")));
    let v = r.json();
    assert_eq!(v["state"], "serving", "{v}");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["model"], "epoll", "the default model is named: {v}");
    for key in [
        "uptime_seconds",
        "timestamp_ms",
        "connections_open",
        "websockets_open",
        "requests_total",
        "requests_in_flight",
        "bytes_sent_total",
        "connections_rejected_total",
    ] {
        assert!(v[key].is_number(), "{key} in {v}");
    }
    assert!(v["connections_open"].as_u64().unwrap() >= 3, "{v}");
    assert!(v["requests_total"].as_u64().unwrap() >= 3, "{v}");
    assert!(
        v["latency_ms"].is_object() || v["latency_ms"].is_null(),
        "{v}"
    );
    let workers = v["workers"].as_array().expect("workers array");
    assert_eq!(workers.len(), 2, "{v}");
    let per_worker: u64 = workers
        .iter()
        .map(|w| w["requests_total"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(per_worker, v["requests_total"].as_u64().unwrap(), "{v}");

    let cfg = held[1].get("/api/config").json();
    assert_eq!(cfg["version"], env!("CARGO_PKG_VERSION"));
    for key in ["grafana_url", "jaeger_url", "prometheus_url"] {
        assert!(cfg[key].is_null(), "{key} unset: {cfg}");
    }
    assert_eq!(held[2].get("/readyz").status, 200);
}

#[test]
fn api_tcp_and_the_tcp_metrics_are_absent_under_the_kernels_stack() {
    // `tests/usertcp.sh` reads it over the userland stack.
    let server = Server::start(&[]);
    let r = support::get_close(server.addr(), "/api/tcp");
    assert_eq!(r.status, 404, "{r:?}");
    let v = r.json();
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("--stack user")),
        "{v}"
    );
    let raw = support::send_raw(
        server.addr(),
        b"POST /api/tcp HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(raw.starts_with(b"HTTP/1.1 405"), "{}", support::lossy(&raw));
    // Nor are the stack's families on /metrics.
    let text = support::get_close(server.addr(), "/metrics").text();
    assert!(text.contains("glasshouse_ready"), "{text}");
    assert!(!text.contains("glasshouse_tcp_"), "{text}");
}

#[test]
fn healthcheck_subcommand() {
    let server = Server::start(&[]);
    let url = format!("http://{}/healthz", server.addr());
    let (status, err) = run_to_exit(&["healthcheck", "--url", &url], PATIENCE);
    assert_eq!(status.code(), Some(0), "{err}");
    let bad = format!("http://{}/no-such-thing", server.addr());
    let (status, _) = run_to_exit(&["healthcheck", "--url", &bad], PATIENCE);
    assert_eq!(status.code(), Some(1));
}
