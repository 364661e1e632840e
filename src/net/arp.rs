//! The neighbour table of an Ethernet link (RFC 826's translation table):
//! which MAC address to put on a frame for an IPv4 next hop, learned from
//! ARP and from the frames that reach us, each entry trusted for a while
//! and then forgotten; and, for a next hop not yet known, a small queue of
//! packets held while requests go out, a bounded number of times, before
//! they are dropped and counted. Sans-I/O: time is passed in, requests are
//! asked of the caller, held packets are handed back. The frames themselves
//! are `net::ether`'s.
//!
//! There is no routing table: the stack answers whoever wrote to it, so the
//! next hop is the packet's destination, and a client behind a router is
//! reached through the router's MAC, learned from the frames that brought
//! the client's packets.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;

use super::wire::ether::Mac;
use super::Millis;

/// The table's bounds and times.
#[derive(Debug, Clone, Copy)]
pub struct NeighbourConfig {
    /// How long an entry is used after it was last heard from.
    pub ttl: Millis,
    /// The wait between two requests for the same address.
    pub retry: Millis,
    /// Requests sent before an address is given up.
    pub tries: u32,
    /// Packets held per unresolved address; more are dropped.
    pub hold: usize,
    /// Addresses being resolved at once; packets for another are dropped.
    pub pending: usize,
    /// Entries kept, so a flood of forged senders cannot grow the table.
    pub entries: usize,
}

impl Default for NeighbourConfig {
    fn default() -> NeighbourConfig {
        // Linux's defaults are in the same range: a reachable time of
        // 30 s (randomised), 3 multicast probes one second apart, and an
        // unresolved queue of some 100 KB.
        NeighbourConfig {
            ttl: 60_000,
            retry: 1_000,
            tries: 3,
            hold: 16,
            pending: 64,
            entries: 4096,
        }
    }
}

/// What the table did, for STATUS and the tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct NeighbourCounters {
    /// Entries created or refreshed with a new MAC.
    pub learned: u64,
    /// Entries dropped for age.
    pub expired: u64,
    /// Requests asked of the caller (first tries and retries).
    pub requests: u64,
    /// Addresses given up after every try.
    pub failed: u64,
    /// Packets dropped: unresolved, a full hold queue, too many pending.
    pub dropped: u64,
    /// Senders not learned because the table was full.
    pub table_full: u64,
}

struct Entry {
    mac: Mac,
    /// Last heard from plus the TTL.
    expires: Millis,
}

struct Pending {
    held: VecDeque<Vec<u8>>,
    /// Requests sent so far.
    tries: u32,
    /// When the next request (or the giving up) is due.
    next: Millis,
}

/// Whether a packet for an unknown next hop was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Kept, and the first request for its address is due now: the caller
    /// sends it.
    AskNow,
    /// Kept behind a request already out.
    Queued,
    /// Not kept (counted).
    Dropped,
}

pub struct Neighbours {
    cfg: NeighbourConfig,
    entries: HashMap<Ipv4Addr, Entry>,
    pending: HashMap<Ipv4Addr, Pending>,
    /// When `poll` next sweeps out expired entries (lookups already ignore
    /// them; the sweep keeps the table from holding the dead).
    sweep_at: Millis,
    pub counters: NeighbourCounters,
}

impl Neighbours {
    pub fn new(cfg: NeighbourConfig) -> Neighbours {
        Neighbours {
            cfg,
            entries: HashMap::new(),
            pending: HashMap::new(),
            sweep_at: cfg.ttl,
            counters: NeighbourCounters::default(),
        }
    }

    /// The MAC for `ip`, while its entry is fresh.
    pub fn lookup(&self, now: Millis, ip: Ipv4Addr) -> Option<Mac> {
        self.entries
            .get(&ip)
            .filter(|e| e.expires > now)
            .map(|e| e.mac)
    }

    /// Whether `ip` has an entry (fresh or not) or is being resolved: the
    /// RFC 826 rule that only such senders are merged from ARP traffic not
    /// meant for us.
    pub fn knows(&self, ip: Ipv4Addr) -> bool {
        self.entries.contains_key(&ip) || self.pending.contains_key(&ip)
    }

    /// `ip` is at `mac` as of `now`. Returns the packets that were waiting
    /// for it, now to be sent to `mac`, if any.
    pub fn learn(&mut self, now: Millis, ip: Ipv4Addr, mac: Mac) -> Option<VecDeque<Vec<u8>>> {
        let expires = now.saturating_add(self.cfg.ttl);
        if let Some(e) = self.entries.get_mut(&ip) {
            if e.mac != mac {
                self.counters.learned += 1;
                e.mac = mac;
            }
            e.expires = expires;
        } else {
            if self.entries.len() >= self.cfg.entries {
                self.sweep(now);
            }
            if self.entries.len() >= self.cfg.entries {
                self.counters.table_full += 1;
            } else {
                self.counters.learned += 1;
                self.entries.insert(ip, Entry { mac, expires });
            }
        }
        self.pending.remove(&ip).map(|p| p.held)
    }

