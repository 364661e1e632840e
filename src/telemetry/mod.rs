//! Telemetry: logs, metrics and traces. This is the only module that touches
//! the OpenTelemetry SDK and the `tracing-subscriber` setup; the rest of the
//! server records through the small API re-exported here.
//!
//! Code map: `config` (the `OTEL_*` variables, resource, sampler),
//! `catalogue` (every metric's names, kind, unit and description),
//! `metrics` (per-worker shards), `prometheus` and `stats` (reading them for
//! `/metrics` and `/api/stats`), `trace` and `propagation` (spans, W3C trace
//! context), `tracing_spans` (`tracing` spans as OTel spans), `logging` (stderr lines, OTLP logs, access log), `pipeline`
//! (the trace and log pipelines, set up once for both), `export` (the
//! gate and counters that keep exports harmless, the metrics exporter) and
//! `http_client` (the blocking client they use). This file owns the [`Telemetry`] guard: setup and the ordered
//! flush at exit.
//!
//! Architecture invariant: a worker thread never waits on the network for
//! telemetry. Recording is atomics, a per-worker lock, or a push into a
//! bounded queue; exports run on the SDK's own threads.

pub mod catalogue;
mod client;
pub mod config;
pub mod export;
pub mod http_client;
pub mod logging;
pub mod metrics;
pub mod observer;
mod pipeline;
pub mod prometheus;
pub mod propagation;
pub mod stats;
pub mod tcp;
pub mod trace;
mod tracing_spans;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

pub use client::{client_of, is_trusted_proxy, set_trusted_proxies};
pub use config::{SamplerConfig, TelemetryConfig};
pub use export::Signal;
pub use logging::{access_log, AccessLogEntry, LogReload};
pub use metrics::{Metrics, ProcessMetrics, WorkerMetrics, WsDirection};
pub use observer::HttpObserver;
pub use prometheus::{render_prometheus, ProcessState, CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE};
pub use stats::stats_json;
pub use trace::{RequestSpan, RequestSpanInfo, ShutdownSpan, SpanGuard, WsSpan};

use crate::engine::Limit;
use export::ShardMetricExporter;
use http_client::BlockingHttpClient;

/// The instrumentation scope of everything glasshouse records.
pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("glasshouse")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// The same scope as an OTLP message.
pub(crate) fn proto_scope() -> opentelemetry_proto::tonic::common::v1::InstrumentationScope {
    opentelemetry_proto::tonic::common::v1::InstrumentationScope {
        name: "glasshouse".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}

/// The telemetry pipelines. Keep it in `main` for the life of the process
/// and call [`Telemetry::shutdown`] last, after the drain.
#[derive(Debug)]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    logger: Option<SdkLoggerProvider>,
    meter: Option<SdkMeterProvider>,
}

fn build_error(signal: &str, e: impl std::fmt::Display) -> String {
    format!("cannot set up the OTLP {signal} exporter: {e}")
}

impl Telemetry {
    /// Sets up the providers for each signal whose endpoint is set (none:
    /// nothing is exported; `/metrics` and stderr logs work regardless).
    /// Call it once, before or after `logging::init`, before the workers
    /// start. The first setup in a process wins; a second one exports
    /// nothing new.
    pub fn init(cfg: &TelemetryConfig) -> Result<Telemetry, String> {
        let resource = Resource::builder_empty()
            .with_attributes(config::resource_attributes(cfg))
            .build();
        let client = BlockingHttpClient {
            timeout: cfg.export_timeout,
        };
        let headers: HashMap<String, String> = cfg.headers.iter().cloned().collect();

        let shared = pipeline::Shared {
            cfg,
            client: client.clone(),
            headers,
            resource: resource.clone(),
        };
        let tracer = (cfg.traces_endpoint.as_deref())
            .map(|url| pipeline::build::<pipeline::Traces>(url, &shared))
            .transpose()?;
        let logger = (cfg.logs_endpoint.as_deref())
            .map(|url| pipeline::build::<pipeline::Logs>(url, &shared))
            .transpose()?;

        let meter = match (&cfg.metrics_endpoint, &cfg.metrics) {
            (Some(url), Some(metrics)) => {
                let endpoint: http::Uri = url.parse().map_err(|e| build_error("metrics", e))?;
                let exporter = ShardMetricExporter {
                    client: Arc::new(client.clone()),
                    endpoint,
                    headers: cfg.headers.clone(),
                    metrics: Arc::clone(metrics),
                    shut_down: AtomicBool::new(false),
                };
                let reader = PeriodicReader::builder(exporter)
                    .with_interval(cfg.metrics_interval)
                    .build();
                let provider = SdkMeterProvider::builder()
                    .with_reader(reader)
                    .with_resource(resource)
                    .build();
                register_instruments(&provider, metrics);
                Some(provider)
            }
            _ => None,
        };

        Ok(Telemetry {
            tracer,
            logger,
            meter,
        })
    }

