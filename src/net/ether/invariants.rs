//! Arbitrary input against the Ethernet interface, for the fuzz target and
//! its stable replay: raw frames, ARP and IPv4 frames built from the input
//! (senders drawn from a few addresses, so that they meet again), packets
//! from the stack to those addresses, announcements and clock jumps. It
//! must not panic; every frame it emits must leave from our MAC with a
//! well-formed ARP body for our address or a packet the stack gave it; what
//! it holds stays within the table's bounds; and once `poll(now)` ran, its
//! next deadline is later than `now`, so a driver never spins on it.

use std::net::Ipv4Addr;

use super::{Ether, EtherConfig};
use crate::net::arp::NeighbourConfig;
use crate::net::wire::ether::{self, Arp, ArpOp, Mac, ETHERTYPE_ARP, ETHERTYPE_IPV4, HEADER_LEN};
use crate::net::Millis;

const US_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x02]);
const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// A few addresses (ours among them, and group ones) for senders and
/// destinations, so that the input can make them recur.
fn addr(b: u8) -> Ipv4Addr {
    match b % 8 {
        6 => Ipv4Addr::BROADCAST,
        7 => Ipv4Addr::new(224, 0, 0, 1),
        x => Ipv4Addr::new(10, 0, 0, x),
    }
}

fn mac(b: u8) -> Mac {
    Mac([b & 0x03, 0, 0, 0, 0, b >> 2])
}

/// Takes `n` bytes of the input (fewer at its end).
fn take<'a>(d: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (h, t) = d.split_at(n.min(d.len()));
    *d = t;
    h
}

fn byte(d: &mut &[u8]) -> u8 {
    take(d, 1).first().copied().unwrap_or(0)
}

fn packet_to(dst: Ipv4Addr, tag: u8) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 21, 0, 0, 0x40, 0, 64, 6, 0, 0];
    p.extend_from_slice(&US.octets());
    p.extend_from_slice(&dst.octets());
    p.push(tag);
    p
}

/// Runs the input; panics when an invariant breaks.
pub fn check(data: &[u8]) {
    let neighbours = NeighbourConfig {
        hold: 3,
        pending: 3,
        entries: 4,
        ..NeighbourConfig::default()
    };
    let mut e = Ether::new(EtherConfig {
        mac: US_MAC,
        ip: US,
        neighbours,
    });
    let mut now: Millis = 0;
    // Every packet the stack handed over, for the released ones.
    let mut sent: Vec<Vec<u8>> = Vec::new();
    let mut emitted: Vec<Vec<u8>> = Vec::new();
    let mut d = data;
    while !d.is_empty() {
        let mut out = |h: &[u8; HEADER_LEN], b: &[u8]| {
            let mut f = h.to_vec();
            f.extend_from_slice(b);
            emitted.push(f);
        };
        match byte(&mut d) % 6 {
            0 => {
                let n = usize::from(byte(&mut d));
                let mut f = take(&mut d, n).to_vec();
                let _ = e.receive(now, &mut f, &mut out);
            }
            1 => {
                let (a, b, c) = (byte(&mut d), byte(&mut d), byte(&mut d));
                let arp = Arp {
                    op: if a & 1 == 0 {
                        ArpOp::Request
                    } else {
                        ArpOp::Reply
                    },
                    sender_mac: mac(b),
                    sender_ip: addr(b),
                    target_mac: mac(c),
                    target_ip: addr(c),
                };
                let dst = if a & 2 == 0 { Mac::BROADCAST } else { US_MAC };
                let mut f = ether::header(dst, mac(a >> 2), ETHERTYPE_ARP).to_vec();
                f.extend_from_slice(&ether::emit_arp(&arp));
                let _ = e.receive(now, &mut f, &mut out);
            }
            2 => {
                let (a, b) = (byte(&mut d), byte(&mut d));
                let mut f = ether::header(US_MAC, mac(a), ETHERTYPE_IPV4).to_vec();
                f.extend_from_slice(&packet_to(addr(b), a));
                // The source of a packet to us is its sender.
                f[HEADER_LEN + 12..HEADER_LEN + 16].copy_from_slice(&addr(b).octets());
                f[HEADER_LEN + 16..HEADER_LEN + 20].copy_from_slice(&US.octets());
                let whole = f[HEADER_LEN..].to_vec();
                let up = e.receive(now, &mut f, &mut out).map(|p| p.to_vec());
                assert_eq!(up.as_deref(), Some(&whole[..]), "IPv4 for us goes up whole");
            }
            3 => {
                let b = byte(&mut d);
                let p = packet_to(addr(b), b);
                if let Some(h) = e.send(now, &p, &mut out) {
                    let f = ether::parse(&h).expect("a whole header");
                    assert_eq!((f.src, f.ethertype), (US_MAC, ETHERTYPE_IPV4));
                    assert!(f.dst != Mac::ZERO, "a destination");
                }
                sent.push(p);
            }
            4 => {
                let t = take(&mut d, 2);
                let jump = t.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
                now += jump * 16;
                e.poll(now, &mut out);
                if let Some(t) = e.poll_at() {
                    assert!(t > now, "poll_at {t} is not after a poll at {now}");
                }
            }
            _ => e.announce(&mut out),
        }
        let held = e.neighbours().held();
        assert!(held <= neighbours.hold * neighbours.pending, "{held} held");
        assert!(e.neighbours().len() <= neighbours.entries);
        for f in emitted.drain(..) {
            let p = ether::parse(&f).expect("a whole frame");
            assert_eq!(p.src, US_MAC, "frames leave from our MAC");
            match p.ethertype {
                ETHERTYPE_ARP => {
                    let a = ether::parse_arp(p.payload).expect("well-formed ARP");
                    assert_eq!((a.sender_mac, a.sender_ip), (US_MAC, US));
                }
                ETHERTYPE_IPV4 => {
                    assert!(p.dst.is_unicast(), "released to a neighbour");
                    assert!(
                        sent.iter().any(|s| s[..] == *p.payload),
                        "a packet the stack sent"
                    );
                }
                other => panic!("emitted ethertype {other:#06x}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_few_scripts_hold() {
        // Send to an unknown address, answer, time out another, junk.
        super::check(&[
            3, 1, 1, 3, 1, 3, 2, 4, 0, 200, 4, 255, 255, 0, 5, 1, 2, 2, 5,
        ]);
        super::check(&[0, 60, 0xff, 0xff]);
        super::check(&[3, 6, 3, 7, 3, 0, 4, 1, 0, 4, 1, 0, 4, 1, 0, 4, 1, 0]);
        for seed in 0u8..=255 {
            super::check(&[seed, seed.wrapping_mul(7), seed ^ 0x5a, 3, seed, 4, 0, seed]);
        }
    }
}
