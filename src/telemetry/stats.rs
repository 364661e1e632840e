//! The `/api/stats` (and `/ws/stats`) JSON object of `docs/api.md`, built
//! from the metric shards. Latency percentiles are estimated from the
//! duration histogram by linear interpolation inside a bucket, as
//! Prometheus' `histogram_quantile` does.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::metrics::{Metrics, BUCKETS, DURATION_BUCKETS};

/// The `q` quantile (0..=1) in seconds from non-cumulative bucket counts,
/// `None` when there is no observation. Observations above the last finite
/// bound are reported as that bound.
pub fn quantile(buckets: &[u64; BUCKETS], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut cumulative = 0u64;
    for (i, &count) in buckets.iter().enumerate() {
        let before = cumulative;
        cumulative += count;
        if count > 0 && cumulative as f64 >= rank {
            let Some(&upper) = DURATION_BUCKETS.get(i) else {
                return DURATION_BUCKETS.last().copied();
            };
            let lower = if i == 0 { 0.0 } else { DURATION_BUCKETS[i - 1] };
            let within = (rank - before as f64) / count as f64;
            return Some(lower + (upper - lower) * within);
        }
    }
    DURATION_BUCKETS.last().copied()
}

/// Rounds milliseconds to microsecond precision for a readable JSON number.
fn ms(secs: f64) -> f64 {
    (secs * 1_000_000.0).round() / 1000.0
}

/// The `/api/stats` object. `draining` selects `"state": "draining"`.
pub fn stats_json(metrics: &Metrics, draining: bool) -> Value {
    let buckets = metrics.merged_buckets();
    let latency = if buckets.iter().sum::<u64>() == 0 {
        Value::Null
    } else {
        let p = |q| quantile(&buckets, q).map(ms);
        json!({ "p50": p(0.5), "p90": p(0.9), "p99": p(0.99) })
    };
    let timestamp_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let workers: Vec<Value> = metrics
        .workers
        .iter()
        .enumerate()
        .map(|(id, w)| {
            json!({
                "id": id,
                "requests_total": w.requests_total.load(Relaxed),
                "connections_open": w.connections_open.load(Relaxed),
                "websockets_open": w.websockets_open.load(Relaxed),
            })
        })
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "state": if draining { "draining" } else { "serving" },
        "uptime_seconds": (metrics.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        "timestamp_ms": timestamp_ms,
        "connections_open": metrics.sum_i64(|w| &w.connections_open),
        "websockets_open": metrics.sum_i64(|w| &w.websockets_open),
        "requests_total": metrics.sum_u64(|w| &w.requests_total),
        "requests_in_flight": metrics.sum_i64(|w| &w.active_requests),
        "bytes_sent_total": metrics.sum_u64(|w| &w.bytes_sent),
        "connections_rejected_total": metrics.sum_u64(|w| &w.connections_rejected),
        "latency_ms": latency,
        "workers": workers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_inside_a_bucket() {
        let mut b = [0u64; BUCKETS];
        // 100 observations in (0.5 ms, 1 ms].
        b[4] = 100;
        let p50 = quantile(&b, 0.5).expect("p50");
        assert!((p50 - 0.000_75).abs() < 1e-12, "{p50}");
        let p99 = quantile(&b, 0.99).expect("p99");
        assert!((p99 - 0.000_995).abs() < 1e-12, "{p99}");
        assert_eq!(quantile(&[0; BUCKETS], 0.5), None);
    }

    #[test]
    fn quantile_spans_buckets_and_caps_at_the_last_bound() {
        let mut b = [0u64; BUCKETS];
        b[0] = 50; // (0, 50 µs]
        b[1] = 40; // (50, 100 µs]
        b[BUCKETS - 1] = 10; // > 10 s
        let p50 = quantile(&b, 0.5).expect("p50");
        assert!((p50 - 0.000_05).abs() < 1e-12, "{p50}");
        let p90 = quantile(&b, 0.9).expect("p90");
        assert!((p90 - 0.000_1).abs() < 1e-12, "{p90}");
        assert_eq!(quantile(&b, 0.99), Some(10.0));
        // The first bucket interpolates from zero.
        let p25 = quantile(&b, 0.25).expect("p25");
        assert!((p25 - 0.000_025).abs() < 1e-12, "{p25}");
    }

    #[test]
    fn stats_has_the_documented_shape() {
        let m = Metrics::new(2);
        let v = stats_json(&m, false);
        assert_eq!(v["state"], "serving");
        assert!(v["latency_ms"].is_null());
        m.workers[1].connection_accepted();
        m.workers[1].request_started();
        m.workers[1].request_finished("GET", "/", 200, 0.000_75);
        let v = stats_json(&m, true);
        assert_eq!(v["state"], "draining");
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        for key in [
            "uptime_seconds",
            "timestamp_ms",
            "connections_open",
            "websockets_open",
            "requests_total",
            "requests_in_flight",
            "bytes_sent_total",
            "connections_rejected_total",
        ] {
            assert!(v[key].is_number(), "{key}");
        }
        assert_eq!(v["requests_total"], 1);
        assert_eq!(v["connections_open"], 1);
        let p50 = v["latency_ms"]["p50"].as_f64().expect("p50");
        assert!((p50 - 0.75).abs() < 1e-9, "{p50}");
        assert!(v["latency_ms"]["p90"].is_number() && v["latency_ms"]["p99"].is_number());
        let workers = v["workers"].as_array().expect("workers");
        assert_eq!(workers.len(), 2);
        assert_eq!(workers[1]["id"], 1);
        assert_eq!(workers[1]["requests_total"], 1);
        assert_eq!(workers[0]["websockets_open"], 0);
    }
}