    /// Whether spans are exported.
    pub fn traces_enabled(&self) -> bool {
        self.tracer.is_some()
    }

    /// Flushes every pipeline (a failure is logged), then shuts down the
    /// tracer, the logger and the meter, in that order, on a helper thread;
    /// returns at `deadline` at the latest even if the collector hangs.
    pub fn shutdown(self, deadline: Duration) {
        if self.tracer.is_none() && self.logger.is_none() && self.meter.is_none() {
            return;
        }
        let start = Instant::now();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("telemetry-shutdown".into())
            .spawn(move || {
                let left = || deadline.saturating_sub(start.elapsed());
                let flushes = [
                    ("traces", self.tracer.as_ref().map(|p| p.force_flush())),
                    ("logs", self.logger.as_ref().map(|p| p.force_flush())),
                    ("metrics", self.meter.as_ref().map(|p| p.force_flush())),
                ];
                for (signal, result) in flushes {
                    if let Some(Err(e)) = result {
                        tracing::warn!(
                            target: "glasshouse::telemetry",
                            signal,
                            "telemetry flush failed: {e}"
                        );
                    }
                }
                if let Some(p) = &self.tracer {
                    let _ = p.shutdown_with_timeout(left());
                }
                if let Some(p) = &self.logger {
                    let _ = p.shutdown_with_timeout(left());
                }
                if let Some(p) = &self.meter {
                    let _ = p.shutdown_with_timeout(left());
                }
                let _ = done_tx.send(());
            });
        match spawned {
            Ok(_) => {
                if done_rx.recv_timeout(deadline).is_err() {
                    tracing::warn!(
                        target: "glasshouse::telemetry",
                        "telemetry not flushed within {deadline:?}; giving up"
                    );
                }
            }
            Err(e) => tracing::warn!(
                target: "glasshouse::telemetry",
                "cannot start the telemetry shutdown thread: {e}"
            ),
        }
    }
}

