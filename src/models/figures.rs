//! The figures of the process models' children, relayed to the parent:
//! a child counts into a fresh metrics shard of its own and, at the start
//! and the end of every connection, sends what changed since its last
//! report as one datagram over a Unix datagram socket the parent made
//! before forking. The parent adds each report to the shard of that child
//! (its slot), so `/metrics`, `/api/stats` and the OTLP export, all read
//! from the parent's shards, count what children served. A datagram is
//! delivered whole or not at all, so reports of many children never mix.
//!
//! Limits: a connection's requests reach the parent when it closes (and
//! its being open when it starts); the gauges a child holds (requests in
//! progress, WebSockets open) reach it as those reports do; a child killed
//! by a signal loses what it had not reported yet.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::Ordering::{AcqRel, Relaxed};
use std::sync::Arc;

use crate::engine::Limit;
use crate::reactor::Lifecycle;
use crate::telemetry::metrics::{
    Metrics, ProcessMetrics, Series, SeriesKey, WorkerMetrics, BUCKETS, PROCESS_COUNTERS,
};

/// Largest report read; a report is a few lines per labelled series.
const MAX_REPORT: usize = 64 * 1024;

/// Counters and gauges of a shard, then the lifecycle counts of a drain,
/// in the order they are written.
/// The shard's scalar counters and the lifecycle counts, then one field
/// per limit of `glasshouse_limit_refusals_total`, then the process-wide
/// counters (compression saved, TLS handshakes, TLS failures by reason,
/// kernel TLS hand-offs by result).
const BASE: usize = 13;
const LIMITS: usize = BASE + Limit::ALL.len();
const FIELDS: usize = LIMITS + PROCESS_COUNTERS;

/// A slot's share of the process-wide counters, as the parent summed it.
type ProcessShare = [u64; PROCESS_COUNTERS];

/// A shard's figures (and the drain counts) at one moment, or the
/// difference of two such moments.
#[derive(Clone, Debug, PartialEq)]
struct Figures {
    fields: [i64; FIELDS],
    buckets: [u64; BUCKETS],
    series: HashMap<SeriesKey, Series>,
}

// By hand: `Default` is derived for arrays of at most 32.
impl Default for Figures {
    fn default() -> Figures {
        Figures {
            fields: [0; FIELDS],
            buckets: [0; BUCKETS],
            series: HashMap::new(),
        }
    }
}

impl Figures {
    fn read(m: &WorkerMetrics, life: &Lifecycle, p: &ProcessMetrics) -> Figures {
        let base: [i64; BASE] = [
            m.connections_open.load(Relaxed),
            m.connections_accepted.load(Relaxed) as i64,
            m.connections_rejected.load(Relaxed) as i64,
            m.websockets_open.load(Relaxed),
            m.requests_total.load(Relaxed) as i64,
            m.active_requests.load(Relaxed),
            m.bytes_sent.load(Relaxed) as i64,
            m.ws_received.load(Relaxed) as i64,
            m.ws_sent.load(Relaxed) as i64,
            life.in_flight.load(Relaxed) as i64,
            life.drained.load(Relaxed) as i64,
            life.idle_closed.load(Relaxed) as i64,
            life.forced.load(Relaxed) as i64,
        ];
        let mut fields = [0; FIELDS];
        fields[..BASE].copy_from_slice(&base);
        for (f, a) in fields[BASE..LIMITS].iter_mut().zip(m.limit_refusals.iter()) {
            *f = a.load(Relaxed) as i64;
        }
        for (f, a) in fields[LIMITS..].iter_mut().zip(p.counters()) {
            *f = a.load(Relaxed) as i64;
        }
        let mut buckets = [0; BUCKETS];
        for (b, a) in buckets.iter_mut().zip(m.duration_buckets.iter()) {
            *b = a.load(Relaxed);
        }
        // One key may stand for two series of the shard: the same labels
        // with the parent's copy of a name and with the child's own.
        let mut series: HashMap<SeriesKey, Series> = HashMap::new();
        for (k, s) in m.series_snapshot() {
            let e = series.entry(k).or_default();
            for (a, b) in e.buckets.iter_mut().zip(s.buckets.iter()) {
                *a += b;
            }
            e.sum += s.sum;
            e.count += s.count;
        }
        Figures {
            fields,
            buckets,
            series,
        }
    }

