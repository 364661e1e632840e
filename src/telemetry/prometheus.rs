//! `GET /metrics`: the metric shards as Prometheus text (format 0.0.4),
//! through the `prometheus` crate. [`ShardCollector`] is a custom
//! `prometheus::core::Collector` that reads the shards at scrape time and
//! names every family from the catalogue; the crate's `TextEncoder` writes
//! `HELP`/`TYPE`, escapes label values and lays out the histogram buckets.
//! The shards stay the one source of truth: nothing is recorded twice. This
//! file also reads the few `process_*` figures Prometheus users expect from
//! `/proc/self`.
//!
//! No `prometheus::Registry` sits in between: it wants `'static` boxed
//! collectors and re-sorts what the catalogue already orders, and there is
//! only one collector. A test registers it in one to check its descriptors.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::LazyLock;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};

use super::catalogue::{self, Kind, MetricDef};
use super::export::{dropped, Signal};
use super::metrics::{Metrics, ProcessMetrics, DURATION_BUCKETS, TLS_FAILURE_REASONS};
use crate::engine::Limit;

/// `Content-Type` of the `/metrics` answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Figures that are not in the shards, gathered at scrape time.
#[derive(Clone, Debug, Default)]
pub struct ProcessState {
    /// Resident set size, bytes.
    pub resident_memory_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// User plus system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Process start, seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
}

impl ProcessState {
    /// Reads `/proc/self`; figures that cannot be read stay `None`.
    pub fn collect(metrics: &Metrics) -> ProcessState {
        let start_time_seconds = metrics
            .started_at
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs_f64());
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        // VmRSS is in kB in /proc/self/status: no page size to guess.
        let resident_memory_bytes =
            std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
                    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                    Some(kb * 1024)
                });
        let cpu_seconds = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                // Fields after the parenthesised command name; utime and
                // stime are fields 14 and 15 (1-based), in clock ticks (100/s).
                let rest = &s[s.rfind(')')? + 2..];
                let f: Vec<&str> = rest.split_whitespace().collect();
                let utime: f64 = f.get(11)?.parse().ok()?;
                let stime: f64 = f.get(12)?.parse().ok()?;
                Some((utime + stime) / 100.0)
            });
        ProcessState {
            resident_memory_bytes,
            open_fds,
            cpu_seconds,
            start_time_seconds,
        }
    }
}

/// The shards (and the scrape-time process figures) as a Prometheus
/// collector. Borrowed per scrape; register a `ShardCollector<'static>` in a
/// `prometheus::Registry` to combine it with other collectors.
#[derive(Debug, Clone, Copy)]
pub struct ShardCollector<'a> {
    metrics: &'a Metrics,
    process: &'a ProcessState,
}

impl<'a> ShardCollector<'a> {
    pub fn new(metrics: &'a Metrics, process: &'a ProcessState) -> ShardCollector<'a> {
        ShardCollector { metrics, process }
    }

    fn duration(&self) -> MetricFamily {
        let def = &catalogue::REQUEST_DURATION;
        let series = self.metrics.merged_series();
        let mut out = Vec::with_capacity(series.len());
        for ((method, route, status), s) in series {
            let mut cumulative = 0;
            // `+Inf` is the encoder's: it writes the sample count there.
            let buckets = DURATION_BUCKETS
                .iter()
                .zip(s.buckets.iter())
                .map(|(bound, count)| {
                    cumulative += count;
                    let mut b = Bucket::default();
                    b.set_upper_bound(*bound);
                    b.set_cumulative_count(cumulative);
                    b
                })
                .collect();
            let mut h = Histogram::default();
            h.set_bucket(buckets);
            h.set_sample_count(s.count);
            h.set_sample_sum(s.sum);
            let mut m = Metric::from_label(labels(
                def,
                [method, itoa::Buffer::new().format(status), route],
            ));
            m.set_histogram(h);
            out.push(m);
        }
        family(def, out)
    }
}

