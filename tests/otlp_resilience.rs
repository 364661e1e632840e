//! A collector that hangs or refuses must not slow the server down, grow
//! its memory or block its exit: spans are dropped and counted instead,
//! and `Telemetry::shutdown` returns by its deadline. One test per process:
//! the tracer is global.

#[path = "support/otlp_receiver.rs"]
mod otlp_receiver;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use glasshouse::telemetry::export::dropped;
use glasshouse::telemetry::{
    render_prometheus, Metrics, ProcessState, RequestSpan, RequestSpanInfo, Signal, Telemetry,
    TelemetryConfig,
};
use otlp_receiver::{Behaviour, OtlpReceiver};

fn request(i: u16) -> RequestSpanInfo<'static> {
    RequestSpanInfo {
        method: "GET",
        route: "/",
        path: "/",
        version: "1.1",
        peer: std::net::SocketAddr::from(([127, 0, 0, 1], 10_000 + i % 1000)),
        local: "127.0.0.1:8080".parse().expect("addr"),
        user_agent: None,
        traceparent: None,
        tracestate: None,
        draining: false,
    }
}

#[test]
fn a_broken_collector_costs_drops_not_time() {
    let receiver = OtlpReceiver::start();
    receiver.set_behaviour(Behaviour::Hang(Duration::from_secs(30)));
    let vars: HashMap<&str, String> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "300".into()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".into()),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "64".into()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "100".into()),
    ]
    .into_iter()
    .collect();
    let mut cfg = TelemetryConfig::from_lookup(|k| vars.get(k).cloned()).expect("config");
    let metrics = Metrics::new(1);
    cfg.metrics = Some(metrics.clone());
    let telemetry = Telemetry::init(&cfg).expect("telemetry");

    // Far more spans than the queue holds, while every export hangs.
    let t = Instant::now();
    for i in 0..5_000u16 {
        RequestSpan::start(&request(i)).finish(200, None);
    }
    let spent = t.elapsed();
    assert!(
        spent < Duration::from_secs(3),
        "recording 5000 spans took {spent:?}: something blocked"
    );
    // At most the queue's worth waits per export timeout; the rest is
    // counted as dropped.
    assert!(
        dropped(Signal::Traces) >= 4_000,
        "dropped {}",
        dropped(Signal::Traces)
    );

    // A refusing collector: failed exports are counted too.
    receiver.set_behaviour(Behaviour::Refuse(503));
    let before = dropped(Signal::Metrics);
    let deadline = Instant::now() + Duration::from_secs(5);
    while dropped(Signal::Metrics) == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        dropped(Signal::Metrics) > before,
        "refused metric exports not counted"
    );
    let text = render_prometheus(&metrics, &ProcessState::default());
    assert!(text.contains("glasshouse_telemetry_dropped_total{signal=\"traces\"}"));

    // Exit is bounded even when the collector hangs again.
    receiver.set_behaviour(Behaviour::Hang(Duration::from_secs(30)));
    for i in 0..10 {
        RequestSpan::start(&request(i)).finish(200, None);
    }
    let t = Instant::now();
    telemetry.shutdown(Duration::from_millis(1500));
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "shutdown took {:?}",
        t.elapsed()
    );
}
