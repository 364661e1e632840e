//! The metric catalogue: every metric glasshouse exposes, written once, with
//! its OpenTelemetry name, its Prometheus name, kind, unit, description and
//! labels. The OTLP instruments (`mod.rs`, `export.rs`) and the `/metrics`
//! families (`prometheus.rs`) are both built from these entries, so the two
//! outputs cannot drift apart; the test below checks that each Prometheus
//! name is what Prometheus' own OTLP translation makes of the OTel name, so
//! a dashboard reads the same series whichever way they arrived.
//!
//! What a metric measures lives in `metrics.rs` (the shards); this file only
//! names and describes.

/// What kind of instrument a metric is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic sum: an OTLP observable counter, a Prometheus `counter`
    /// (whose name ends in `_total`).
    Counter,
    /// A sum that goes up and down (an OTLP observable up-down counter); a
    /// Prometheus `gauge`.
    UpDownCounter,
    /// A sampled value (an OTLP observable gauge); a Prometheus `gauge`.
    Gauge,
    /// Explicit-bucket histogram of `metrics::DURATION_BUCKETS`.
    Histogram,
}

impl Kind {
    /// The `# TYPE` word of the Prometheus text format.
    pub fn prometheus_type(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::UpDownCounter | Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricDef {
    /// OpenTelemetry instrument name (semantic conventions where they exist).
    pub name: &'static str,
    /// Name on `/metrics`, with the unit and `_total` suffixes.
    pub prometheus: &'static str,
    pub kind: Kind,
    /// UCUM unit, `""` for none. Counters carry none on purpose: a unit
    /// would add a suffix (`By` makes `_bytes`) to the translated name.
    pub unit: &'static str,
    /// `# HELP` on `/metrics`, the description over OTLP.
    pub description: &'static str,
    /// OTel attribute keys; on `/metrics` the label is the key with dots
    /// turned into underscores.
    pub labels: &'static [&'static str],
    /// Sent over OTLP too (the `process_*` figures are `/metrics` only).
    pub otlp: bool,
}

const fn def(
    name: &'static str,
    prometheus: &'static str,
    kind: Kind,
    unit: &'static str,
    description: &'static str,
    labels: &'static [&'static str],
) -> MetricDef {
    MetricDef {
        name,
        prometheus,
        kind,
        unit,
        description,
        labels,
        otlp: true,
    }
}