impl Collector for ShardCollector<'_> {
    fn desc(&self) -> Vec<&Desc> {
        DESCS.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        use catalogue::*;
        let m = self.metrics;
        let p = self.process;
        let optional = |def: &MetricDef, v: Option<f64>| family(def, v.map(|v| value(def, [], v)));
        let mut out = vec![
            self.duration(),
            single(&ACTIVE_REQUESTS, m.sum_i64(|w| &w.active_requests) as f64),
            single(&CONNECTIONS_OPEN, m.sum_i64(|w| &w.connections_open) as f64),
            single(
                &CONNECTIONS_ACCEPTED,
                m.sum_u64(|w| &w.connections_accepted) as f64,
            ),
            single(
                &CONNECTIONS_REJECTED,
                m.sum_u64(|w| &w.connections_rejected) as f64,
            ),
            single(&BYTES_SENT, m.sum_u64(|w| &w.bytes_sent) as f64),
            single(&WEBSOCKETS_OPEN, m.sum_i64(|w| &w.websockets_open) as f64),
            family(
                &WEBSOCKET_MESSAGES,
                [
                    ("received", m.sum_u64(|w| &w.ws_received)),
                    ("sent", m.sum_u64(|w| &w.ws_sent)),
                ]
                .map(|(dir, n)| value(&WEBSOCKET_MESSAGES, [dir], n as f64)),
            ),
            family(
                &LIMIT_REFUSALS,
                Limit::ALL.iter().enumerate().map(|(i, limit)| {
                    let n = m.sum_u64(|w| &w.limit_refusals[i]);
                    value(&LIMIT_REFUSALS, [limit.as_str()], n as f64)
                }),
            ),
            family(
                &WORKER_REQUESTS,
                m.workers.iter().enumerate().map(|(i, w)| {
                    let n = w.requests_total.load(Relaxed);
                    value(&WORKER_REQUESTS, [itoa::Buffer::new().format(i)], n as f64)
                }),
            ),
            single(
                &SHUTDOWN_DRAINED,
                m.process.shutdown_drained.load(Relaxed) as f64,
            ),
            single(
                &SHUTDOWN_FORCED,
                m.process.shutdown_forced.load(Relaxed) as f64,
            ),
            single(
                &COMPRESSION_SAVED,
                m.process.total(ProcessMetrics::COMPRESSION_SAVED) as f64,
            ),
            single(
                &TLS_HANDSHAKES,
                m.process.total(ProcessMetrics::TLS_HANDSHAKES) as f64,
            ),
            single(
                &TLS_HANDSHAKES_RESUMED,
                m.process.total(ProcessMetrics::TLS_RESUMED) as f64,
            ),
            family(
                &TLS_HANDSHAKE_FAILURES,
                TLS_FAILURE_REASONS.iter().enumerate().map(|(i, r)| {
                    let n = m.process.total(ProcessMetrics::tls_failure(i));
                    value(&TLS_HANDSHAKE_FAILURES, [*r], n as f64)
                }),
            ),
            family(
                &TLS_KTLS_HANDOFFS,
                crate::tls::kernel::HANDOFF_RESULTS
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let n = m.process.total(ProcessMetrics::ktls_handoff(i));
                        value(&TLS_KTLS_HANDOFFS, [*r], n as f64)
                    }),
            ),
            single(&READY, f64::from(u8::from(m.ready()))),
            family(
                &TELEMETRY_DROPPED,
                Signal::ALL.map(|s| value(&TELEMETRY_DROPPED, [s.as_str()], dropped(s) as f64)),
            ),
            optional(&PROCESS_CPU, p.cpu_seconds),
            optional(
                &PROCESS_RESIDENT_MEMORY,
                p.resident_memory_bytes.map(|v| v as f64),
            ),
            optional(&PROCESS_OPEN_FDS, p.open_fds.map(|v| v as f64)),
            optional(&PROCESS_START_TIME, p.start_time_seconds),
        ];
        out.extend(tcp_families(m));
        // The text format has no way to say "a family with no samples"
        // (the encoder refuses one): before the first request there is no
        // duration series, and /proc may be unreadable.
        out.retain(|f| !f.get_metric().is_empty());
        out
    }
}

/// Descriptors of every family, for `Collector::desc`. The catalogue's
/// names are constants, checked by a test: an invalid one is left out
/// rather than failing a scrape.
static DESCS: LazyLock<Vec<Desc>> = LazyLock::new(|| {
    catalogue::ALL
        .iter()
        .filter_map(|d| {
            let labels = d.labels.iter().map(|k| catalogue::prometheus_label(k));
            Desc::new(
                d.prometheus.to_owned(),
                d.description.to_owned(),
                labels.collect(),
                Default::default(),
            )
            .ok()
        })
        .collect()
});

/// The userland stack's families, when it runs (`super::tcp`).
fn tcp_families(m: &Metrics) -> Vec<MetricFamily> {
    let Some(view) = m.tcp.latest() else {
        return Vec::new();
    };
    let samples = super::tcp::samples(&view);
    let mut out: Vec<MetricFamily> = Vec::new();
    let mut i = 0;
    while i < samples.len() {
        let def = samples[i].0;
        let run = samples[i..].iter().take_while(|s| s.0.name == def.name);
        let metrics: Vec<Metric> = run
            .map(|&(d, label, n)| match d.labels.len() {
                0 => value(d, [], n),
                _ => value(d, [label], n),
            })
            .collect();
        i += metrics.len();
        out.push(family(def, metrics));
    }
    out
}