    /// What changed from `before` to `self`.
    fn minus(&self, before: &Figures) -> Figures {
        let mut d = Figures::default();
        for i in 0..FIELDS {
            d.fields[i] = self.fields[i] - before.fields[i];
        }
        for i in 0..BUCKETS {
            d.buckets[i] = self.buckets[i].saturating_sub(before.buckets[i]);
        }
        for (k, now) in &self.series {
            let was = before.series.get(k).cloned().unwrap_or_default();
            if now.count == was.count {
                continue;
            }
            let mut s = Series::default();
            for i in 0..BUCKETS {
                s.buckets[i] = now.buckets[i].saturating_sub(was.buckets[i]);
            }
            s.sum = now.sum - was.sum;
            s.count = now.count.saturating_sub(was.count);
            d.series.insert(*k, s);
        }
        d
    }

    fn is_empty(&self) -> bool {
        self.fields.iter().all(|&f| f == 0) && self.series.is_empty()
    }

    /// Text, one record a line: `slot`, the fields, the buckets, then a
    /// line per series (method, route, status, sum, count, buckets), tab
    /// separated (routes are patterns with no tab).
    fn encode(&self, slot: usize) -> String {
        let join = |v: &mut dyn Iterator<Item = String>| v.collect::<Vec<_>>().join("\t");
        let mut out = format!("{slot}\n");
        out += &join(&mut self.fields.iter().map(|f| f.to_string()));
        out.push('\n');
        out += &join(&mut self.buckets.iter().map(|b| b.to_string()));
        out.push('\n');
        for ((method, route, status), s) in &self.series {
            out += &format!("{method}\t{route}\t{status}\t{}\t{}\t", s.sum, s.count);
            out += &join(&mut s.buckets.iter().map(|b| b.to_string()));
            out.push('\n');
        }
        out
    }

    fn decode(text: &str, names: &mut Names) -> Option<(usize, Figures)> {
        let mut lines = text.lines();
        let slot = lines.next()?.parse().ok()?;
        let mut f = Figures::default();
        let fields: Vec<i64> = numbers(lines.next()?)?;
        let buckets: Vec<u64> = numbers(lines.next()?)?;
        f.fields = fields.try_into().ok()?;
        f.buckets = buckets.try_into().ok()?;
        for line in lines {
            let mut cols = line.splitn(6, '\t');
            let method = names.intern(cols.next()?);
            let route = names.intern(cols.next()?);
            let status = cols.next()?.parse().ok()?;
            let sum = cols.next()?.parse().ok()?;
            let count = cols.next()?.parse().ok()?;
            let buckets: Vec<u64> = numbers(cols.next()?)?;
            let s = Series {
                buckets: buckets.try_into().ok()?,
                sum,
                count,
            };
            f.series.insert((method, route, status), s);
        }
        Some((slot, f))
    }

    /// Makes a shard hold these figures (totals, not a report).
    fn store(&self, m: &WorkerMetrics) {
        let f = &self.fields;
        m.connections_open.store(f[0], Relaxed);
        m.connections_accepted.store(f[1] as u64, Relaxed);
        m.connections_rejected.store(f[2] as u64, Relaxed);
        m.websockets_open.store(f[3], Relaxed);
        m.requests_total.store(f[4] as u64, Relaxed);
        m.active_requests.store(f[5], Relaxed);
        m.bytes_sent.store(f[6] as u64, Relaxed);
        m.ws_received.store(f[7] as u64, Relaxed);
        m.ws_sent.store(f[8] as u64, Relaxed);
        for (a, f) in m.limit_refusals.iter().zip(&f[BASE..LIMITS]) {
            a.store(*f as u64, Relaxed);
        }
        for (a, b) in m.duration_buckets.iter().zip(self.buckets.iter()) {
            a.store(*b, Relaxed);
        }
        m.replace_series(self.series.clone());
    }

