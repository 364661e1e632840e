//! Server metrics, sharded per worker so that recording never contends:
//! each worker writes only its own shard (relaxed atomics, one writer; the
//! labelled duration histogram sits behind a mutex that only that worker and
//! an occasional reader take), and readers (`/metrics`, `/api/stats`, the
//! OTLP exporter) merge the shards. This file owns the shards and the label
//! vocabulary; rendering lives in `prometheus.rs`, `stats.rs` and `export.rs`.

use crate::engine::Limit;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

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

/// Number of histogram buckets including `+Inf`.
pub const BUCKETS: usize = DURATION_BUCKETS.len() + 1;

/// The `http.request.method` label: the methods of RFC 9110 and PATCH keep
/// their name, anything else becomes `_OTHER` (OpenTelemetry semantic
/// conventions), so a client cannot blow up the label cardinality.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "PATCH" => "PATCH",
        _ => "_OTHER",
    }
}

/// Index of the bucket that `secs` falls in (the last one is `+Inf`).
fn bucket_index(secs: f64) -> usize {
    DURATION_BUCKETS
        .iter()
        .position(|b| secs <= *b)
        .unwrap_or(DURATION_BUCKETS.len())
}

/// Labels of one duration series: method label, route, status code.
pub type SeriesKey = (&'static str, &'static str, u16);

/// A cheap multiplicative hasher for keys made of a few integers (FxHash's
/// mixing step): hashing static strings by address instead of by content
/// keeps a request's metric update in tens of nanoseconds.
#[derive(Default, Clone, Copy, Debug)]
pub struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`FastHasher`]s.
pub type FastBuild = std::hash::BuildHasherDefault<FastHasher>;

/// Identity of a static string: its address and length. Two equal strings
/// at different addresses get two entries, merged again by label when read.
fn static_id(s: &'static str) -> (usize, usize) {
    (s.as_ptr() as usize, s.len())
}

/// The shard-internal key of a series: method label, route and status by
/// identity.
type SeriesId = (usize, (usize, usize), u16);

/// One duration histogram series (not cumulative per bucket).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Observations per bucket of [`DURATION_BUCKETS`], then `+Inf`.
    pub buckets: [u64; BUCKETS],
    /// Sum of the observed durations, seconds.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Series {
    fn observe(&mut self, secs: f64) {
        self.buckets[bucket_index(secs)] += 1;
        self.sum += secs;
        self.count += 1;
    }

    fn merge(&mut self, other: &Series) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a += b;
        }
        self.sum += other.sum;
        self.count += other.count;
    }
}

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
    /// By [`Limit::ALL`] order.
    pub limit_refusals: [AtomicU64; Limit::ALL.len()],
    /// Counts per bucket of [`DURATION_BUCKETS`] plus +Inf, all labels
    /// together (what `/api/stats` percentiles read without a lock).
    pub duration_buckets: [AtomicU64; BUCKETS],
    /// The labelled duration histogram. Only this shard's worker writes it;
    /// the lock is contended only while a reader copies it out.
    series: Mutex<HashMap<SeriesId, (SeriesKey, Series), FastBuild>>,
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
    pub fn limit_refused(&self, limit: Limit) {
        let i = Limit::ALL.iter().position(|l| *l == limit).unwrap_or(0);
        self.limit_refusals[i].fetch_add(1, Relaxed);
    }
    pub fn request_started(&self) {
        self.active_requests.fetch_add(1, Relaxed);
    }
    /// A request finished. `method` is mapped to its label (see
    /// [`method_label`]); `route` is the router's static pattern, never the
    /// raw path; `secs` the time from the first byte of the request to the
    /// last byte of the answer handed to the kernel.
    pub fn request_finished(&self, method: &str, route: &'static str, status: u16, secs: f64) {
        self.active_requests.fetch_sub(1, Relaxed);
        self.requests_total.fetch_add(1, Relaxed);
        self.duration_buckets[bucket_index(secs)].fetch_add(1, Relaxed);
        let method = method_label(method);
        let id = (method.as_ptr() as usize, static_id(route), status);
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        series
            .entry(id)
            .or_insert_with(|| ((method, route, status), Series::default()))
            .1
            .observe(secs);
    }

    /// Adds observations made elsewhere (a child process of the process
    /// models) to this shard's labelled histogram.
    pub fn add_series(&self, key: SeriesKey, more: &Series) {
        let id = (key.0.as_ptr() as usize, static_id(key.1), key.2);
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        series
            .entry(id)
            .or_insert_with(|| (key, Series::default()))
            .1
            .merge(more);
    }

    /// Replaces this shard's labelled histogram with figures kept elsewhere
    /// (a preforked child's mirror of its parent's shards).
    pub fn replace_series(&self, all: impl IntoIterator<Item = (SeriesKey, Series)>) {
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        series.clear();
        for (key, s) in all {
            let id = (key.0.as_ptr() as usize, static_id(key.1), key.2);
            series.insert(id, (key, s));
        }
    }

    /// A copy of this shard's labelled histogram.
    pub fn series_snapshot(&self) -> Vec<(SeriesKey, Series)> {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        series.values().map(|(k, v)| (*k, v.clone())).collect()
    }
}