pub const REQUEST_DURATION: MetricDef = def(
    "http.server.request.duration",
    "http_server_request_duration_seconds",
    Kind::Histogram,
    "s",
    "Duration of HTTP server requests.",
    &[
        "http.request.method",
        "http.response.status_code",
        "http.route",
    ],
);
pub const ACTIVE_REQUESTS: MetricDef = def(
    "http.server.active_requests",
    "http_server_active_requests",
    Kind::UpDownCounter,
    "{request}",
    "Number of active HTTP server requests.",
    &[],
);
pub const CONNECTIONS_OPEN: MetricDef = def(
    "glasshouse.connections.open",
    "glasshouse_connections_open",
    Kind::UpDownCounter,
    "",
    "Client connections currently open.",
    &[],
);
pub const CONNECTIONS_ACCEPTED: MetricDef = def(
    "glasshouse.connections.accepted",
    "glasshouse_connections_accepted_total",
    Kind::Counter,
    "",
    "Client connections accepted.",
    &[],
);
pub const CONNECTIONS_REJECTED: MetricDef = def(
    "glasshouse.connections.rejected",
    "glasshouse_connections_rejected_total",
    Kind::Counter,
    "",
    "Client connections refused (over --max-connections or draining).",
    &[],
);
pub const BYTES_SENT: MetricDef = def(
    "glasshouse.bytes_sent",
    "glasshouse_bytes_sent_total",
    Kind::Counter,
    "",
    "Bytes written to client sockets.",
    &[],
);
pub const WEBSOCKETS_OPEN: MetricDef = def(
    "glasshouse.websockets.open",
    "glasshouse_websockets_open",
    Kind::UpDownCounter,
    "",
    "WebSocket sessions currently open.",
    &[],
);
pub const WEBSOCKET_MESSAGES: MetricDef = def(
    "glasshouse.websocket.messages",
    "glasshouse_websocket_messages_total",
    Kind::Counter,
    "",
    "WebSocket messages by direction.",
    &["direction"],
);
pub const LIMIT_REFUSALS: MetricDef = def(
    "glasshouse.limit.refusals",
    "glasshouse_limit_refusals_total",
    Kind::Counter,
    "",
    "Requests or connections cut off because the peer ran into a bound, by limit.",
    &["limit"],
);
pub const WORKER_REQUESTS: MetricDef = def(
    "glasshouse.worker.requests",
    "glasshouse_worker_requests_total",
    Kind::Counter,
    "",
    "Requests completed by each worker.",
    &["worker"],
);
pub const SHUTDOWN_DRAINED: MetricDef = def(
    "glasshouse.shutdown.drained",
    "glasshouse_shutdown_drained_total",
    Kind::Counter,
    "",
    "Connections that finished by themselves during a graceful drain.",
    &[],
);
pub const SHUTDOWN_FORCED: MetricDef = def(
    "glasshouse.shutdown.forced",
    "glasshouse_shutdown_forced_total",
    Kind::Counter,
    "",
    "Connections closed at the drain deadline.",
    &[],
);
pub const COMPRESSION_SAVED: MetricDef = def(
    "glasshouse.compression.saved",
    "glasshouse_compression_saved_bytes_total",
    Kind::Counter,
    "By",
    "Response bytes saved by on-the-fly compression (identity size minus compressed size).",
    &[],
);
pub const TLS_HANDSHAKES: MetricDef = def(
    "glasshouse.tls.handshakes",
    "glasshouse_tls_handshakes_total",
    Kind::Counter,
    "",
    "TLS handshakes completed.",
    &[],
);
pub const TLS_HANDSHAKES_RESUMED: MetricDef = def(
    "glasshouse.tls.handshakes_resumed",
    "glasshouse_tls_handshakes_resumed_total",
    Kind::Counter,
    "",
    "TLS handshakes completed that resumed an earlier session (a subset of glasshouse_tls_handshakes_total).",
    &[],
);
pub const TLS_HANDSHAKE_FAILURES: MetricDef = def(
    "glasshouse.tls.handshake_failures",
    "glasshouse_tls_handshake_failures_total",
    Kind::Counter,
    "",
    "TLS handshakes that failed, by reason (timeout, closed, incompatible, certificate_rejected, peer_alert, no_alpn, protocol, other).",
    &["reason"],
);
pub const TLS_KTLS_HANDOFFS: MetricDef = def(
    "glasshouse.tls.ktls_handoffs",
    "glasshouse_tls_ktls_handoffs_total",
    Kind::Counter,
    "",
    "Kernel TLS hand-offs after a handshake, by result (ok, unsupported_suite, failed).",
    &["result"],
);
pub const TCP_PACKETS: MetricDef = def(
    "glasshouse.tcp.packets",
    "glasshouse_tcp_packets_total",
    Kind::Counter,
    "",
    "Under --stack user: IP packets the userland stack read from and wrote to its link, by direction (in, out).",
    &["direction"],
);
pub const TCP_DROPPED: MetricDef = def(
    "glasshouse.tcp.dropped",
    "glasshouse_tcp_dropped_total",
    Kind::Counter,
    "",
    "Under --stack user: packets the userland stack dropped, by reason (bad_ip, bad_tcp, not_ours, fragment, syn_queue_full).",
    &["reason"],
);
pub const TCP_SENT_CONTROL: MetricDef = def(
    "glasshouse.tcp.control_sent",
    "glasshouse_tcp_control_sent_total",
    Kind::Counter,
    "",
    "Under --stack user: control packets the userland stack sent, by kind (rst, challenge_ack, icmp_echo_reply, icmp_unreachable), and challenge ACKs withheld by the rate limit (challenge_ack_suppressed).",
    &["kind"],
);
pub const TCP_RETRANSMISSIONS: MetricDef = def(
    "glasshouse.tcp.retransmissions",
    "glasshouse_tcp_retransmissions_total",
    Kind::Counter,
    "",
    "Under --stack user: TCP segments the userland stack sent again (timeouts and fast retransmits).",
    &[],
);
pub const TCP_OUT_OF_ORDER: MetricDef = def(
    "glasshouse.tcp.out_of_order",
    "glasshouse_tcp_out_of_order_total",
    Kind::Counter,
    "",
    "Under --stack user: TCP segments that arrived ahead of a hole and were held until it filled.",
    &[],
);
pub const TCP_ESTABLISHED: MetricDef = def(
    "glasshouse.tcp.established",
    "glasshouse_tcp_established_total",
    Kind::Counter,
    "",
    "Under --stack user: TCP connections that reached ESTABLISHED.",
    &[],
);
pub const TCP_TRANSITIONS: MetricDef = def(
    "glasshouse.tcp.transitions",
    "glasshouse_tcp_transitions_total",
    Kind::Counter,
    "",
    "Under --stack user: TCP state changes of the userland stack's connections, by the RFC 9293 state entered.",
    &["state"],
);
pub const TCP_SRTT: MetricDef = def(
    "glasshouse.tcp.srtt",
    "glasshouse_tcp_srtt_seconds",
    Kind::Gauge,
    "s",
    "Under --stack user: smoothed round-trip time of the userland stack's connections that have a sample, as its driver last copied them: stat = min, mean, max (0 with none).",
    &["stat"],
);
pub const TCP_RTO: MetricDef = def(
    "glasshouse.tcp.rto",
    "glasshouse_tcp_rto_seconds",
    Kind::Gauge,
    "s",
    "Under --stack user: retransmission timeout (RFC 6298, backoff included) of the same connections: stat = min, mean, max.",
    &["stat"],
);
pub const TCP_CWND: MetricDef = def(
    "glasshouse.tcp.cwnd",
    "glasshouse_tcp_cwnd_bytes",
    Kind::Gauge,
    "By",
    "Under --stack user: congestion window (NewReno) of the same connections: stat = min, mean, max.",
    &["stat"],
);
pub const TCP_LINK_FRAMES: MetricDef = def(
    "glasshouse.tcp.link.frames",
    "glasshouse_tcp_link_frames_total",
    Kind::Counter,
    "",
    "Under --stack user on a packet link: Ethernet frames received, by kind: ipv4 (handed to the stack), arp, malformed, other_host (another station's MAC), other_ethertype.",
    &["kind"],
);
pub const TCP_ARP: MetricDef = def(
    "glasshouse.tcp.arp",
    "glasshouse_tcp_arp_total",
    Kind::Counter,
    "",
    "Under --stack user on a packet link: ARP and its neighbour table, by event: request_sent, reply_sent, conflict (another station claims our address), learned, expired, failed (unanswered after every try), table_full, packet_dropped (held for a next hop that did not resolve, or past the hold queue).",
    &["event"],
);
pub const TCP_ARP_TABLE: MetricDef = def(
    "glasshouse.tcp.arp.table",
    "glasshouse_tcp_arp_table",
    Kind::Gauge,
    "",
    "Under --stack user on a packet link: the neighbour table, what = entries (neighbours known) or held (packets waiting for a next hop to resolve).",
    &["what"],
);
pub const TCP_CONNECTIONS: MetricDef = def(
    "glasshouse.tcp.connections",
    "glasshouse_tcp_connections",
    Kind::Gauge,
    "",
    "Under --stack user: TCP connections of the userland stack by RFC 9293 state, as its driver last copied them (every 200 ms).",
    &["state"],
);
pub const READY: MetricDef = def(
    "glasshouse.ready",
    "glasshouse_ready",
    Kind::Gauge,
    "",
    "1 while the server accepts new connections, 0 otherwise.",
    &[],
);
pub const TELEMETRY_DROPPED: MetricDef = def(
    "glasshouse.telemetry.dropped",
    "glasshouse_telemetry_dropped_total",
    Kind::Counter,
    "",
    "Telemetry items dropped because the OTLP collector was down, slow or refusing.",
    &["signal"],
);

