//! Keeping the OTLP export harmless when the collector is down, slow or
//! refusing: a gate in front of each batch processor bounds what waits for
//! export (what does not fit is dropped at once, never queued, never
//! blocking a worker), wrappers around the exporters count what was lost,
//! and one warning per signal and interval says so. Also the metrics
//! exporter, which sends the SDK's observable instruments together with the
//! duration histogram read straight from the shards.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_http::{HttpClient, Request};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue as ProtoKeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, AggregationTemporality, Histogram, HistogramDataPoint, Metric, ScopeMetrics,
};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter, LogProcessor, SdkLogRecord};
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource;
use prost::Message as _;

use super::catalogue::REQUEST_DURATION;
use super::metrics::{Metrics, DURATION_BUCKETS};

/// A telemetry signal, the `signal` label of the dropped counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    /// Every signal, in label order.
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Items lost per signal since start (`glasshouse_telemetry_dropped_total`).
static DROPPED: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
/// Dropped count already reported in a warning, per signal.
static WARNED: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
/// Time of the last warning per signal, ms since [`epoch`].
static LAST_WARNING_MS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// Shortest time between two warnings about one signal.
pub const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Items of `signal` dropped since start.
pub fn dropped(signal: Signal) -> u64 {
    DROPPED[signal.index()].load(Relaxed)
}

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Counts `n` lost items and warns at most once per [`WARNING_INTERVAL`]
/// per signal, with the count since the previous warning.
pub(crate) fn record_dropped(signal: Signal, n: u64, reason: &dyn fmt::Display) {
    if n == 0 {
        return;
    }
    let i = signal.index();
    let total = DROPPED[i].fetch_add(n, Relaxed) + n;
    let now = epoch().elapsed().as_millis() as u64 + 1;
    let last = LAST_WARNING_MS[i].load(Relaxed);
    let due = last == 0 || now.saturating_sub(last) >= WARNING_INTERVAL.as_millis() as u64;
    if due
        && LAST_WARNING_MS[i]
            .compare_exchange(last, now, Relaxed, Relaxed)
            .is_ok()
    {
        let since = total - WARNED[i].swap(total, Relaxed);
        // Drops are often noticed on a worker inside a request's span (the
        // gate refuses that request's span or log record): the warning is
        // about the exporter, not that request, so it carries no trace id.
        outside_requests(|| {
            tracing::warn!(
                target: "glasshouse::telemetry",
                signal = signal.as_str(),
                dropped = since,
                dropped_total = total,
                "OTLP export failing, telemetry dropped: {reason}"
            )
        });
    }
}

/// Runs `f` with no span current (log lines written in it carry no trace
/// or span id), then restores the caller's context.
fn outside_requests<R>(f: impl FnOnce() -> R) -> R {
    let _detached = opentelemetry::Context::new().attach();
    f()
}

/// Items handed to a batch processor and not yet through its exporter.
#[derive(Debug, Default)]
pub(crate) struct Pending(AtomicUsize);

impl Pending {
    /// Takes a place if fewer than `cap` are pending.
    fn try_take(&self, cap: usize) -> bool {
        self.0
            .fetch_update(Relaxed, Relaxed, |p| (p < cap).then_some(p + 1))
            .is_ok()
    }

    fn release(&self, n: usize) {
        let _ = self
            .0
            .fetch_update(Relaxed, Relaxed, |p| Some(p.saturating_sub(n)));
    }
}

/// A processor that admits at most `cap` items waiting for export into the
/// inner (batch) processor; the rest are counted and dropped. One type for
/// spans and log records (see `pipeline.rs`).
#[derive(Debug)]
pub(crate) struct Gated<P> {
    pub inner: P,
    pub pending: Arc<Pending>,
    pub cap: usize,
}

impl<P: SpanProcessor> SpanProcessor for Gated<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.pending.try_take(self.cap) {
            self.inner.on_end(span);
        } else {
            record_dropped(Signal::Traces, 1, &"export queue full");
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        SpanProcessor::force_flush(&self.inner)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        SpanProcessor::shutdown_with_timeout(&self.inner, timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        SpanProcessor::set_resource(&mut self.inner, resource);
    }
}

