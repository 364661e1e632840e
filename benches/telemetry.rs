//! Cost of the per-request telemetry calls, in ns per operation. Not a
//! test: run `cargo bench --bench telemetry` and read the numbers. Each
//! tracing mode runs in a child process, since the tracer is global.
//!
//! Modes: `off` (no endpoint), `unsampled` (endpoint set, sampler
//! always_off), `sampled` (parent-based always_on; the endpoint is a closed
//! port, so the gate drops what the queue cannot hold: this measures
//! creation and hand-off, not export).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use prometheus::core::Collector as _;

use glasshouse::telemetry::prometheus::ShardCollector;
use glasshouse::telemetry::{
    logging, render_prometheus, Metrics, ProcessState, RequestSpan, RequestSpanInfo, Telemetry,
    TelemetryConfig,
};

const N: u32 = 200_000;

fn info(traceparent: Option<&str>) -> RequestSpanInfo<'_> {
    RequestSpanInfo {
        method: "GET",
        route: "/api/stats",
        path: "/api/stats",
        version: "1.1",
        peer: "127.0.0.1:40000".parse().expect("addr"),
        local: "127.0.0.1:8080".parse().expect("addr"),
        user_agent: Some("k6/2.3"),
        traceparent,
        tracestate: None,
        draining: false,
    }
}

fn measure(label: &str, mut f: impl FnMut()) {
    for _ in 0..N / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..N {
        f();
    }
    let ns = t.elapsed().as_nanos() as f64 / f64::from(N);
    println!("{label:<58} {ns:>8.1} ns/op");
}

/// `/metrics` over a realistic label set: 2 workers, 10 routes x 3
/// statuses, every series on both shards (so merging has work to do).
/// `/proc` is not read: that cost is the kernel's, not the renderer's.
fn measure_render() {
    let m = Metrics::new(2);
    let routes = [
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/stats",
        "/api/echo",
        "/api/slow",
        "/ws/echo",
        "/ws/stats",
        "/{file}",
    ];
    for w in &m.workers {
        for route in routes {
            for status in [200, 304, 404] {
                w.request_started();
                w.request_finished("GET", route, status, 0.000_4);
            }
        }
    }
    let extra = ProcessState::default();
    let mut len = 0;
    let t = Instant::now();
    let n = 2_000;
    for _ in 0..n {
        len = black_box(render_prometheus(black_box(&m), &extra)).len();
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!(
        "{:<58} {us:>8.1} µs/op ({len} bytes)",
        "render_prometheus, 30 series x 2 shards"
    );
    // Of which: reading the shards into metric families (the rest is the
    // text encoder).
    let t = Instant::now();
    for _ in 0..n {
        black_box(ShardCollector::new(black_box(&m), &extra).collect());
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!(
        "{:<58} {us:>8.1} µs/op",
        "  of which ShardCollector::collect"
    );
}

/// A request span with the attributes `RequestSpan::start` and `finish`
/// set, through `tracing`. Fields are recorded whether or not the sampler
/// keeps the span: the bridge cannot skip them.
fn tracing_request_span(info: &RequestSpanInfo<'_>) {
    let span = tracing::info_span!(
        target: "glasshouse::bench",
        "request",
        otel.name = "GET /api/stats",
        otel.kind = "server",
        http.request.method = info.method,
        http.route = info.route,
        url.path = info.path,
        url.scheme = "http",
        network.peer.address = %info.peer.ip(),
        network.peer.port = info.peer.port(),
        server.address = %info.local.ip(),
        server.port = info.local.port(),
        network.protocol.version = info.version,
        user_agent.original = info.user_agent,
        http.response.status_code = tracing::field::Empty,
    );
    span.record("http.response.status_code", 200);
}

fn run(mode: &str) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let mut vars: HashMap<&str, String> = HashMap::new();
    if mode != "off" {
        vars.insert(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("http://{closed}/v1/traces"),
        );
        vars.insert("OTEL_EXPORTER_OTLP_TIMEOUT", "100".into());
    }
    if mode == "unsampled" {
        vars.insert("OTEL_TRACES_SAMPLER", "always_off".into());
    }
    // The subscriber main installs, with log lines at warn: the
    // tracing-opentelemetry layer sees info spans whatever the log level.
    let _reload = logging::init(true, "warn").expect("subscriber");
    let cfg = TelemetryConfig::from_lookup(|k| vars.get(k).cloned()).expect("config");
    let telemetry = Telemetry::init(&cfg).expect("init");
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let plain = info(None);
    let child = info(Some(tp));
    measure(&format!("[{mode}] RequestSpan start+finish"), || {
        RequestSpan::start(black_box(&plain)).finish(200, None)
    });
    measure(
        &format!("[{mode}] RequestSpan start+finish, with traceparent"),
        || RequestSpan::start(black_box(&child)).finish(200, None),
    );
    // The same span written with `tracing` and carried by the
    // tracing-opentelemetry layer (as the lifecycle spans are): what the
    // request path would cost through the bridge.
    measure(
        &format!("[{mode}] tracing span (tracing-opentelemetry) start+finish"),
        || tracing_request_span(black_box(&plain)),
    );
    let bridged = tracing::info_span!(target: "glasshouse::bench", "request");
    measure(&format!("[{mode}] tracing span enter+exit"), || {
        let _g = black_box(&bridged).enter();
    });
    drop(bridged);
    let span = RequestSpan::start(&plain);
    measure(&format!("[{mode}] enter() guard"), || {
        let _g = black_box(&span).enter();
    });
    measure(&format!("[{mode}] traceresponse()"), || {
        black_box(black_box(&span).traceresponse());
    });
    span.finish(200, None);
    if mode == "off" {
        let m = Metrics::new(1);
        let w = m.worker(0);
        measure("WorkerMetrics request_started+request_finished", || {
            w.request_started();
            w.request_finished(black_box("GET"), "/api/stats", 200, black_box(0.000_3));
        });
        measure_render();
        measure("traceparent parse", || {
            black_box(glasshouse::telemetry::propagation::parse_traceparent(
                black_box(tp),
            ));
        });
    }
    telemetry.shutdown(std::time::Duration::from_millis(200));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(mode) = args
        .iter()
        .skip(1)
        .find(|a| ["off", "unsampled", "sampled"].contains(&a.as_str()))
    {
        run(mode);
        return;
    }
    let exe = std::env::current_exe().expect("exe");
    for mode in ["off", "unsampled", "sampled"] {
        let status = std::process::Command::new(&exe)
            .arg(mode)
            .status()
            .expect("child");
        assert!(status.success(), "{mode} failed");
    }
}
