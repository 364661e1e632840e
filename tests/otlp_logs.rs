//! The stderr log lines as an operator sees them: the test runs itself as
//! a child process with logging set up, and reads the child's stderr.
//! Checks the JSON keys, `trace_id`/`span_id` inside an entered request
//! span only, the text format, and that `LogReload::set` (SIGHUP) changes
//! the level at run time.

#[path = "support/otlp_receiver.rs"]
mod otlp_receiver;

use std::process::Command;

use glasshouse::telemetry::{logging, RequestSpan, RequestSpanInfo, Telemetry, TelemetryConfig};

const CHILD: &str = "GLASSHOUSE_LOG_TEST_CHILD";

/// Runs in the child only: sets up logging in the asked format and logs.
#[test]
fn child_entry() {
    let Ok(format) = std::env::var(CHILD) else {
        return;
    };
    let receiver = otlp_receiver::OtlpReceiver::start();
    let endpoint = format!("{}/v1/traces", receiver.endpoint());
    let cfg = TelemetryConfig::from_lookup(|k| {
        (k == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").then(|| endpoint.clone())
    })
    .expect("config");
    let reload = logging::init(format == "json", "info").expect("logging");
    let telemetry = Telemetry::init(&cfg).expect("telemetry");
    tracing::info!(port = 8080u16, "listening on http://127.0.0.1:8080");
    tracing::debug!("hidden debug line");
    let span = RequestSpan::start(&RequestSpanInfo {
        method: "GET",
        route: "/",
        path: "/",
        version: "1.1",
        peer: "127.0.0.1:1".parse().expect("addr"),
        local: "127.0.0.1:2".parse().expect("addr"),
        user_agent: None,
        traceparent: None,
        tracestate: None,
        draining: false,
    });
    let traceresponse = span.traceresponse().expect("recorded");
    {
        let _g = span.enter();
        tracing::warn!(traceresponse = %traceresponse, "inside a request");
    }
    span.finish(200, None);
    reload.set("debug").expect("reload");
    tracing::debug!("shown debug line");
    assert!(reload.set("not a [filter").is_err());
    telemetry.shutdown(std::time::Duration::from_secs(2));
}

fn child_stderr(format: &str) -> Vec<String> {
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD, format)
        .output()
        .expect("run the child");
    assert!(out.status.success(), "child failed: {out:?}");
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn json_lines_have_the_contract_keys_and_trace_ids_inside_requests() {
    let lines = child_stderr("json");
    let records: Vec<serde_json::Value> = lines
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let find = |msg: &str| {
        records
            .iter()
            .find(|r| r["message"].as_str().is_some_and(|m| m.contains(msg)))
            .unwrap_or_else(|| panic!("no line {msg:?} in {lines:#?}"))
    };
    let listening = find("listening on http://");
    assert_eq!(listening["level"], "INFO");
    assert_eq!(listening["port"], 8080);
    assert!(listening["timestamp"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z') && t.len() == 27));
    assert!(listening.get("trace_id").is_none());

    let inside = find("inside a request");
    assert_eq!(inside["level"], "WARN");
    let tr = inside["traceresponse"]
        .as_str()
        .expect("traceresponse field");
    assert_eq!(inside["trace_id"].as_str(), Some(&tr[3..35]));
    assert_eq!(inside["span_id"].as_str(), Some(&tr[36..52]));

    assert!(records.iter().all(|r| r["message"] != "hidden debug line"));
    find("shown debug line");
}

#[test]
fn text_lines_are_human() {
    let lines = child_stderr("text");
    let l = lines
        .iter()
        .find(|l| l.contains("inside a request"))
        .expect("line");
    assert!(l.contains(" WARN "), "{l}");
    assert!(l.contains(" trace_id=") && l.contains(" span_id="), "{l}");
    assert!(!lines.iter().any(|l| l.starts_with('{')));
}