impl<P: LogProcessor> LogProcessor for Gated<P> {
    fn emit(&self, data: &mut SdkLogRecord, scope: &InstrumentationScope) {
        if self.pending.try_take(self.cap) {
            self.inner.emit(data, scope);
        } else {
            record_dropped(Signal::Logs, 1, &"export queue full");
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        LogProcessor::force_flush(&self.inner)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        LogProcessor::shutdown_with_timeout(&self.inner, timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        LogProcessor::set_resource(&mut self.inner, resource);
    }
}

/// Counts the items of failed exports and releases their gate places;
/// wraps the span and the log exporter alike.
#[derive(Debug)]
pub(crate) struct Counting<E> {
    pub inner: E,
    pub pending: Arc<Pending>,
}

impl<E> Counting<E> {
    fn settle(&self, signal: Signal, n: usize, result: &OTelSdkResult) {
        self.pending.release(n);
        if let Err(e) = result {
            record_dropped(signal, n as u64, e);
        }
    }
}

impl<E: SpanExporter> SpanExporter for Counting<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        let result = self.inner.export(batch).await;
        self.settle(Signal::Traces, n, &result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        SpanExporter::shutdown_with_timeout(&self.inner, timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        SpanExporter::force_flush(&self.inner)
    }

    fn set_resource(&mut self, resource: &Resource) {
        SpanExporter::set_resource(&mut self.inner, resource);
    }
}

impl<E: LogExporter> LogExporter for Counting<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let n = batch.iter().count();
        let result = self.inner.export(batch).await;
        self.settle(Signal::Logs, n, &result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        LogExporter::shutdown_with_timeout(&self.inner, timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        LogExporter::set_resource(&mut self.inner, resource);
    }
}

/// Sends metrics over OTLP/HTTP protobuf: what the SDK collected from the
/// observable instruments, plus `http.server.request.duration` built from
/// the shards' histograms (the SDK has no observable histogram, and
/// recording each request into its shared aggregator would make the
/// workers contend). Cumulative temporality, like Prometheus.
pub(crate) struct ShardMetricExporter {
    pub client: Arc<dyn HttpClient>,
    pub endpoint: http::Uri,
    pub headers: Vec<(String, String)>,
    pub metrics: Arc<Metrics>,
    /// Set once shut down: later exports are refused.
    pub shut_down: AtomicBool,
}

impl fmt::Debug for ShardMetricExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardMetricExporter")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn string_kv(key: &str, value: &str) -> ProtoKeyValue {
    ProtoKeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

/// The duration histogram of the shards as an OTLP metric.
pub(crate) fn duration_histogram(metrics: &Metrics, now: SystemTime) -> Metric {
    let start = nanos(metrics.started_at);
    let time = nanos(now);
    let data_points = metrics
        .merged_series()
        .into_iter()
        .map(|((method, route, status), s)| HistogramDataPoint {
            attributes: [
                Some(string_kv("http.request.method", method)),
                Some(ProtoKeyValue {
                    key: "http.response.status_code".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::IntValue(i64::from(status))),
                    }),
                    ..Default::default()
                }),
                // Semantic conventions: no `http.route` when there is none
                // (protocol refusals are recorded with an empty route). On
                // `/metrics` the empty label is the same as no label.
                (!route.is_empty()).then(|| string_kv("http.route", route)),
            ]
            .into_iter()
            .flatten()
            .collect(),
            start_time_unix_nano: start,
            time_unix_nano: time,
            count: s.count,
            sum: Some(s.sum),
            bucket_counts: s.buckets.to_vec(),
            explicit_bounds: DURATION_BUCKETS.to_vec(),
            ..Default::default()
        })
        .collect();
    Metric {
        name: REQUEST_DURATION.name.into(),
        description: REQUEST_DURATION.description.into(),
        unit: REQUEST_DURATION.unit.into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Default::default()
    }
}