/// The figures Prometheus users expect from any process; read from
/// `/proc/self` at scrape time and not sent over OTLP (a collector's
/// host-metrics receiver does that job there).
const fn process(
    name: &'static str,
    prometheus: &'static str,
    kind: Kind,
    unit: &'static str,
    description: &'static str,
) -> MetricDef {
    MetricDef {
        name,
        prometheus,
        kind,
        unit,
        description,
        labels: &[],
        otlp: false,
    }
}

pub const PROCESS_CPU: MetricDef = process(
    "process.cpu.time",
    "process_cpu_seconds_total",
    Kind::Counter,
    "s",
    "User and system CPU time spent, seconds.",
);
pub const PROCESS_RESIDENT_MEMORY: MetricDef = process(
    "process.memory.usage",
    "process_resident_memory_bytes",
    Kind::Gauge,
    "By",
    "Resident memory size, bytes.",
);
pub const PROCESS_OPEN_FDS: MetricDef = process(
    "process.open_file_descriptor.count",
    "process_open_fds",
    Kind::Gauge,
    "{file_descriptor}",
    "Open file descriptors.",
);
pub const PROCESS_START_TIME: MetricDef = process(
    "process.start_time",
    "process_start_time_seconds",
    Kind::Gauge,
    "s",
    "Start time of the process since the Unix epoch, seconds.",
);

