//! `--max-connections-per-client`: how many connections one client address
//! may hold open at once, so that one peer cannot take every place under
//! `--max-connections` (or every descriptor) from the rest.
//!
//! The count is by the socket's peer, the only address known when a
//! connection is accepted: an IPv4 address, or an IPv6 address's /64 (one
//! host commonly holds a whole /64, so counting single IPv6 addresses would
//! cap nobody). Peers in the `--trusted-proxy` ranges are not counted: a
//! proxy carries many clients. The table is process-wide and sharded by
//! address so that accepting threads rarely meet on one lock; with no cap
//! (the default) nothing here runs.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};

const SHARDS: usize = 16;

/// The cap in force (0: none); set at start and by a reload.
static CAP: AtomicU32 = AtomicU32::new(0);

/// Puts a cap in force (0 turns it off); connections already counted stay.
pub fn set_cap(cap: u32) {
    CAP.store(cap, Ordering::Relaxed);
}

/// The cap in force.
pub fn cap() -> u32 {
    CAP.load(Ordering::Relaxed)
}

/// The counted part of an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    V4(u32),
    /// The upper 64 bits.
    V6(u64),
}

impl Key {
    fn of(ip: IpAddr) -> Key {
        match ip {
            IpAddr::V4(a) => Key::V4(u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => Key::V4(u32::from(v4)),
                None => Key::V6((u128::from(a) >> 64) as u64),
            },
        }
    }
}

struct Table {
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<Key, u32>>>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| Table {
    hasher: RandomState::new(),
    shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
});

impl Table {
    fn shard(&self, key: &Key) -> std::sync::MutexGuard<'_, HashMap<Key, u32>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One connection counted against its client, given back when dropped.
#[derive(Debug)]
pub struct ClientPlace(Key);

impl Drop for ClientPlace {
    fn drop(&mut self) {
        let mut shard = TABLE.shard(&self.0);
        if let Some(n) = shard.get_mut(&self.0) {
            *n -= 1;
            if *n == 0 {
                shard.remove(&self.0);
            }
        }
    }
}

/// What [`enter`] decided.
#[derive(Debug)]
pub enum Entry {
    /// No cap, or a peer that is not counted.
    Uncounted,
    Counted(ClientPlace),
    /// The client holds `cap` connections already: refuse this one.
    Refused,
}

/// Counts a new connection from `peer` under `cap` (0: no cap).
pub fn enter(peer: IpAddr, cap: u32) -> Entry {
    if cap == 0 || crate::telemetry::is_trusted_proxy(peer) {
        return Entry::Uncounted;
    }
    let key = Key::of(peer);
    let mut shard = TABLE.shard(&key);
    let n = shard.entry(key).or_insert(0);
    if *n >= cap {
        return Entry::Refused;
    }
    *n += 1;
    Entry::Counted(ClientPlace(key))
}

/// The connections counted for `peer` now (for tests and the API).
pub fn held(peer: IpAddr) -> u32 {
    let key = Key::of(peer);
    TABLE.shard(&key).get(&key).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_is_capped_and_its_places_come_back() {
        let a = ip("198.51.100.77");
        let places: Vec<_> = (0..3)
            .map(|_| match enter(a, 3) {
                Entry::Counted(p) => p,
                e => panic!("{e:?}"),
            })
            .collect();
        assert!(matches!(enter(a, 3), Entry::Refused));
        assert!(matches!(enter(ip("198.51.100.78"), 3), Entry::Counted(_)));
        drop(places);
        assert_eq!(held(a), 0);
        assert!(matches!(enter(a, 0), Entry::Uncounted));
    }

    #[test]
    fn ipv6_counts_by_slash_64_and_mapped_ipv4_as_ipv4() {
        let one = enter(ip("2001:db8:1:2::1"), 1);
        assert!(matches!(one, Entry::Counted(_)));
        assert!(matches!(enter(ip("2001:db8:1:2::ffff"), 1), Entry::Refused));
        assert!(matches!(enter(ip("2001:db8:1:3::1"), 1), Entry::Counted(_)));
        let v4 = enter(ip("203.0.113.200"), 1);
        assert!(matches!(v4, Entry::Counted(_)));
        assert!(matches!(
            enter(ip("::ffff:203.0.113.200"), 1),
            Entry::Refused
        ));
    }
}