impl ShardMetricExporter {
    fn body(&self, rm: &ResourceMetrics) -> Vec<u8> {
        let mut req = ExportMetricsServiceRequest::from(rm);
        let histogram = duration_histogram(&self.metrics, SystemTime::now());
        if let Some(r) = req.resource_metrics.first_mut() {
            match r.scope_metrics.first_mut() {
                Some(s) => s.metrics.push(histogram),
                None => r.scope_metrics.push(ScopeMetrics {
                    scope: Some(super::proto_scope()),
                    metrics: vec![histogram],
                    schema_url: String::new(),
                }),
            }
        }
        req.encode_to_vec()
    }

    fn send(&self, body: Vec<u8>) -> Result<(), String> {
        let mut req = Request::post(self.endpoint.clone())
            .header("content-type", "application/x-protobuf")
            .body(body.into())
            .map_err(|e| e.to_string())?;
        for (k, v) in &self.headers {
            if let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(v),
            ) {
                req.headers_mut().insert(k, v);
            }
        }
        let client = Arc::clone(&self.client);
        let response = futures_block_on(client.send_bytes(req)).map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("collector answered {}", response.status()))
        }
    }
}

/// Runs a future that never waits on a runtime (our HTTP client blocks the
/// calling thread) to completion.
fn futures_block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context as TaskContext, Poll, Wake, Waker};
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = TaskContext::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

impl PushMetricExporter for ShardMetricExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        if self.shut_down.load(Relaxed) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let streams = metrics
            .scope_metrics()
            .map(|s| s.metrics().count() as u64)
            .sum::<u64>()
            + 1;
        let body = self.body(metrics);
        match self.send(body) {
            Ok(()) => Ok(()),
            Err(e) => {
                record_dropped(Signal::Metrics, streams, &e);
                Err(OTelSdkError::InternalFailure(e))
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.shut_down.store(true, Relaxed);
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_warnings_carry_no_request_trace_id() {
        use opentelemetry::trace::{
            SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
        };
        use opentelemetry::Context;

        use crate::telemetry::logging::current_ids;

        let sc = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("trace id"),
            SpanId::from_hex("00f067aa0ba902b7").expect("span id"),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        // As on a worker while a request's span is entered.
        let _request = Context::new().with_remote_span_context(sc).attach();
        assert!(current_ids().is_some());
        assert_eq!(outside_requests(current_ids), None);
        // The request's context is back afterwards.
        assert_eq!(
            current_ids().map(|(t, _)| t).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }

    #[test]
    fn the_gate_bounds_pending_items() {
        let p = Pending::default();
        assert!(p.try_take(2));
        assert!(p.try_take(2));
        assert!(!p.try_take(2));
        p.release(5);
        assert!(p.try_take(2));
    }

    #[test]
    fn drops_are_counted_and_warned_sparingly() {
        let before = dropped(Signal::Logs);
        record_dropped(Signal::Logs, 3, &"test");
        record_dropped(Signal::Logs, 2, &"test");
        assert_eq!(dropped(Signal::Logs) - before, 5);
        // The second call fell inside the interval: nothing was warned
        // about it yet.
        assert!(WARNED[Signal::Logs.index()].load(Relaxed) < dropped(Signal::Logs));
    }

    #[test]
    fn histogram_points_carry_contract_labels() {
        let m = Metrics::new(1);
        m.workers[0].request_started();
        m.workers[0].request_finished("GET", "/healthz", 200, 0.0002);
        let h = duration_histogram(&m, SystemTime::now());
        assert_eq!(h.name, "http.server.request.duration");
        let Some(metric::Data::Histogram(h)) = h.data else {
            panic!("not a histogram")
        };
        let p = &h.data_points[0];
        assert_eq!(p.count, 1);
        assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
        let keys: Vec<&str> = p.attributes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "http.request.method",
                "http.response.status_code",
                "http.route"
            ]
        );
    }

    #[test]
    fn refusals_have_no_http_route_attribute() {
        let m = Metrics::new(1);
        m.workers[0].request_started();
        m.workers[0].request_finished("_OTHER", "", 400, 0.0);
        let h = duration_histogram(&m, SystemTime::now());
        let Some(metric::Data::Histogram(h)) = h.data else {
            panic!("not a histogram")
        };
        let keys: Vec<&str> = h.data_points[0]
            .attributes
            .iter()
            .map(|a| a.key.as_str())
            .collect();
        assert_eq!(keys, ["http.request.method", "http.response.status_code"]);
    }
}