    /// Adds a report to a parent's shard, lifecycle and process counts.
    fn apply(&self, m: &WorkerMetrics, life: &Lifecycle, p: &ProcessMetrics) {
        let base: [i64; BASE] = self.fields[..BASE].try_into().expect("BASE fields");
        let [open, accepted, rejected, ws_open, requests, active, bytes, ws_rx, ws_tx, in_flight, drained, idle, forced] =
            base;
        for (a, f) in m.limit_refusals.iter().zip(&self.fields[BASE..LIMITS]) {
            a.fetch_add(*f as u64, Relaxed);
        }
        for (a, f) in p.counters().zip(&self.fields[LIMITS..]) {
            a.fetch_add(*f as u64, Relaxed);
        }
        m.connections_open.fetch_add(open, Relaxed);
        m.connections_accepted.fetch_add(accepted as u64, Relaxed);
        m.connections_rejected.fetch_add(rejected as u64, Relaxed);
        m.websockets_open.fetch_add(ws_open, Relaxed);
        m.requests_total.fetch_add(requests as u64, Relaxed);
        m.active_requests.fetch_add(active, Relaxed);
        m.bytes_sent.fetch_add(bytes as u64, Relaxed);
        m.ws_received.fetch_add(ws_rx as u64, Relaxed);
        m.ws_sent.fetch_add(ws_tx as u64, Relaxed);
        for (a, b) in m.duration_buckets.iter().zip(self.buckets.iter()) {
            a.fetch_add(*b, Relaxed);
        }
        for (k, s) in &self.series {
            m.add_series(*k, s);
        }
        life.in_flight.fetch_add(in_flight as u64, AcqRel);
        life.drained.fetch_add(drained as u64, AcqRel);
        life.idle_closed.fetch_add(idle as u64, AcqRel);
        life.forced.fetch_add(forced as u64, AcqRel);
    }
}

/// The parent's shards, copied to each preforked child, which keeps them
/// in its copies of the shards of the other slots: so the stats a child
/// answers count what its siblings served too (as of the last copy). Each
/// shard's record carries its slot's share of the process-wide counters
/// (TLS handshakes, compression saved), which the child sums over the
/// other slots into its `relayed` counters. Only shards that changed since
/// the last copy are sent, several to a datagram, each datagram under
/// [`MIRROR_DATAGRAM`].
pub struct Mirror {
    names: Names,
    buf: Vec<u8>,
    /// The parent's side: each shard as last sent.
    sent: Vec<String>,
    /// The child's side: each other slot's share as last copied.
    shares: Vec<ProcessShare>,
}

/// Records of one mirror datagram are separated by this byte.
const RECORD: char = '\u{1e}';

/// Largest mirror datagram the parent builds (well under the default
/// socket buffer, so a send to a reading child never fails for size).
const MIRROR_DATAGRAM: usize = 32 * 1024;

impl Mirror {
    pub fn new() -> Mirror {
        Mirror {
            names: Names::default(),
            buf: vec![0; MAX_REPORT],
            sent: Vec::new(),
            shares: Vec::new(),
        }
    }

