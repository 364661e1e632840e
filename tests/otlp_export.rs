//! The telemetry API end to end against a real OTLP/HTTP receiver: a
//! request span that continues the caller's trace, a log line inside it,
//! the contract's metrics and the shutdown span, all flushed by
//! `Telemetry::shutdown`. One test per process: the tracer is global.

#[path = "support/otlp_receiver.rs"]
mod otlp_receiver;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use glasshouse::telemetry::{
    logging, Metrics, RequestSpan, RequestSpanInfo, ShutdownSpan, Telemetry, TelemetryConfig,
    WsDirection, WsSpan,
};
use otlp_receiver::{any_text, attr, hex, OtlpReceiver};

const PARENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

#[test]
fn spans_metrics_and_logs_reach_the_collector() {
    let receiver = OtlpReceiver::start();
    let vars: HashMap<&str, String> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_SERVICE_NAME", "glasshouse-test".to_string()),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=test".into(),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200".into()),
    ]
    .into_iter()
    .collect();
    let mut cfg = TelemetryConfig::from_lookup(|k| vars.get(k).cloned()).expect("config");
    let metrics = Metrics::new(2);
    cfg.metrics = Some(metrics.clone());
    let _reload = logging::init(true, "info").expect("logging");
    let telemetry = Telemetry::init(&cfg).expect("telemetry");
    assert!(telemetry.traces_enabled());
    metrics.set_ready(true);

    // A request continuing the caller's trace.
    let worker = metrics.worker(1);
    worker.connection_accepted();
    worker.request_started();
    let traceparent = format!("00-{PARENT_TRACE}-{PARENT_SPAN}-01");
    let info = RequestSpanInfo {
        method: "GET",
        route: "/api/stats",
        path: "/api/stats",
        version: "1.1",
        peer: "127.0.0.1:40000".parse().expect("addr"),
        local: "127.0.0.1:8080".parse().expect("addr"),
        user_agent: Some("k6/2.3"),
        traceparent: Some(&traceparent),
        tracestate: Some("vendor=abc"),
        draining: false,
    };
    let span = RequestSpan::start(&info);
    let traceresponse = span.traceresponse().expect("recorded span");
    assert!(
        traceresponse.starts_with(&format!("00-{PARENT_TRACE}-")) && traceresponse.ends_with("-01"),
        "{traceresponse}"
    );
    let span_id = traceresponse[36..52].to_string();
    {
        let _in = span.enter();
        tracing::info!(answer = 42, "inside the request");
    }
    tracing::info!("outside any request");
    worker.bytes_sent(1234);
    worker.request_finished("GET", "/api/stats", 200, 0.000_4);
    span.finish(200, None);

    // A refused request during a drain: an error span of its own trace.
    let mut refused = RequestSpan::start(&RequestSpanInfo {
        method: "POST",
        route: "/api/echo",
        path: "/api/echo",
        traceparent: Some("garbage"),
        tracestate: None,
        user_agent: None,
        ..info
    });
    refused.mark_draining();
    refused.finish(503, Some("draining"));

    // A WebSocket session under an upgrade request.
    let upgrade = RequestSpan::start(&RequestSpanInfo {
        route: "/ws/echo",
        path: "/ws/echo",
        traceparent: None,
        ..info
    });
    let mut ws = WsSpan::start(&upgrade, "/ws/echo");
    upgrade.finish(101, None);
    ws.message(WsDirection::Received);
    ws.message(WsDirection::Sent);
    worker.ws_message(WsDirection::Received);
    ws.finish(Some(1001));

    let shutdown = ShutdownSpan::start("SIGTERM");
    shutdown.event("listeners_closed", &[("connections_open", 1)]);
    metrics.set_ready(false);
    metrics.record_shutdown(1, 0);
    shutdown.finish(1, 1, 0);

    // Let one periodic metric export happen before the final flush.
    receiver
        .wait_for(Duration::from_secs(5), |r| {
            (!r.metrics.is_empty()).then_some(())
        })
        .expect("a periodic metric export");
    let t = Instant::now();
    telemetry.shutdown(Duration::from_secs(5));
    assert!(t.elapsed() < Duration::from_secs(5));

    receiver.with(|r| assert!(r.errors.is_empty(), "undecodable: {:?}", r.errors));

    // --- the request span
    let spans = receiver.with(|r| r.spans());
    let s = spans
        .iter()
        .find(|s| s.name == "GET /api/stats")
        .unwrap_or_else(|| {
            panic!(
                "no request span among {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(hex(&s.trace_id), PARENT_TRACE);
    assert_eq!(hex(&s.parent_span_id), PARENT_SPAN);
    assert_eq!(hex(&s.span_id), span_id);
    assert_eq!(s.kind, 2, "server kind");
    assert_eq!(s.trace_state, "vendor=abc");
    for (k, v) in [
        ("http.request.method", "GET"),
        ("url.path", "/api/stats"),
        ("url.scheme", "http"),
        ("http.route", "/api/stats"),
        ("http.response.status_code", "200"),
        ("network.peer.address", "127.0.0.1"),
        ("network.peer.port", "40000"),
        ("server.address", "127.0.0.1"),
        ("server.port", "8080"),
        ("user_agent.original", "k6/2.3"),
        ("network.protocol.version", "1.1"),
    ] {
        assert_eq!(attr(&s.attributes, k).as_deref(), Some(v), "{k}");
    }
    assert_ne!(s.status.as_ref().map_or(0, |st| st.code), 2);

    let r = spans
        .iter()
        .find(|s| s.name == "POST /api/echo")
        .expect("refused span");
    assert!(
        r.parent_span_id.is_empty(),
        "invalid traceparent: new trace"
    );
    assert_eq!(r.status.as_ref().map(|s| s.code), Some(2), "error status");
    assert_eq!(
        attr(&r.attributes, "error.type").as_deref(),
        Some("draining")
    );
    assert_eq!(
        attr(&r.attributes, "glasshouse.shutdown.draining").as_deref(),
        Some("true")
    );

    let up = spans
        .iter()
        .find(|s| s.name == "GET /ws/echo")
        .expect("upgrade");
    let w = spans
        .iter()
        .find(|s| s.name == "WebSocket /ws/echo")
        .expect("ws span");
    assert_eq!(w.parent_span_id, up.span_id);
    assert_eq!(w.kind, 1, "internal kind");
    assert_eq!(
        attr(&w.attributes, "glasshouse.websocket.messages_received").as_deref(),
        Some("1")
    );
    assert_eq!(
        attr(&w.attributes, "glasshouse.websocket.close_code").as_deref(),
        Some("1001")
    );

    let sd = spans
        .iter()
        .find(|s| s.name == "shutdown")
        .expect("shutdown span");
    for (k, v) in [
        ("glasshouse.shutdown.signal", "SIGTERM"),
        ("glasshouse.shutdown.in_flight", "1"),
        ("glasshouse.shutdown.drained", "1"),
        ("glasshouse.shutdown.forced", "0"),
    ] {
        assert_eq!(attr(&sd.attributes, k).as_deref(), Some(v), "{k}");
    }
    assert_eq!(
        sd.events.first().map(|e| e.name.as_str()),
        Some("listeners_closed")
    );

    // --- resource
    let res = receiver.with(|r| r.trace_resource());
    assert_eq!(
        attr(&res, "service.name").as_deref(),
        Some("glasshouse-test")
    );
    assert_eq!(
        attr(&res, "service.version").as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        attr(&res, "deployment.environment.name").as_deref(),
        Some("test")
    );
    assert!(attr(&res, "service.instance.id").is_some());
    assert!(attr(&res, "host.name").is_some());

    // --- logs
    let logs = receiver.with(|r| r.log_records());
    let inside = logs
        .iter()
        .find(|l| l.body.as_ref().and_then(any_text).as_deref() == Some("inside the request"))
        .expect("log inside the request");
    assert_eq!(hex(&inside.trace_id), PARENT_TRACE);
    assert_eq!(hex(&inside.span_id), span_id);
    assert_eq!(attr(&inside.attributes, "answer").as_deref(), Some("42"));
    let outside = logs
        .iter()
        .find(|l| l.body.as_ref().and_then(any_text).as_deref() == Some("outside any request"))
        .expect("log outside");
    assert!(outside.trace_id.is_empty());

    // --- metrics: the last export holds the final cumulative values.
    let last = receiver
        .with(|r| r.metrics.last().cloned())
        .expect("metrics");
    let metrics_seen: HashMap<String, _> = last
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| (m.name.clone(), m.clone()))
        .collect();
    for name in [
        "http.server.request.duration",
        "http.server.active_requests",
        "glasshouse.connections.open",
        "glasshouse.connections.accepted",
        "glasshouse.connections.rejected",
        "glasshouse.bytes_sent",
        "glasshouse.websocket.messages",
        "glasshouse.websockets.open",
        "glasshouse.worker.requests",
        "glasshouse.shutdown.drained",
        "glasshouse.shutdown.forced",
        "glasshouse.ready",
        "glasshouse.telemetry.dropped",
    ] {
        assert!(metrics_seen.contains_key(name), "missing metric {name}");
    }
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    let Some(Data::Histogram(h)) = &metrics_seen["http.server.request.duration"].data else {
        panic!("duration is not a histogram");
    };
    assert_eq!(metrics_seen["http.server.request.duration"].unit, "s");
    let p = h
        .data_points
        .iter()
        .find(|p| attr(&p.attributes, "http.route").as_deref() == Some("/api/stats"))
        .expect("point for /api/stats");
    assert_eq!(p.count, 1);
    assert_eq!(
        attr(&p.attributes, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        attr(&p.attributes, "http.response.status_code").as_deref(),
        Some("200")
    );
    let Some(Data::Sum(bytes)) = &metrics_seen["glasshouse.bytes_sent"].data else {
        panic!("bytes_sent is not a sum");
    };
    assert!(bytes.is_monotonic);
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
    assert_eq!(
        bytes.data_points.first().and_then(|p| p.value),
        Some(Value::AsInt(1234))
    );
    let Some(Data::Sum(workers)) = &metrics_seen["glasshouse.worker.requests"].data else {
        panic!("worker.requests is not a sum");
    };
    assert_eq!(workers.data_points.len(), 2);
}
