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
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5, 10.0,
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