    /// The parent's side: the shards that changed, to every child (a child
    /// that is not reading loses copies; the parent never blocks).
    /// `shares` is each slot's share of the process-wide counters
    /// ([`Inbox::shares`]).
    pub fn send<'a>(
        &mut self,
        to: impl Iterator<Item = &'a UnixDatagram> + Clone,
        shards: &[Arc<WorkerMetrics>],
        life: &Lifecycle,
        shares: &[ProcessShare],
    ) {
        self.sent.resize(shards.len(), String::new());
        // Each datagram with the slots it carries.
        let mut datagrams: Vec<(String, Vec<usize>)> = vec![Default::default()];
        let no_process = ProcessMetrics::default();
        for (slot, m) in shards.iter().enumerate() {
            let mut figures = Figures::read(m, life, &no_process);
            if let Some(share) = shares.get(slot) {
                for (f, n) in figures.fields[LIMITS..].iter_mut().zip(share) {
                    *f = *n as i64;
                }
            }
            let text = figures.encode(slot);
            if text == self.sent[slot] {
                continue;
            }
            let (last, _) = datagrams.last().expect("one datagram");
            if !last.is_empty() && last.len() + text.len() > MIRROR_DATAGRAM {
                datagrams.push(Default::default());
            }
            let (last, slots) = datagrams.last_mut().expect("one datagram");
            last.push_str(&text);
            last.push(RECORD);
            slots.push(slot);
            self.sent[slot] = text;
        }
        for (d, slots) in datagrams.iter().filter(|(d, _)| !d.is_empty()) {
            let mut lost = false;
            for child in to.clone() {
                lost |= child.send(d.as_bytes()).is_err();
            }
            // A child whose buffer was full missed these shards: they go
            // again with the next copy, or that child would keep them
            // stale until they next change.
            if lost {
                for &slot in slots {
                    self.sent[slot].clear();
                }
            }
        }
    }

    /// The child's side: stores every copy waiting on `from`, except its
    /// own slot's, which it keeps itself, and sets `process.relayed` to
    /// the other slots' shares of the process-wide counters.
    pub fn receive(
        &mut self,
        from: &UnixDatagram,
        shards: &[Arc<WorkerMetrics>],
        own: usize,
        process: &ProcessMetrics,
    ) {
        self.shares.resize(shards.len(), [0; PROCESS_COUNTERS]);
        let mut changed = false;
        while let Ok(n) = from.recv(&mut self.buf) {
            let text = String::from_utf8_lossy(&self.buf[..n]).into_owned();
            for record in text.split(RECORD).filter(|r| !r.is_empty()) {
                let Some((slot, f)) = Figures::decode(record, &mut self.names) else {
                    continue;
                };
                if slot == own {
                    continue;
                }
                if let (Some(m), Some(share)) = (shards.get(slot), self.shares.get_mut(slot)) {
                    f.store(m);
                    for (s, v) in share.iter_mut().zip(&f.fields[LIMITS..]) {
                        *s = (*v).max(0) as u64;
                    }
                    changed = true;
                }
            }
        }
        if changed {
            for (i, relayed) in process.relayed.iter().enumerate() {
                let sum = self.shares.iter().map(|s| s[i]).sum();
                relayed.store(sum, Relaxed);
            }
        }
    }
}

impl Default for Mirror {
    fn default() -> Self {
        Mirror::new()
    }
}

fn numbers<T: std::str::FromStr>(line: &str) -> Option<Vec<T>> {
    line.split('\t').map(|n| n.parse().ok()).collect()
}

/// Label values received from children, each kept once for the life of
/// the process: they are method labels and route patterns, a small fixed
/// set, so the table stays small.
#[derive(Default)]
struct Names(HashMap<String, &'static str>);

impl Names {
    fn intern(&mut self, s: &str) -> &'static str {
        if let Some(v) = self.0.get(s) {
            return v;
        }
        let v: &'static str = Box::leak(s.to_string().into_boxed_str());
        self.0.insert(s.to_string(), v);
        v
    }
}

/// The two ends: the parent's, and the one every child inherits.
pub fn channel() -> io::Result<(Inbox, UnixDatagram)> {
    let (rx, tx) = UnixDatagram::pair()?;
    rx.set_nonblocking(true)?;
    Ok((
        Inbox {
            rx,
            names: Names::default(),
            buf: vec![0; MAX_REPORT],
            shares: Vec::new(),
        },
        tx,
    ))
}