/// Process-wide counters that belong to no worker.
#[derive(Debug, Default)]
pub struct ProcessMetrics {
    pub shutdown_drained: AtomicU64,
    pub shutdown_forced: AtomicU64,
    /// Bytes on-the-fly compression kept off the wire (identity size minus
    /// compressed size, per response).
    pub compression_saved: AtomicU64,
    /// 1 while accepting, 0 before and once draining (`glasshouse_ready`).
    pub ready: AtomicBool,
    pub tls: Arc<TlsMetrics>,
    /// In a `preforked` worker process: what the other worker processes
    /// counted into the counters of [`ProcessMetrics::counters`], in that
    /// order, as of the parent's last copy; zero everywhere else. Kept apart
    /// so that a worker reports only what it counted itself.
    pub relayed: [AtomicU64; PROCESS_COUNTERS],
}

/// The process-wide counters relayed between processes: compression saved,
/// TLS handshakes, TLS failures by reason, kernel TLS hand-offs by result,
/// then resumed TLS handshakes.
pub const PROCESS_COUNTERS: usize =
    3 + TLS_FAILURE_REASONS.len() + crate::tls::kernel::HANDOFF_RESULTS.len();

impl ProcessMetrics {
    /// The counters this process counted itself, in the order of
    /// [`PROCESS_COUNTERS`].
    pub fn counters(&self) -> impl Iterator<Item = &AtomicU64> {
        [&self.compression_saved, &self.tls.handshakes]
            .into_iter()
            .chain(self.tls.failures.iter())
            .chain(self.tls.handoffs.iter())
            .chain([&self.tls.resumed])
    }

    /// Counter `i` of [`ProcessMetrics::counters`] with what other worker
    /// processes counted: what `/metrics` and the OTLP export show.
    pub fn total(&self, i: usize) -> u64 {
        let own = self.counters().nth(i).map_or(0, |c| c.load(Relaxed));
        own + self.relayed.get(i).map_or(0, |c| c.load(Relaxed))
    }

    /// Index of TLS failure reason `i` in [`ProcessMetrics::counters`].
    pub const fn tls_failure(i: usize) -> usize {
        2 + i
    }

    /// Index of kernel TLS hand-off result `i` in [`ProcessMetrics::counters`].
    pub const fn ktls_handoff(i: usize) -> usize {
        2 + TLS_FAILURE_REASONS.len() + i
    }

    pub const COMPRESSION_SAVED: usize = 0;
    pub const TLS_HANDSHAKES: usize = 1;
    pub const TLS_RESUMED: usize = PROCESS_COUNTERS - 1;
}

/// Why a TLS handshake failed: the `reason` label of
/// `glasshouse_tls_handshake_failures_total`, a fixed set so that a
/// misbehaving client cannot mint label values.
pub const TLS_FAILURE_REASONS: [&str; 8] = [
    "timeout",
    "closed",
    "incompatible",
    "certificate_rejected",
    "peer_alert",
    "no_alpn",
    "protocol",
    "other",
];

/// TLS handshakes, process-wide (a handshake is rare next to a request).
#[derive(Debug, Default)]
pub struct TlsMetrics {
    pub handshakes: AtomicU64,
    /// Of those, the handshakes that resumed an earlier session (no
    /// certificate signature: the cheap kind).
    pub resumed: AtomicU64,
    /// One counter per entry of [`TLS_FAILURE_REASONS`].
    pub failures: [AtomicU64; TLS_FAILURE_REASONS.len()],
    /// One counter per entry of [`crate::tls::kernel::HANDOFF_RESULTS`].
    pub handoffs: [AtomicU64; crate::tls::kernel::HANDOFF_RESULTS.len()],
}

impl TlsMetrics {
    pub fn handshake_completed(&self, resumed: bool) {
        self.handshakes.fetch_add(1, Relaxed);
        if resumed {
            self.resumed.fetch_add(1, Relaxed);
        }
    }
    /// A failed handshake; an unknown reason counts as `other`.
    pub fn handshake_failed(&self, reason: &str) {
        let i = TLS_FAILURE_REASONS
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(TLS_FAILURE_REASONS.len() - 1);
        self.failures[i].fetch_add(1, Relaxed);
    }
    /// A kernel TLS hand-off attempt and how it went.
    pub fn ktls_handoff(&self, result: crate::tls::kernel::HandOff) {
        self.handoffs[result as usize].fetch_add(1, Relaxed);
    }
}