fn family(def: &MetricDef, metrics: impl IntoIterator<Item = Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(def.prometheus.to_owned());
    f.set_help(def.description.to_owned());
    f.set_field_type(match def.kind {
        Kind::Counter => MetricType::COUNTER,
        Kind::UpDownCounter | Kind::Gauge => MetricType::GAUGE,
        Kind::Histogram => MetricType::HISTOGRAM,
    });
    f.set_metric(metrics.into_iter().collect());
    f
}

/// The label pairs of one series: `values` in the order of `def.labels`.
fn labels<const N: usize>(def: &MetricDef, values: [&str; N]) -> Vec<LabelPair> {
    debug_assert_eq!(def.labels.len(), N, "{}", def.name);
    def.labels
        .iter()
        .zip(values)
        .map(|(key, v)| {
            let mut l = LabelPair::default();
            l.set_name(catalogue::prometheus_label(key));
            l.set_value(v.to_owned());
            l
        })
        .collect()
}

/// One counter or gauge sample.
fn value<const N: usize>(def: &MetricDef, label_values: [&str; N], v: f64) -> Metric {
    let mut m = Metric::from_label(labels(def, label_values));
    if def.kind == Kind::Counter {
        let mut c = Counter::default();
        c.set_value(v);
        m.set_counter(c);
    } else {
        let mut g = Gauge::default();
        g.set_value(v);
        m.set_gauge(g);
    }
    m
}

fn single(def: &MetricDef, v: f64) -> MetricFamily {
    family(def, [value(def, [], v)])
}

/// Length of the last exposition: the next one starts with room for it, so
/// a scrape does not grow its buffer step by step.
static LAST_LEN: AtomicUsize = AtomicUsize::new(8192);