/// Every metric, in `/metrics` order.
pub const ALL: [MetricDef; 37] = [
    REQUEST_DURATION,
    ACTIVE_REQUESTS,
    CONNECTIONS_OPEN,
    CONNECTIONS_ACCEPTED,
    CONNECTIONS_REJECTED,
    BYTES_SENT,
    WEBSOCKETS_OPEN,
    WEBSOCKET_MESSAGES,
    LIMIT_REFUSALS,
    WORKER_REQUESTS,
    SHUTDOWN_DRAINED,
    SHUTDOWN_FORCED,
    COMPRESSION_SAVED,
    TLS_HANDSHAKES,
    TLS_HANDSHAKES_RESUMED,
    TLS_HANDSHAKE_FAILURES,
    TLS_KTLS_HANDOFFS,
    TCP_PACKETS,
    TCP_DROPPED,
    TCP_SENT_CONTROL,
    TCP_RETRANSMISSIONS,
    TCP_OUT_OF_ORDER,
    TCP_ESTABLISHED,
    TCP_TRANSITIONS,
    TCP_SRTT,
    TCP_RTO,
    TCP_CWND,
    TCP_LINK_FRAMES,
    TCP_ARP,
    TCP_ARP_TABLE,
    TCP_CONNECTIONS,
    READY,
    TELEMETRY_DROPPED,
    PROCESS_CPU,
    PROCESS_RESIDENT_MEMORY,
    PROCESS_OPEN_FDS,
    PROCESS_START_TIME,
];

/// The Prometheus label of an OTel attribute key.
pub fn prometheus_label(key: &str) -> String {
    key.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Prometheus' OTLP ingestion (underscore escaping with suffixes)
    /// calls an OTel metric.
    fn translated(d: &MetricDef) -> String {
        let mut name = d.name.replace('.', "_");
        match d.unit {
            "s" => name.push_str("_seconds"),
            "By" => name.push_str("_bytes"),
            // Annotations in braces and no unit add nothing.
            _ => {}
        }
        if d.kind == Kind::Counter {
            name.push_str("_total");
        }
        name
    }

    #[test]
    fn prometheus_names_are_the_otlp_translation() {
        for d in ALL.iter().filter(|d| d.otlp) {
            assert_eq!(d.prometheus, translated(d), "{}", d.name);
        }
    }

    #[test]
    fn names_are_unique_and_described() {
        for (i, a) in ALL.iter().enumerate() {
            assert!(!a.description.is_empty(), "{}", a.name);
            assert!(a.description.ends_with('.'), "{}", a.name);
            for b in &ALL[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.prometheus, b.prometheus);
            }
        }
    }

    #[test]
    fn contract_names_are_in_the_catalogue() {
        // ../shared/contract.md, "Telemetry names".
        for name in [
            "http_server_request_duration_seconds",
            "http_server_active_requests",
            "glasshouse_connections_open",
            "glasshouse_connections_accepted_total",
            "glasshouse_connections_rejected_total",
            "glasshouse_bytes_sent_total",
            "glasshouse_websocket_messages_total",
            "glasshouse_shutdown_drained_total",
            "glasshouse_shutdown_forced_total",
        ] {
            assert!(ALL.iter().any(|d| d.prometheus == name), "{name}");
        }
        let labels: Vec<String> = REQUEST_DURATION
            .labels
            .iter()
            .map(|k| prometheus_label(k))
            .collect();
        assert_eq!(
            labels,
            [
                "http_request_method",
                "http_response_status_code",
                "http_route"
            ]
        );
    }
}