/// The parent's end: reports from every child.
pub struct Inbox {
    rx: UnixDatagram,
    names: Names,
    buf: Vec<u8>,
    /// Each slot's share of the process-wide counters: what the children
    /// of that slot reported, summed (for the mirror).
    shares: Vec<ProcessShare>,
}

impl Inbox {
    /// Adds every waiting report to the shard of its slot.
    pub fn collect(&mut self, shards: &[Arc<WorkerMetrics>], life: &Lifecycle, p: &ProcessMetrics) {
        self.shares.resize(shards.len(), [0; PROCESS_COUNTERS]);
        while let Ok(n) = self.rx.recv(&mut self.buf) {
            let text = String::from_utf8_lossy(&self.buf[..n]).into_owned();
            match Figures::decode(&text, &mut self.names) {
                Some((slot, f)) => match (shards.get(slot), self.shares.get_mut(slot)) {
                    (Some(m), Some(share)) => {
                        f.apply(m, life, p);
                        for (s, d) in share.iter_mut().zip(&f.fields[LIMITS..]) {
                            *s = s.saturating_add_signed(*d);
                        }
                    }
                    _ => tracing::warn!(slot, "figures from a child for no shard"),
                },
                None => tracing::warn!("unreadable figures from a child"),
            }
        }
    }
}

impl Inbox {
    /// Each slot's share of the process-wide counters, for [`Mirror::send`].
    pub fn shares(&self) -> &[ProcessShare] {
        &self.shares
    }
}

impl AsFd for Inbox {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.rx.as_fd()
    }
}

/// A child's end: what it counted since its last report.
pub struct Reporter {
    tx: UnixDatagram,
    slot: usize,
    metrics: Arc<WorkerMetrics>,
    life: Arc<Lifecycle>,
    /// The child's copy of the process-wide counters.
    all: Arc<Metrics>,
    sent: Figures,
}

impl Reporter {
    /// `metrics` is the child's own fresh shard; the lifecycle counts of
    /// the child's copy are zeroed, so that all it reports is its own.
    pub fn new(
        tx: UnixDatagram,
        slot: usize,
        metrics: Arc<WorkerMetrics>,
        life: Arc<Lifecycle>,
        all: Arc<Metrics>,
    ) -> Reporter {
        for c in [
            &life.in_flight,
            &life.drained,
            &life.idle_closed,
            &life.forced,
        ] {
            c.store(0, Relaxed);
        }
        life.open.store(0, Relaxed);
        let sent = Figures::read(&metrics, &life, &all.process);
        Reporter {
            tx,
            slot,
            metrics,
            life,
            all,
            sent,
        }
    }

    /// A connection is about to be served: tells the parent now that it is
    /// open. The engine counts it when serving starts, and the baseline
    /// moves with this report, so the next one does not count it twice.
    pub fn announce(&mut self) {
        let mut d = Figures::default();
        d.fields[0] = 1;
        d.fields[1] = 1;
        if self.tx.send(d.encode(self.slot).as_bytes()).is_ok() {
            self.sent.fields[0] += 1;
            self.sent.fields[1] += 1;
        }
    }