/// All shards plus process-wide figures.
#[derive(Debug)]
pub struct Metrics {
    pub started: Instant,
    /// Wall clock at `started`: the start time of cumulative OTLP series.
    pub started_at: SystemTime,
    pub workers: Vec<Arc<WorkerMetrics>>,
    pub process: ProcessMetrics,
    /// Under `--stack user`: the userland TCP/IP's STATUS, as its driver
    /// last published it (`/api/tcp`).
    pub tcp: crate::net::Board,
}

impl Metrics {
    pub fn new(workers: usize) -> Arc<Metrics> {
        Arc::new(Metrics {
            started: Instant::now(),
            started_at: SystemTime::now(),
            workers: (0..workers).map(|_| Arc::default()).collect(),
            process: ProcessMetrics::default(),
            tcp: crate::net::Board::default(),
        })
    }

    pub fn worker(&self, i: usize) -> Arc<WorkerMetrics> {
        Arc::clone(&self.workers[i])
    }

    /// Sum of one field across the shards.
    pub fn sum<F: Fn(&WorkerMetrics) -> i64>(&self, f: F) -> i64 {
        self.workers.iter().map(|w| f(w)).sum()
    }

    /// Sets `glasshouse_ready`: true once listening, false when draining.
    pub fn set_ready(&self, ready: bool) {
        self.process.ready.store(ready, Relaxed);
    }

    /// Whether the server said it is ready.
    pub fn ready(&self) -> bool {
        self.process.ready.load(Relaxed)
    }

    /// Adds a finished drain's counts: connections that ended by themselves
    /// and connections closed at the deadline.
    pub fn record_shutdown(&self, drained: u64, forced: u64) {
        self.process.shutdown_drained.fetch_add(drained, Relaxed);
        self.process.shutdown_forced.fetch_add(forced, Relaxed);
    }

    /// The labelled duration histogram merged over all shards, in label order.
    pub fn merged_series(&self) -> BTreeMap<SeriesKey, Series> {
        let mut out: BTreeMap<SeriesKey, Series> = BTreeMap::new();
        for w in &self.workers {
            for (k, s) in w.series_snapshot() {
                out.entry(k).or_default().merge(&s);
            }
        }
        out
    }

    /// Bucket counts over every request and worker (not cumulative).
    pub fn merged_buckets(&self) -> [u64; BUCKETS] {
        let mut out = [0u64; BUCKETS];
        for w in &self.workers {
            for (o, b) in out.iter_mut().zip(w.duration_buckets.iter()) {
                *o += b.load(Relaxed);
            }
        }
        out
    }

    /// Sum of an unsigned counter across the shards.
    pub fn sum_u64<F: Fn(&WorkerMetrics) -> &AtomicU64>(&self, f: F) -> u64 {
        self.workers.iter().map(|w| f(w).load(Relaxed)).sum()
    }

    /// Sum of a gauge across the shards.
    pub fn sum_i64<F: Fn(&WorkerMetrics) -> &AtomicI64>(&self, f: F) -> i64 {
        self.workers.iter().map(|w| f(w).load(Relaxed)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_fixed_set_become_other() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("PATCH"), "PATCH");
        assert_eq!(method_label("get"), "_OTHER");
        assert_eq!(method_label("BREW"), "_OTHER");
    }

    #[test]
    fn buckets_are_upper_bounds_inclusive() {
        assert_eq!(bucket_index(0.0), 0);
        assert_eq!(bucket_index(0.000_05), 0);
        assert_eq!(bucket_index(0.000_051), 1);
        assert_eq!(bucket_index(10.0), 15);
        assert_eq!(bucket_index(11.0), 16);
    }

    #[test]
    fn shards_merge_by_label() {
        let m = Metrics::new(2);
        m.workers[0].request_started();
        m.workers[0].request_finished("GET", "/a", 200, 0.001);
        m.workers[1].request_started();
        m.workers[1].request_finished("GET", "/a", 200, 0.003);
        m.workers[1].request_started();
        m.workers[1].request_finished("BREW", "/a", 501, 0.003);
        let s = m.merged_series();
        assert_eq!(s.len(), 2);
        let a = &s[&("GET", "/a", 200)];
        assert_eq!(a.count, 2);
        assert!((a.sum - 0.004).abs() < 1e-12);
        assert_eq!(s[&("_OTHER", "/a", 501)].count, 1);
        assert_eq!(m.merged_buckets().iter().sum::<u64>(), 3);
        assert_eq!(m.sum_i64(|w| &w.active_requests), 0);
        assert_eq!(m.sum_u64(|w| &w.requests_total), 3);
    }
}