/// Renders every metric of the catalogue as Prometheus text. Served with
/// [`CONTENT_TYPE`].
pub fn render_prometheus(metrics: &Metrics, extra: &ProcessState) -> String {
    let families = ShardCollector::new(metrics, extra).collect();
    let mut out = String::with_capacity(LAST_LEN.load(Relaxed) + 1024);
    // `collect` leaves out empty families, the encoder's one refusal.
    if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&families, &mut out) {
        tracing::warn!(target: "glasshouse::telemetry", "/metrics: {e}");
    }
    LAST_LEN.store(out.len(), Relaxed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A sample line parsed back: name, labels, value.
    type Parsed = (String, HashMap<String, String>, f64);

    /// A strict little parser of the text format: every sample's family has
    /// a `# TYPE` line before it, label syntax and values are valid.
    fn parse(text: &str) -> Vec<Parsed> {
        let mut types: HashMap<String, String> = HashMap::new();
        let mut out = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split(' ');
                let name = it.next().expect("name").to_string();
                let kind = it.next().expect("kind").to_string();
                assert!(
                    ["counter", "gauge", "histogram"].contains(&kind.as_str()),
                    "{line}"
                );
                assert!(types.insert(name, kind).is_none(), "duplicate TYPE: {line}");
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            assert!(
                !line.is_empty() && !line.starts_with('#'),
                "stray: {line:?}"
            );
            let (series, value) = line.rsplit_once(' ').expect("value");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
            };
            let (name, labels) = match series.split_once('{') {
                None => (series.to_string(), HashMap::new()),
                Some((n, l)) => {
                    let l = l.strip_suffix('}').expect("closing brace");
                    let mut map = HashMap::new();
                    for pair in l.split("\",") {
                        let (k, v) = pair.split_once("=\"").expect("label");
                        assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                        map.insert(k.to_string(), v.trim_end_matches('"').to_string());
                    }
                    (n.to_string(), map)
                }
            };
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
                .unwrap_or(&name)
                .to_string();
            assert!(types.contains_key(&family), "no TYPE for {name}");
            out.push((name, labels, value));
        }
        out
    }

    fn find<'a>(samples: &'a [Parsed], name: &str, labels: &[(&str, &str)]) -> Option<&'a Parsed> {
        samples.iter().find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
    }

    #[test]
    fn exposition_parses_back_with_contract_names() {
        let m = Metrics::new(2);
        let w = m.worker(1);
        w.connection_accepted();
        w.request_started();
        w.request_finished("GET", "/api/stats", 200, 0.000_3);
        w.request_started();
        w.request_finished("GET", "/api/stats", 200, 20.0);
        w.bytes_sent(512);
        w.ws_message(super::super::WsDirection::Sent);
        m.set_ready(true);
        m.record_shutdown(3, 1);
        let text = render_prometheus(&m, &ProcessState::collect(&m));
        let s = parse(&text);
        let labels = [
            ("http_request_method", "GET"),
            ("http_response_status_code", "200"),
            ("http_route", "/api/stats"),
        ];
        let bucket = |le: &str| {
            let mut l = labels.to_vec();
            l.push(("le", le));
            find(&s, "http_server_request_duration_seconds_bucket", &l)
                .expect("bucket")
                .2
        };
        assert_eq!(bucket("0.00025"), 0.0);
        assert_eq!(bucket("0.0005"), 1.0);
        assert_eq!(bucket("10"), 1.0);
        assert_eq!(bucket("+Inf"), 2.0);
        assert_eq!(
            find(&s, "http_server_request_duration_seconds_count", &labels)
                .expect("count")
                .2,
            2.0
        );
        let one = |n: &str, l: &[(&str, &str)]| find(&s, n, l).expect(n).2;
        assert_eq!(one("http_server_active_requests", &[]), 0.0);
        assert_eq!(one("glasshouse_connections_open", &[]), 1.0);
        assert_eq!(one("glasshouse_connections_accepted_total", &[]), 1.0);
        assert_eq!(one("glasshouse_connections_rejected_total", &[]), 0.0);
        assert_eq!(one("glasshouse_bytes_sent_total", &[]), 512.0);
        assert_eq!(
            one(
                "glasshouse_websocket_messages_total",
                &[("direction", "sent")]
            ),
            1.0
        );
        assert_eq!(
            one("glasshouse_worker_requests_total", &[("worker", "1")]),
            2.0
        );
        assert_eq!(
            one("glasshouse_worker_requests_total", &[("worker", "0")]),
            0.0
        );
        assert_eq!(one("glasshouse_shutdown_drained_total", &[]), 3.0);
        assert_eq!(one("glasshouse_shutdown_forced_total", &[]), 1.0);
        assert_eq!(one("glasshouse_ready", &[]), 1.0);
        assert!(find(
            &s,
            "glasshouse_telemetry_dropped_total",
            &[("signal", "traces")]
        )
        .is_some());
        assert!(find(&s, "glasshouse_websockets_open", &[]).is_some());
        assert!(find(&s, "process_open_fds", &[]).is_some());
    }

    /// Prometheus' own linter, when installed (Debian package
    /// `prometheus`); skipped otherwise.
    #[test]
    fn promtool_accepts_the_exposition() {
        use std::io::Write as _;
        let m = Metrics::new(2);
        m.workers[0].request_started();
        m.workers[0].request_finished("GET", "/x\"y", 200, 0.01);
        let text = render_prometheus(&m, &ProcessState::collect(&m));
        let child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            eprintln!("promtool not installed: skipped");
            return;
        };
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("promtool");
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new(1);
        m.workers[0].request_started();
        m.workers[0].request_finished("GET", "/a\"b\\c\nd", 200, 0.01);
        let text = render_prometheus(&m, &ProcessState::default());
        assert!(text.contains("http_route=\"/a\\\"b\\\\c\\nd\""), "{text}");
    }

    #[test]
    fn every_catalogue_entry_is_exposed_as_described() {
        let m = Metrics::new(1);
        // The userland stack's families appear once it has published, its
        // Ethernet's when it runs on a packet link.
        let stack = crate::net::Stack::new(crate::net::StackConfig::new(
            "10.9.0.2".parse().unwrap(),
            [1; 16],
        ));
        let mut view = stack.view(0);
        view.link = Some(Default::default());
        m.tcp.publish(view);
        m.workers[0].request_started();
        m.workers[0].request_finished("GET", "/", 200, 0.01);
        let p = ProcessState {
            resident_memory_bytes: Some(1),
            open_fds: Some(1),
            cpu_seconds: Some(1.0),
            start_time_seconds: Some(1.0),
        };
        let text = render_prometheus(&m, &p);
        for d in catalogue::ALL {
            let (name, help, kind) = (d.prometheus, d.description, d.kind.prometheus_type());
            assert!(text.contains(&format!("# HELP {name} {help}\n")), "{name}");
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
        }
    }

    #[test]
    fn the_collector_registers_in_a_registry() {
        let m: &'static Metrics = Box::leak(Box::new(Metrics::new(2)));
        let p: &'static ProcessState = Box::leak(Box::default());
        let r = prometheus::Registry::new();
        r.register(Box::new(ShardCollector::new(m, p)))
            .expect("valid, unique descriptors");
        assert_eq!(DESCS.len(), catalogue::ALL.len(), "every name is valid");
        let names: Vec<String> = r.gather().iter().map(|f| f.name().to_owned()).collect();
        assert!(names.contains(&"glasshouse_ready".to_owned()), "{names:?}");
        // No request yet: no duration series, so no duration family.
        assert!(!names.iter().any(|n| n.starts_with("http_server_request")));
    }
}
