//! Log setup: JSON lines (default) or human text on stderr, with a filter
//! that SIGHUP can reload; `trace_id`/`span_id` on every line written while
//! a span is entered (`RequestSpan::enter`, or a `tracing` span); the same
//! records over OTLP once `Telemetry::init` has set up a logger provider;
//! the optional access log. The subscriber also carries the layer that makes
//! `tracing` spans OTel spans (`tracing_spans.rs`).
//!
//! The line formatter is our own (one `write` per line, no tracing-span
//! bookkeeping): it reads the trace ids from the OpenTelemetry context that
//! `enter` made current, the same place the OTLP log bridge reads them.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{filter::EnvFilter, prelude::*, reload, Layer};

/// Re-applies a log filter at run time (SIGHUP).
pub struct LogReload {
    handle: reload::Handle<EnvFilter, tracing_subscriber::Registry>,
}

impl LogReload {
    /// Replaces the filter (tracing `EnvFilter` syntax, e.g. `info,glasshouse=debug`).
    pub fn set(&self, filter: &str) -> Result<(), String> {
        let f =
            EnvFilter::try_new(filter).map_err(|e| format!("bad log filter {filter:?}: {e}"))?;
        self.handle.reload(f).map_err(|e| e.to_string())
    }
}

/// Installs the global subscriber. `json` selects JSON lines.
pub fn init(json: bool, filter: &str) -> Result<LogReload, String> {
    let f = EnvFilter::try_new(filter).map_err(|e| format!("bad log filter {filter:?}: {e}"))?;
    let (filter, handle) = reload::Layer::new(f);
    // The log filter applies to log lines (stderr, OTLP) only: the span
    // layer has its own, so `--log-level warn` keeps the lifecycle spans.
    tracing_subscriber::registry()
        .with(
            StderrLayer { json }
                .and_then(OtlpLogLayer)
                .with_filter(filter),
        )
        .with(super::tracing_spans::layer())
        .try_init()
        .map_err(|e| e.to_string())?;
    Ok(LogReload { handle })
}

type Bridge = OpenTelemetryTracingBridge<SdkLoggerProvider, SdkLogger>;

/// The OTLP log bridge, set once by `Telemetry::init`.
static OTLP_BRIDGE: OnceLock<Bridge> = OnceLock::new();

/// Starts sending log records to `provider` (first call wins).
pub(crate) fn install_otlp(provider: &SdkLoggerProvider) -> bool {
    OTLP_BRIDGE
        .set(OpenTelemetryTracingBridge::new(provider))
        .is_ok()
}

/// Forwards events to the OTLP bridge once there is one. The SDK's and the
/// exporter's own events (`opentelemetry*` targets) are kept off it, so a
/// failing export cannot feed itself.
struct OtlpLogLayer;

impl<S> Layer<S> for OtlpLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        if event.metadata().target().starts_with("opentelemetry") {
            return;
        }
        if let Some(bridge) = OTLP_BRIDGE.get() {
            bridge.on_event(event, ctx);
        }
    }
}

/// Writes each event as one line on stderr.
struct StderrLayer {
    json: bool,
}

impl<S: Subscriber> Layer<S> for StderrLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let record = Record {
            time: SystemTime::now(),
            level: *meta.level(),
            target: meta.target(),
            message: &fields.message,
            fields: &fields.fields,
            ids: current_ids(),
        };
        let mut line = if self.json {
            format_json(&record)
        } else {
            format_text(&record)
        };
        line.push('\n');
        // One write per line so that lines from several threads never mix.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// `(trace_id, span_id)` of the span current on this thread, if any.
pub fn current_ids() -> Option<(String, String)> {
    opentelemetry::Context::map_current(|cx| {
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid()
            .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
    })
}

/// A field's value, kept typed for JSON.
#[derive(Debug, Clone, PartialEq)]
enum FieldValue {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(&'static str, FieldValue)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields
                .push((field.name(), FieldValue::Str(value.to_string())));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.push((field.name(), FieldValue::I64(value)));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.push((field.name(), FieldValue::U64(value)));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.push((field.name(), FieldValue::F64(value)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.push((field.name(), FieldValue::Bool(value)));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields
                .push((field.name(), FieldValue::Str(format!("{value:?}"))));
        }
    }
}

/// One log line before formatting.
struct Record<'a> {
    time: SystemTime,
    level: Level,
    target: &'a str,
    message: &'a str,
    fields: &'a [(&'static str, FieldValue)],
    ids: Option<(String, String)>,
}

/// RFC 3339 UTC with microseconds, e.g. `2026-11-25T12:41:37.123456Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_micros()
    )
}

fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn json_value(v: &FieldValue) -> String {
    match v {
        FieldValue::Str(s) => json_str(s),
        FieldValue::I64(n) => n.to_string(),
        FieldValue::U64(n) => n.to_string(),
        FieldValue::F64(n) if n.is_finite() => n.to_string(),
        FieldValue::F64(n) => json_str(&n.to_string()),
        FieldValue::Bool(b) => b.to_string(),
    }
}

fn format_json(r: &Record<'_>) -> String {
    let mut out = String::with_capacity(160);
    let _ = write!(
        out,
        "{{\"timestamp\":\"{}\",\"level\":\"{}\",\"message\":{},\"target\":{}",
        rfc3339(r.time),
        r.level,
        json_str(r.message),
        json_str(r.target)
    );
    for (k, v) in r.fields {
        // Our own keys win over an event field of the same name.
        if matches!(
            *k,
            "timestamp" | "level" | "message" | "target" | "trace_id" | "span_id"
        ) {
            continue;
        }
        let _ = write!(out, ",{}:{}", json_str(k), json_value(v));
    }
    if let Some((t, s)) = &r.ids {
        let _ = write!(out, ",\"trace_id\":\"{t}\",\"span_id\":\"{s}\"");
    }
    out.push('}');
    out
}

fn format_text(r: &Record<'_>) -> String {
    let mut out = String::with_capacity(160);
    let _ = write!(
        out,
        "{} {:>5} {}: {}",
        rfc3339(r.time),
        r.level,
        r.target,
        r.message
    );
    for (k, v) in r.fields {
        match v {
            FieldValue::Str(s) => {
                let _ = write!(out, " {k}={s:?}");
            }
            other => {
                let _ = write!(out, " {k}={}", json_value(other));
            }
        }
    }
    if let Some((t, s)) = &r.ids {
        let _ = write!(out, " trace_id={t} span_id={s}");
    }
    out
}

static ACCESS_LOG: AtomicBool = AtomicBool::new(false);

/// Turns the per-request access log on or off (`--access-log`).
pub fn set_access_log(on: bool) {
    ACCESS_LOG.store(on, Relaxed);
}

/// Whether [`access_log`] writes anything: check it before gathering the
/// entry's fields.
#[inline]
pub fn access_log_enabled() -> bool {
    ACCESS_LOG.load(Relaxed)
}

/// One finished request, for the access log.
#[derive(Debug)]
pub struct AccessLogEntry<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub version: &'static str,
    pub status: u16,
    /// Bytes of the answer (head and body).
    pub bytes: u64,
    pub duration: Duration,
    pub peer: SocketAddr,
    /// The client: the peer, or whom a trusted proxy names.
    pub client: std::net::IpAddr,
    pub user_agent: Option<&'a str>,
}

/// Writes one `info` line with target `glasshouse::access` if the access
/// log is on. Call it inside the request span's `enter()` so that the line
/// carries the trace id.
pub fn access_log(e: &AccessLogEntry<'_>) {
    if !access_log_enabled() {
        return;
    }
    tracing::info!(
        target: "glasshouse::access",
        method = e.method,
        path = e.path,
        version = e.version,
        status = e.status,
        bytes = e.bytes,
        duration_ms = e.duration.as_secs_f64() * 1000.0,
        peer = %e.peer,
        client = %e.client,
        user_agent = e.user_agent.unwrap_or(""),
        "{} {} {}",
        e.method,
        e.path,
        e.status
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = UNIX_EPOCH + Duration::from_micros(1_764_072_000_123_456);
        assert_eq!(rfc3339(t), "2025-11-25T12:00:00.123456Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn json_lines_carry_the_required_keys() {
        let fields = vec![
            ("status", FieldValue::U64(200)),
            ("path", FieldValue::Str("/a\"b".into())),
            ("level", FieldValue::Str("shadowed".into())),
        ];
        let r = Record {
            time: UNIX_EPOCH,
            level: Level::INFO,
            target: "glasshouse::x",
            message: "hello \"you\"",
            fields: &fields,
            ids: Some((
                "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                "00f067aa0ba902b7".into(),
            )),
        };
        let line = format_json(&r);
        let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(v["timestamp"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "hello \"you\"");
        assert_eq!(v["status"], 200);
        assert_eq!(v["path"], "/a\"b");
        assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(v["span_id"], "00f067aa0ba902b7");
        let text = format_text(&r);
        assert!(text.contains(" INFO glasshouse::x: hello"), "{text}");
        assert!(text.ends_with("span_id=00f067aa0ba902b7"), "{text}");
        let plain = Record { ids: None, ..r };
        assert!(!format_json(&plain).contains("trace_id"));
    }
}