/// Observable instruments reading the shards at each collection, named and
/// described by the catalogue. The duration histogram is added by the
/// exporter (see `export.rs`).
fn register_instruments(provider: &SdkMeterProvider, metrics: &Arc<Metrics>) {
    use catalogue::*;
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::atomic::{AtomicI64, AtomicU64};
    let meter = provider.meter_with_scope(scope());

    // Sums over the shards of one field each.
    type Gauge = fn(&WorkerMetrics) -> &AtomicI64;
    type Counter = fn(&WorkerMetrics) -> &AtomicU64;
    let gauges: [(MetricDef, Gauge); 3] = [
        (ACTIVE_REQUESTS, |w| &w.active_requests),
        (CONNECTIONS_OPEN, |w| &w.connections_open),
        (WEBSOCKETS_OPEN, |w| &w.websockets_open),
    ];
    for (def, field) in gauges {
        let m = Arc::clone(metrics);
        let mut builder = meter
            .i64_observable_up_down_counter(def.name)
            .with_description(def.description)
            .with_callback(move |o| o.observe(m.sum_i64(field), &[]));
        if !def.unit.is_empty() {
            builder = builder.with_unit(def.unit);
        }
        builder.build();
    }
    let counters: [(MetricDef, Counter); 3] = [
        (CONNECTIONS_ACCEPTED, |w| &w.connections_accepted),
        (CONNECTIONS_REJECTED, |w| &w.connections_rejected),
        (BYTES_SENT, |w| &w.bytes_sent),
    ];
    for (def, field) in counters {
        let m = Arc::clone(metrics);
        counter(&meter, def)
            .with_callback(move |o| o.observe(m.sum_u64(field), &[]))
            .build();
    }
    let m = Arc::clone(metrics);
    counter(&meter, WEBSOCKET_MESSAGES)
        .with_callback(move |o| {
            o.observe(
                m.sum_u64(|w| &w.ws_received),
                &[KeyValue::new("direction", "received")],
            );
            o.observe(
                m.sum_u64(|w| &w.ws_sent),
                &[KeyValue::new("direction", "sent")],
            );
        })
        .build();
    let m = Arc::clone(metrics);
    counter(&meter, LIMIT_REFUSALS)
        .with_callback(move |o| {
            for (i, limit) in Limit::ALL.iter().enumerate() {
                o.observe(
                    m.sum_u64(|w| &w.limit_refusals[i]),
                    &[KeyValue::new("limit", limit.as_str())],
                );
            }
        })
        .build();
    let m = Arc::clone(metrics);
    counter(&meter, WORKER_REQUESTS)
        .with_callback(move |o| {
            for (i, w) in m.workers.iter().enumerate() {
                o.observe(
                    w.requests_total.load(Relaxed),
                    &[KeyValue::new("worker", i.to_string())],
                );
            }
        })
        .build();
    let m = Arc::clone(metrics);
    counter(&meter, SHUTDOWN_DRAINED)
        .with_callback(move |o| o.observe(m.process.shutdown_drained.load(Relaxed), &[]))
        .build();
    let m = Arc::clone(metrics);
    counter(&meter, SHUTDOWN_FORCED)
        .with_callback(move |o| o.observe(m.process.shutdown_forced.load(Relaxed), &[]))
        .build();
    let m = Arc::clone(metrics);
    counter(&meter, COMPRESSION_SAVED)
        .with_callback(move |o| o.observe(m.process.total(ProcessMetrics::COMPRESSION_SAVED), &[]))
        .build();
    let m = Arc::clone(metrics);
    counter(&meter, TLS_HANDSHAKES)
        .with_callback(move |o| o.observe(m.process.total(ProcessMetrics::TLS_HANDSHAKES), &[]))
        .build();
    let m = Arc::clone(metrics);
    counter(&meter, TLS_HANDSHAKES_RESUMED)
        .with_callback(move |o| o.observe(m.process.total(ProcessMetrics::TLS_RESUMED), &[]))
        .build();
    let m = Arc::clone(metrics);
    counter(&meter, TLS_HANDSHAKE_FAILURES)
        .with_callback(move |o| {
            for (i, r) in metrics::TLS_FAILURE_REASONS.iter().enumerate() {
                let n = m.process.total(ProcessMetrics::tls_failure(i));
                o.observe(n, &[KeyValue::new("reason", *r)]);
            }
        })
        .build();
    let m = Arc::clone(metrics);
    counter(&meter, TLS_KTLS_HANDOFFS)
        .with_callback(move |o| {
            for (i, r) in crate::tls::kernel::HANDOFF_RESULTS.iter().enumerate() {
                let n = m.process.total(ProcessMetrics::ktls_handoff(i));
                o.observe(n, &[KeyValue::new("result", *r)]);
            }
        })
        .build();
    // The userland stack's counters, as the catalogue lists them (its
    // gauges are registered below).
    let tcp_counters = catalogue::ALL
        .into_iter()
        .filter(|d| d.name.starts_with("glasshouse.tcp.") && d.kind == catalogue::Kind::Counter);
    for def in tcp_counters {
        let m = Arc::clone(metrics);
        counter(&meter, def)
            .with_callback(move |o| observe_tcp(&m, &def, |n, kv| o.observe(n as u64, kv)))
            .build();
    }
    for def in [TCP_CONNECTIONS, TCP_ARP_TABLE] {
        let m = Arc::clone(metrics);
        meter
            .u64_observable_gauge(def.name)
            .with_description(def.description)
            .with_callback(move |o| observe_tcp(&m, &def, |n, kv| o.observe(n as u64, kv)))
            .build();
    }
    for def in [TCP_SRTT, TCP_RTO, TCP_CWND] {
        let m = Arc::clone(metrics);
        meter
            .f64_observable_gauge(def.name)
            .with_description(def.description)
            .with_unit(def.unit)
            .with_callback(move |o| observe_tcp(&m, &def, |n, kv| o.observe(n, kv)))
            .build();
    }
    let m = Arc::clone(metrics);
    meter
        .i64_observable_gauge(READY.name)
        .with_description(READY.description)
        .with_callback(move |o| o.observe(i64::from(m.ready()), &[]))
        .build();
    counter(&meter, TELEMETRY_DROPPED)
        .with_callback(|o| {
            for s in Signal::ALL {
                o.observe(export::dropped(s), &[KeyValue::new("signal", s.as_str())]);
            }
        })
        .build();
}

/// The userland stack's samples of one family, when it runs.
fn observe_tcp(m: &Metrics, def: &catalogue::MetricDef, mut observe: impl FnMut(f64, &[KeyValue])) {
    let Some(view) = m.tcp.latest() else {
        return;
    };
    for (d, label, n) in tcp::samples(&view) {
        if d.name != def.name {
            continue;
        }
        match d.labels.first() {
            Some(key) => observe(n, &[KeyValue::new(*key, label)]),
            None => observe(n, &[]),
        }
    }
}

/// An observable counter named and described by `def` (counters carry no
/// unit: see [`catalogue::MetricDef::unit`]).
fn counter(
    meter: &opentelemetry::metrics::Meter,
    def: catalogue::MetricDef,
) -> opentelemetry::metrics::AsyncInstrumentBuilder<
    '_,
    opentelemetry::metrics::ObservableCounter<u64>,
    u64,
> {
    debug_assert_eq!(def.kind, catalogue::Kind::Counter, "{}", def.name);
    meter
        .u64_observable_counter(def.name)
        .with_description(def.description)
}
