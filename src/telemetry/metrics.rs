//! Server metrics, sharded per worker so that recording never contends:
//! each worker writes only its own shard (relaxed atomics, one writer), and
//! readers (`/metrics`, `/api/stats`, the OTLP reader) sum the shards.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// Direction of a WebSocket message, the `direction` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsDirection {
    Received,
    Sent,
}

/// Upper bounds (seconds) of the request-duration histogram buckets: a fast
/// server needs resolution well below a millisecond.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// One worker's shard.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    pub connections_open: AtomicI64,
    pub connections_accepted: AtomicU64,
    pub connections_rejected: AtomicU64,
    pub websockets_open: AtomicI64,
    pub requests_total: AtomicU64,
    pub active_requests: AtomicI64,
    pub bytes_sent: AtomicU64,
    pub ws_received: AtomicU64,
    pub ws_sent: AtomicU64,
    /// Cumulative counts per bucket of [`DURATION_BUCKETS`] plus +Inf.
    pub duration_buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
}

impl WorkerMetrics {
    pub fn connection_accepted(&self) {
        self.connections_accepted.fetch_add(1, Relaxed);
        self.connections_open.fetch_add(1, Relaxed);
    }
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Relaxed);
    }
    pub fn connection_rejected(&self) {
        self.connections_rejected.fetch_add(1, Relaxed);
    }
    pub fn websocket_opened(&self) {
        self.websockets_open.fetch_add(1, Relaxed);
    }
    pub fn websocket_closed(&self) {
        self.websockets_open.fetch_sub(1, Relaxed);
    }
    pub fn bytes_sent(&self, n: u64) {
        self.bytes_sent.fetch_add(n, Relaxed);
    }
    pub fn ws_message(&self, dir: WsDirection) {
        match dir {
            WsDirection::Received => self.ws_received.fetch_add(1, Relaxed),
            WsDirection::Sent => self.ws_sent.fetch_add(1, Relaxed),
        };
    }
    pub fn request_started(&self) {
        self.active_requests.fetch_add(1, Relaxed);
    }
    /// A request finished; labels are static or small so nothing allocates.
    pub fn request_finished(&self, _method: &str, _route: &'static str, _status: u16, secs: f64) {
        self.active_requests.fetch_sub(1, Relaxed);
        self.requests_total.fetch_add(1, Relaxed);
        let i = DURATION_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(DURATION_BUCKETS.len());
        self.duration_buckets[i].fetch_add(1, Relaxed);
    }
}

/// Process-wide counters that belong to no worker.
#[derive(Debug, Default)]
pub struct ProcessMetrics {
    pub shutdown_drained: AtomicU64,
    pub shutdown_forced: AtomicU64,
}

/// All shards plus process-wide figures.
#[derive(Debug)]
pub struct Metrics {
    pub started: Instant,
    pub workers: Vec<Arc<WorkerMetrics>>,
    pub process: ProcessMetrics,
}

impl Metrics {
    pub fn new(workers: usize) -> Arc<Metrics> {
        Arc::new(Metrics {
            started: Instant::now(),
            workers: (0..workers).map(|_| Arc::default()).collect(),
            process: ProcessMetrics::default(),
        })
    }

    pub fn worker(&self, i: usize) -> Arc<WorkerMetrics> {
        Arc::clone(&self.workers[i])
    }

    /// Sum of one field across the shards.
    pub fn sum<F: Fn(&WorkerMetrics) -> i64>(&self, f: F) -> i64 {
        self.workers.iter().map(|w| f(w)).sum()
    }
}

/// Percentile (0..1) estimated from cumulative bucket counts, in seconds.
fn percentile(counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        if seen + c >= rank {
            let lo = if i == 0 { 0.0 } else { DURATION_BUCKETS[i - 1] };
            let hi = DURATION_BUCKETS.get(i).copied().unwrap_or(lo * 2.0);
            let frac = (rank - seen) as f64 / (*c).max(1) as f64;
            return Some(lo + (hi - lo) * frac);
        }
        seen += c;
    }
    None
}

/// The `/api/stats` document (docs/api.md).
pub fn stats_json(m: &Metrics, draining: bool) -> serde_json::Value {
    let mut counts = [0u64; DURATION_BUCKETS.len() + 1];
    for w in &m.workers {
        for (i, b) in w.duration_buckets.iter().enumerate() {
            counts[i] += b.load(Relaxed);
        }
    }
    let ms = |q| percentile(&counts, q).map(|s| (s * 1e6).round() / 1e3);
    let workers: Vec<_> = m
        .workers
        .iter()
        .enumerate()
        .map(|(i, w)| {
            serde_json::json!({
                "id": i,
                "requests_total": w.requests_total.load(Relaxed),
                "connections_open": w.connections_open.load(Relaxed).max(0),
                "websockets_open": w.websockets_open.load(Relaxed).max(0),
            })
        })
        .collect();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "state": if draining { "draining" } else { "serving" },
        "uptime_seconds": (m.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        "timestamp_ms": now_ms,
        "connections_open": m.sum(|w| w.connections_open.load(Relaxed)).max(0),
        "websockets_open": m.sum(|w| w.websockets_open.load(Relaxed)).max(0),
        "requests_total": m.sum(|w| w.requests_total.load(Relaxed) as i64),
        "requests_in_flight": m.sum(|w| w.active_requests.load(Relaxed)).max(0),
        "bytes_sent_total": m.sum(|w| w.bytes_sent.load(Relaxed) as i64),
        "connections_rejected_total": m.sum(|w| w.connections_rejected.load(Relaxed) as i64),
        "latency_ms": { "p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99) },
        "workers": workers,
    })
}

/// Prometheus text exposition of the shards (interim: counters and gauges).
pub fn render_prometheus(m: &Metrics) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let mut line = |name: &str, kind: &str, v: i64| {
        let _ = writeln!(s, "# TYPE {name} {kind}\n{name} {v}");
    };
    line(
        "glasshouse_connections_open",
        "gauge",
        m.sum(|w| w.connections_open.load(Relaxed)),
    );
    line(
        "glasshouse_connections_accepted_total",
        "counter",
        m.sum(|w| w.connections_accepted.load(Relaxed) as i64),
    );
    line(
        "glasshouse_connections_rejected_total",
        "counter",
        m.sum(|w| w.connections_rejected.load(Relaxed) as i64),
    );
    line(
        "glasshouse_bytes_sent_total",
        "counter",
        m.sum(|w| w.bytes_sent.load(Relaxed) as i64),
    );
    line(
        "http_server_active_requests",
        "gauge",
        m.sum(|w| w.active_requests.load(Relaxed)),
    );
    line(
        "glasshouse_shutdown_drained_total",
        "counter",
        m.process.shutdown_drained.load(Relaxed) as i64,
    );
    line(
        "glasshouse_shutdown_forced_total",
        "counter",
        m.process.shutdown_forced.load(Relaxed) as i64,
    );
    s
}
