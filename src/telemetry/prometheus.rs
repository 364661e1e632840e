//! Prometheus text exposition (format 0.0.4) of the metric shards for
//! `GET /metrics`, written by hand: the shards are the one source of truth,
//! this file only merges and prints them. It also reads the few `process_*`
//! figures Prometheus users expect from `/proc/self`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use super::catalogue::*;
use super::export::{dropped, Signal};
use super::metrics::{Metrics, DURATION_BUCKETS};

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

fn header(out: &mut String, def: &MetricDef) {
    let (name, help, kind) = (def.prometheus, def.description, def.kind.prometheus_type());
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, def: &MetricDef, value: impl std::fmt::Display) {
    header(out, def);
    let _ = writeln!(out, "{} {value}", def.prometheus);
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders every metric of the contract, plus process figures, as
/// Prometheus text. Served with [`CONTENT_TYPE`].
pub fn render_prometheus(metrics: &Metrics, extra: &ProcessState) -> String {
    let mut out = String::with_capacity(8192);

    let name = REQUEST_DURATION.prometheus;
    header(&mut out, &REQUEST_DURATION);
    for ((method, route, status), s) in metrics.merged_series() {
        let labels = format!(
            "http_request_method=\"{method}\",http_response_status_code=\"{status}\",http_route=\"{}\"",
            escape(route)
        );
        let mut cumulative = 0u64;
        for (i, count) in s.buckets.iter().enumerate() {
            cumulative += count;
            let le = match DURATION_BUCKETS.get(i) {
                Some(b) => b.to_string(),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", s.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", s.count);
    }

    sample(
        &mut out,
        &ACTIVE_REQUESTS,
        metrics.sum_i64(|w| &w.active_requests),
    );
    sample(
        &mut out,
        &CONNECTIONS_OPEN,
        metrics.sum_i64(|w| &w.connections_open),
    );
    sample(
        &mut out,
        &CONNECTIONS_ACCEPTED,
        metrics.sum_u64(|w| &w.connections_accepted),
    );
    sample(
        &mut out,
        &CONNECTIONS_REJECTED,
        metrics.sum_u64(|w| &w.connections_rejected),
    );
    sample(&mut out, &BYTES_SENT, metrics.sum_u64(|w| &w.bytes_sent));
    sample(
        &mut out,
        &WEBSOCKETS_OPEN,
        metrics.sum_i64(|w| &w.websockets_open),
    );
    header(&mut out, &WEBSOCKET_MESSAGES);
    let _ = writeln!(
        out,
        "glasshouse_websocket_messages_total{{direction=\"received\"}} {}",
        metrics.sum_u64(|w| &w.ws_received)
    );
    let _ = writeln!(
        out,
        "glasshouse_websocket_messages_total{{direction=\"sent\"}} {}",
        metrics.sum_u64(|w| &w.ws_sent)
    );
    header(&mut out, &WORKER_REQUESTS);
    for (i, w) in metrics.workers.iter().enumerate() {
        let _ = writeln!(
            out,
            "glasshouse_worker_requests_total{{worker=\"{i}\"}} {}",
            w.requests_total.load(Relaxed)
        );
    }
    sample(
        &mut out,
        &SHUTDOWN_DRAINED,
        metrics.process.shutdown_drained.load(Relaxed),
    );
    sample(
        &mut out,
        &SHUTDOWN_FORCED,
        metrics.process.shutdown_forced.load(Relaxed),
    );
    sample(&mut out, &READY, u8::from(metrics.ready()));
    header(&mut out, &TELEMETRY_DROPPED);
    for signal in Signal::ALL {
        let _ = writeln!(
            out,
            "glasshouse_telemetry_dropped_total{{signal=\"{}\"}} {}",
            signal.as_str(),
            dropped(signal)
        );
    }

    if let Some(v) = extra.cpu_seconds {
        sample(&mut out, &PROCESS_CPU, v);
    }
    if let Some(v) = extra.resident_memory_bytes {
        sample(&mut out, &PROCESS_RESIDENT_MEMORY, v);
    }
    if let Some(v) = extra.open_fds {
        sample(&mut out, &PROCESS_OPEN_FDS, v);
    }
    if let Some(v) = extra.start_time_seconds {
        sample(&mut out, &PROCESS_START_TIME, v);
    }
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
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
