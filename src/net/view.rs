//! STATUS of the whole stack seen from outside its thread: a
//! [`StackView`] (the stack's counters, how many connections are in each
//! state, and each connection's STATUS) that the driver publishes on a
//! [`Board`] a few times a second and that `/api/tcp` reads. The stack
//! stays single-owner: readers get the last copy, never the stack.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::ether::EtherView;
use super::stack::{Counters, Stack};
use super::tcp::{State, Status};

/// Connections listed one by one at most; past it only the counts by
/// state cover them, so a document stays small under thousands.
pub const LISTED: usize = 1000;

/// A listening port: its accept queue and the handshakes under way.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListenStatus {
    pub port: u16,
    pub backlog: usize,
    /// Established connections not yet accepted.
    pub queued: usize,
    /// Connections in SYN-RECEIVED.
    pub half_open: usize,
}

/// The least, mean and largest of one figure over the connections that
/// have it (all zero when none does).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Spread {
    pub min: f64,
    pub mean: f64,
    pub max: f64,
}

impl Spread {
    fn of(values: impl Iterator<Item = f64>) -> Spread {
        let (mut n, mut sum) = (0u32, 0.0);
        let mut s = Spread {
            min: f64::INFINITY,
            mean: 0.0,
            max: 0.0,
        };
        for v in values {
            n += 1;
            sum += v;
            s.min = s.min.min(v);
            s.max = s.max.max(v);
        }
        if n == 0 {
            return Spread::default();
        }
        s.mean = sum / f64::from(n);
        s
    }
}

/// One copy of the stack's STATUS.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StackView {
    /// The stack's own address.
    pub address: String,
    /// The stack's clock when the copy was taken (milliseconds).
    pub clock_ms: u64,
    pub counters: Counters,
    pub listeners: Vec<ListenStatus>,
    /// Every connection by RFC 9293 state name.
    pub states: BTreeMap<&'static str, usize>,
    /// State changes since the stack started, by the state entered.
    pub entered: BTreeMap<&'static str, u64>,
    /// Retransmitted segments since the stack started, all connections.
    pub retransmissions: u64,
    /// Segments that arrived ahead of a hole since the stack started.
    pub out_of_order_segments: u64,
    /// Smoothed RTT (seconds) over the synchronized connections with a
    /// sample, their retransmission timeouts (seconds) and congestion
    /// windows (bytes).
    pub srtt: Spread,
    pub rto: Spread,
    pub cwnd: Spread,
    /// The first [`LISTED`] connections' STATUS.
    pub connections: Vec<Status>,
    /// Whether connections were left out of `connections`.
    pub truncated: bool,
    /// The Ethernet link's frames and ARP, on a packet link (`null` on a
    /// link of bare IP packets). The driver fills it in: the stack knows
    /// no link.
    pub link: Option<EtherView>,
}

impl Stack {
    /// STATUS of everything, as of `now`.
    pub fn view(&self, now: u64) -> StackView {
        let mut states = BTreeMap::new();
        let mut connections = Vec::new();
        let mut retransmissions = self.counters.retransmissions_of_closed;
        let mut out_of_order_segments = self.counters.out_of_order_of_closed;
        let mut truncated = false;
        let (mut srtt, mut rto, mut cwnd) = (Vec::new(), Vec::new(), Vec::new());
        for s in self.connections() {
            *states.entry(s.state).or_insert(0) += 1;
            retransmissions += s.retransmissions;
            out_of_order_segments += s.out_of_order_segments;
            if let Some(r) = s.srtt_ms {
                srtt.push(r as f64 / 1000.0);
                rto.push(s.rto_ms as f64 / 1000.0);
                cwnd.push(s.cwnd as f64);
            }
            if connections.len() < LISTED {
                connections.push(s);
            } else {
                truncated = true;
            }
        }
        StackView {
            address: self.addr().to_string(),
            clock_ms: now,
            counters: self.counters.clone(),
            listeners: self.listeners(),
            states,
            entered: State::ALL
                .iter()
                .map(|s| (s.name(), self.counters.entered[s.index()]))
                .collect(),
            retransmissions,
            out_of_order_segments,
            srtt: Spread::of(srtt.into_iter()),
            rto: Spread::of(rto.into_iter()),
            cwnd: Spread::of(cwnd.into_iter()),
            connections,
            truncated,
            link: None,
        }
    }
}

/// Where the driver leaves the latest [`StackView`]. The lock is held
/// only to swap or clone an `Arc`.
#[derive(Debug, Default)]
pub struct Board {
    latest: Mutex<Option<Arc<StackView>>>,
}

impl Board {
    pub fn publish(&self, view: StackView) {
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(view));
    }

    /// The last copy published; `None` when no user stack runs (the
    /// kernel's TCP carries the connections).
    pub fn latest(&self) -> Option<Arc<StackView>> {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::StackConfig;
    use std::net::Ipv4Addr;

    #[test]
    fn a_listener_shows_in_the_view_and_the_board_hands_out_the_last_copy() {
        let mut stack = Stack::new(StackConfig::new(Ipv4Addr::new(10, 9, 0, 2), [7; 16]));
        let board = Board::default();
        assert!(board.latest().is_none(), "nothing published yet");
        stack.listen(80, 16);
        board.publish(stack.view(5));
        let v = board.latest().unwrap();
        assert_eq!(v.address, "10.9.0.2");
        assert_eq!(v.clock_ms, 5);
        assert_eq!(v.listeners.len(), 1);
        assert_eq!((v.listeners[0].port, v.listeners[0].backlog), (80, 16));
        assert!(v.connections.is_empty() && v.states.is_empty());
        assert!(!v.truncated);
        stack.unlisten(80);
        board.publish(stack.view(6));
        assert!(board.latest().unwrap().listeners.is_empty());
    }
}