    /// Keeps a copy of `packet` until `ip` resolves, within the bounds.
    pub fn hold(&mut self, now: Millis, ip: Ipv4Addr, packet: &[u8]) -> Held {
        let cfg = self.cfg;
        if let Some(p) = self.pending.get_mut(&ip) {
            if p.held.len() >= cfg.hold {
                self.counters.dropped += 1;
                return Held::Dropped;
            }
            p.held.push_back(packet.to_vec());
            return Held::Queued;
        }
        if self.pending.len() >= cfg.pending || cfg.hold == 0 {
            self.counters.dropped += 1;
            return Held::Dropped;
        }
        let mut held = VecDeque::with_capacity(cfg.hold.min(4));
        held.push_back(packet.to_vec());
        self.pending.insert(
            ip,
            Pending {
                held,
                tries: 1,
                next: now.saturating_add(cfg.retry),
            },
        );
        self.counters.requests += 1;
        Held::AskNow
    }

    /// Fires what is due: a request again for an address still unresolved
    /// (`ask` is called with it), or, after the last try, its packets
    /// dropped; and now and then the expired entries swept out.
    pub fn poll(&mut self, now: Millis, mut ask: impl FnMut(Ipv4Addr)) {
        let cfg = self.cfg;
        let counters = &mut self.counters;
        self.pending.retain(|ip, p| {
            if p.next > now {
                return true;
            }
            if p.tries >= cfg.tries {
                counters.failed += 1;
                counters.dropped += p.held.len() as u64;
                return false;
            }
            p.tries += 1;
            p.next = now.saturating_add(cfg.retry);
            counters.requests += 1;
            ask(*ip);
            true
        });
        if now >= self.sweep_at {
            self.sweep(now);
        }
    }

    fn sweep(&mut self, now: Millis) {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.expires > now);
        self.counters.expired += (before - self.entries.len()) as u64;
        self.sweep_at = now.saturating_add(self.cfg.ttl / 2);
    }

    /// When `poll` has something to do for a pending address; the sweep
    /// needs no wake-up of its own.
    pub fn poll_at(&self) -> Option<Millis> {
        self.pending.values().map(|p| p.next).min()
    }

    /// Packets held, over every pending address.
    pub fn held(&self) -> usize {
        self.pending.values().map(|p| p.held.len()).sum()
    }

    /// Entries in the table, fresh or not yet swept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
    const MA: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const MB: Mac = Mac([2, 0, 0, 0, 0, 3]);

    fn table() -> Neighbours {
        Neighbours::new(NeighbourConfig::default())
    }

    #[test]
    fn learned_entries_are_used_until_they_expire() {
        let mut t = table();
        assert_eq!(t.lookup(0, A), None);
        assert!(t.learn(0, A, MA).is_none());
        assert_eq!(t.lookup(59_999, A), Some(MA));
        assert_eq!(t.lookup(60_000, A), None);
        // Hearing from it again refreshes it; a new MAC replaces the old.
        t.learn(50_000, A, MB);
        assert_eq!(t.lookup(100_000, A), Some(MB));
        assert_eq!(t.counters.learned, 2);
        // The sweep drops what expired.
        t.poll(200_000, |_| panic!("nothing pending"));
        assert!(t.is_empty());
        assert_eq!(t.counters.expired, 1);
    }

    #[test]
    fn held_packets_are_released_when_the_address_resolves() {
        let mut t = table();
        assert_eq!(t.hold(0, A, b"one"), Held::AskNow);
        assert_eq!(t.hold(10, A, b"two"), Held::Queued);
        assert!(t.knows(A));
        assert_eq!(t.poll_at(), Some(1_000));
        let held = t.learn(20, A, MA).unwrap();
        assert_eq!(held, [b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(t.poll_at(), None);
        assert_eq!(t.lookup(30, A), Some(MA));
    }

    #[test]
    fn requests_are_retried_then_the_packets_dropped() {
        let mut t = table();
        assert_eq!(t.hold(0, A, b"p"), Held::AskNow);
        let mut asked = Vec::new();
        t.poll(999, |ip| asked.push(ip));
        assert!(asked.is_empty(), "not yet due");
        t.poll(1_000, |ip| asked.push(ip));
        t.poll(2_000, |ip| asked.push(ip));
        assert_eq!(asked, [A, A]);
        assert_eq!(t.counters.requests, 3);
        // The third request got no answer either: give up.
        t.poll(3_000, |ip| asked.push(ip));
        assert_eq!(asked.len(), 2);
        assert!(!t.knows(A));
        assert_eq!(t.counters.failed, 1);
        assert_eq!(t.counters.dropped, 1);
        assert_eq!(t.poll_at(), None);
        // A later packet starts over.
        assert_eq!(t.hold(5_000, A, b"p"), Held::AskNow);
    }

    #[test]
    fn the_queues_and_the_table_are_bounded() {
        let cfg = NeighbourConfig {
            hold: 2,
            pending: 1,
            entries: 1,
            ..NeighbourConfig::default()
        };
        let mut t = Neighbours::new(cfg);
        assert_eq!(t.hold(0, A, b"1"), Held::AskNow);
        assert_eq!(t.hold(0, A, b"2"), Held::Queued);
        assert_eq!(t.hold(0, A, b"3"), Held::Dropped);
        assert_eq!(t.hold(0, B, b"x"), Held::Dropped, "one pending address");
        assert_eq!(t.counters.dropped, 2);
        t.learn(0, A, MA);
        t.learn(0, B, MB);
        assert_eq!(t.lookup(1, B), None, "the table is full");
        assert_eq!(t.counters.table_full, 1);
        // Once A expired, B finds room.
        t.learn(60_000, B, MB);
        assert_eq!(t.lookup(60_001, B), Some(MB));
    }
}