    /// Sends what changed since the last report, if anything did. A report
    /// that cannot be sent (the parent is gone) is dropped.
    /// True when something had changed.
    pub fn report(&mut self) -> bool {
        let now = Figures::read(&self.metrics, &self.life, &self.all.process);
        let delta = now.minus(&self.sent);
        if delta.is_empty() {
            return false;
        }
        if self.tx.send(delta.encode(self.slot).as_bytes()).is_ok() {
            self.sent = now;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::ServerState;

    #[test]
    fn a_report_carries_exactly_what_changed() {
        let life = Arc::new(Lifecycle::new(Arc::new(ServerState::default())).unwrap());
        let child = Arc::new(WorkerMetrics::default());
        let (mut inbox, tx) = channel().unwrap();
        let all = Metrics::new(1);
        let mut reporter = Reporter::new(tx, 1, child.clone(), life.clone(), all.clone());
        child.connection_accepted();
        child.limit_refused(Limit::SendTimeout);
        all.process.tls.handshakes.fetch_add(2, Relaxed);
        child.request_started();
        child.request_finished("GET", "/healthz", 200, 0.002);
        child.bytes_sent(120);
        reporter.report();
        // Nothing new: no second datagram.
        reporter.report();
        child.connection_closed();
        reporter.report();

        let parent_life = Lifecycle::new(Arc::new(ServerState::default())).unwrap();
        let shards = [
            Arc::new(WorkerMetrics::default()),
            Arc::new(WorkerMetrics::default()),
        ];
        let parent = ProcessMetrics::default();
        inbox.collect(&shards, &parent_life, &parent);
        assert_eq!(parent.tls.handshakes.load(Relaxed), 2);
        let m = &shards[1];
        let i = Limit::ALL
            .iter()
            .position(|l| *l == Limit::SendTimeout)
            .unwrap();
        assert_eq!(m.limit_refusals[i].load(Relaxed), 1);
        assert_eq!(m.requests_total.load(Relaxed), 1);
        assert_eq!(m.connections_accepted.load(Relaxed), 1);
        assert_eq!(m.connections_open.load(Relaxed), 0);
        assert_eq!(m.active_requests.load(Relaxed), 0);
        assert_eq!(m.bytes_sent.load(Relaxed), 120);
        let series = m.series_snapshot();
        assert_eq!(series.len(), 1);
        assert_eq!(
            (series[0].0 .0, series[0].0 .1, series[0].0 .2),
            ("GET", "/healthz", 200)
        );
        assert_eq!(series[0].1.count, 1);
        assert_eq!(shards[0].requests_total.load(Relaxed), 0);
    }

    /// The parent sums each slot's process-wide counts as reported, and a
    /// mirrored child sees the other slots' shares in `relayed`, never its
    /// own (which it counts itself).
    #[test]
    fn copies_carry_each_slots_share_of_the_process_counters() {
        let life = Arc::new(Lifecycle::new(Arc::new(ServerState::default())).unwrap());
        let (mut inbox, tx) = channel().unwrap();
        let child_all = Metrics::new(2);
        let mut reporter = Reporter::new(
            tx,
            1,
            child_all.workers[1].clone(),
            life.clone(),
            child_all.clone(),
        );
        child_all.process.tls.handshake_completed(false);
        child_all.process.tls.handshake_completed(true);
        child_all.process.tls.handshake_failed("closed");
        reporter.report();

        let parent = Metrics::new(2);
        inbox.collect(&parent.workers, &life, &parent.process);
        let handshakes = ProcessMetrics::TLS_HANDSHAKES;
        let closed = ProcessMetrics::tls_failure(1);
        assert_eq!(inbox.shares()[1][handshakes], 2);
        assert_eq!(inbox.shares()[1][closed], 1);
        assert_eq!(inbox.shares()[1][ProcessMetrics::TLS_RESUMED], 1);
        assert_eq!(inbox.shares()[0][handshakes], 0);

        for (own, want) in [(0, 2), (1, 0)] {
            let (to_child, at_child) = UnixDatagram::pair().unwrap();
            at_child.set_nonblocking(true).unwrap();
            Mirror::new().send(
                std::iter::once(&to_child),
                &parent.workers,
                &life,
                inbox.shares(),
            );
            let sibling = Metrics::new(2);
            let mut copies = Mirror::new();
            copies.receive(&at_child, &sibling.workers, own, &sibling.process);
            assert_eq!(sibling.process.total(handshakes), want, "own slot {own}");
            assert_eq!(sibling.process.tls.handshakes.load(Relaxed), 0);
        }
    }
}
