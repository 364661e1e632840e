//! The Ethernet interface against handcrafted frames: ARP answered and
//! asked, neighbours learned, packets held and released, junk counted.

use super::*;
use crate::net::wire::ether::{parse, parse_arp, ETHERTYPE_ARP};

const US_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x02]);
const US: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const PEER_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x01]);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const ROUTER_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0xfe]);

fn iface() -> Ether {
    Ether::new(EtherConfig {
        mac: US_MAC,
        ip: US,
        neighbours: NeighbourConfig::default(),
    })
}

/// A who-has for `target` from the peer, padded to 60 bytes as on a wire.
fn who_has(target: Ipv4Addr) -> Vec<u8> {
    let mut f = ether::header(Mac::BROADCAST, PEER_MAC, ETHERTYPE_ARP).to_vec();
    f.extend_from_slice(&ether::emit_arp(&Arp {
        op: ArpOp::Request,
        sender_mac: PEER_MAC,
        sender_ip: PEER,
        target_mac: Mac::ZERO,
        target_ip: target,
    }));
    f.resize(60, 0);
    f
}

/// A minimal IPv4 header (no payload) from `src` to `dst`, in a frame
/// from `mac` to us.
fn ipv4_frame(mac: Mac, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut f = ether::header(US_MAC, mac, ETHERTYPE_IPV4).to_vec();
    let mut ip = vec![0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 6, 0, 0];
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    f.extend_from_slice(&ip);
    f
}

/// A packet from the stack to `dst` (only the addresses matter here).
fn packet_to(dst: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 6, 0, 0];
    p.extend_from_slice(&US.octets());
    p.extend_from_slice(&dst.octets());
    p
}

/// Collects what the interface emits.
#[derive(Default)]
struct Wire(Vec<Vec<u8>>);

impl Wire {
    fn out(&mut self) -> impl FnMut(&[u8; HEADER_LEN], &[u8]) + '_ {
        |h, b| {
            let mut f = h.to_vec();
            f.extend_from_slice(b);
            self.0.push(f);
        }
    }
}

#[test]
fn who_has_for_our_address_is_answered_and_the_asker_learned() {
    let mut e = iface();
    let mut w = Wire::default();
    let mut f = who_has(US);
    assert!(e.receive(0, &mut f, &mut w.out()).is_none());
    assert_eq!(w.0.len(), 1);
    let reply = &w.0[0];
    let r = parse(reply).unwrap();
    assert_eq!(
        (r.dst, r.src, r.ethertype),
        (PEER_MAC, US_MAC, ETHERTYPE_ARP)
    );
    let a = parse_arp(r.payload).unwrap();
    assert_eq!(
        a,
        Arp {
            op: ArpOp::Reply,
            sender_mac: US_MAC,
            sender_ip: US,
            target_mac: PEER_MAC,
            target_ip: PEER,
        }
    );
    assert_eq!(e.counters.arp_replies_sent, 1);
    // The asker is known now: a packet to it goes straight out.
    let h = e.send(1, &packet_to(PEER), &mut w.out()).unwrap();
    assert_eq!(h, ether::header(PEER_MAC, US_MAC, ETHERTYPE_IPV4));
}

#[test]
fn who_has_for_another_address_is_ignored() {
    let mut e = iface();
    let mut w = Wire::default();
    let mut f = who_has(Ipv4Addr::new(10, 9, 0, 77));
    assert!(e.receive(0, &mut f, &mut w.out()).is_none());
    assert!(w.0.is_empty());
    // Not learned either (RFC 826: only senders already in the table).
    assert!(e.send(0, &packet_to(PEER), &mut w.out()).is_none());
    assert_eq!(w.0.len(), 1, "a request, since the peer is unknown");
}

#[test]
fn ipv4_for_us_goes_up_and_teaches_the_way_back() {
    let mut e = iface();
    let mut w = Wire::default();
    // A client behind a router: its packets come from the router's MAC.
    let client = Ipv4Addr::new(192, 0, 2, 7);
    let mut f = ipv4_frame(ROUTER_MAC, client, US);
    let p = e.receive(0, &mut f, &mut w.out()).unwrap();
    assert_eq!(p.len(), 20);
    assert_eq!(&p[16..20], &US.octets());
    let h = e.send(5, &packet_to(client), &mut w.out()).unwrap();
    assert_eq!(h, ether::header(ROUTER_MAC, US_MAC, ETHERTYPE_IPV4));
    assert!(w.0.is_empty());
    // A packet for another address goes up too (the stack counts it as
    // not ours) but teaches nothing.
    let other = Ipv4Addr::new(192, 0, 2, 8);
    let mut f = ipv4_frame(PEER_MAC, other, Ipv4Addr::new(10, 9, 0, 3));
    assert!(e.receive(6, &mut f, &mut w.out()).is_some());
    assert!(e.send(7, &packet_to(other), &mut w.out()).is_none());
}

#[test]
fn unknown_next_hops_are_resolved_and_the_held_packets_released() {
    let mut e = iface();
    let mut w = Wire::default();
    let first = packet_to(PEER);
    assert!(e.send(0, &first, &mut w.out()).is_none());
    assert!(e.send(1, &first, &mut w.out()).is_none());
    assert_eq!(w.0.len(), 1, "one request for two packets");
    let req = parse(&w.0[0]).unwrap();
    assert_eq!(req.dst, Mac::BROADCAST);
    let a = parse_arp(req.payload).unwrap();
    assert_eq!((a.op, a.sender_ip, a.target_ip), (ArpOp::Request, US, PEER));
    assert_eq!(e.poll_at(), Some(1_000));
    // The peer answers: both packets leave, addressed to it.
    let mut reply = ether::header(US_MAC, PEER_MAC, ETHERTYPE_ARP).to_vec();
    reply.extend_from_slice(&ether::emit_arp(&Arp {
        op: ArpOp::Reply,
        sender_mac: PEER_MAC,
        sender_ip: PEER,
        target_mac: US_MAC,
        target_ip: US,
    }));
    w.0.clear();
    assert!(e.receive(10, &mut reply, &mut w.out()).is_none());
    assert_eq!(w.0.len(), 2);
    for f in &w.0 {
        assert_eq!(
            &f[..HEADER_LEN],
            &ether::header(PEER_MAC, US_MAC, ETHERTYPE_IPV4)
        );
        assert_eq!(&f[HEADER_LEN..], &first[..]);
    }
    assert_eq!(e.poll_at(), None);
}

#[test]
fn an_unanswered_address_is_asked_three_times_then_given_up() {
    let mut e = iface();
    let mut w = Wire::default();
    assert!(e.send(0, &packet_to(PEER), &mut w.out()).is_none());
    let mut now = 0;
    while let Some(t) = e.poll_at() {
        assert!(t > now && w.0.len() < 10, "bounded");
        now = t;
        e.poll(now, &mut w.out());
    }
    assert_eq!(w.0.len(), 3);
    assert_eq!(e.counters.arp_requests_sent, 3);
    let n = e.neighbour_counters();
    assert_eq!((n.failed, n.dropped), (1, 1));
}

#[test]
fn junk_is_counted_and_dropped() {
    let mut e = iface();
    let mut w = Wire::default();
    let mut short = vec![0u8; 10];
    assert!(e.receive(0, &mut short, &mut w.out()).is_none());
    let mut bad_arp = who_has(US);
    bad_arp[HEADER_LEN + 4] = 8; // hardware address length
    assert!(e.receive(0, &mut bad_arp, &mut w.out()).is_none());
    let mut v6 = ether::header(US_MAC, PEER_MAC, 0x86dd).to_vec();
    v6.resize(60, 0);
    assert!(e.receive(0, &mut v6, &mut w.out()).is_none());
    let mut elsewhere = ipv4_frame(PEER_MAC, PEER, US);
    elsewhere[..6].copy_from_slice(&[0x02, 9, 9, 9, 9, 9]);
    assert!(e.receive(0, &mut elsewhere, &mut w.out()).is_none());
    assert!(w.0.is_empty());
    let c = e.counters;
    assert_eq!(
        (c.frames_in, c.malformed, c.other_ethertype, c.other_host),
        (4, 2, 1, 1)
    );
    // Every prefix of every frame is handled without a panic.
    for frame in [who_has(US), ipv4_frame(PEER_MAC, PEER, US), v6] {
        for n in 0..=frame.len() {
            let mut f = frame[..n].to_vec();
            let _ = e.receive(1, &mut f, &mut w.out());
        }
    }
    let _ = e.send(2, &[0x45; 7], &mut w.out());
}

#[test]
fn another_station_claiming_our_address_is_counted_not_learned() {
    let mut e = iface();
    let mut w = Wire::default();
    let mut f = ether::header(Mac::BROADCAST, PEER_MAC, ETHERTYPE_ARP).to_vec();
    f.extend_from_slice(&ether::emit_arp(&Arp {
        op: ArpOp::Request,
        sender_mac: PEER_MAC,
        sender_ip: US,
        target_mac: Mac::ZERO,
        target_ip: US,
    }));
    assert!(e.receive(0, &mut f, &mut w.out()).is_none());
    assert!(w.0.is_empty());
    assert_eq!(e.counters.arp_conflicts, 1);
}

#[test]
fn the_announcement_is_a_gratuitous_request() {
    let mut e = iface();
    let mut w = Wire::default();
    e.announce(&mut w.out());
    let f = parse(&w.0[0]).unwrap();
    assert_eq!(f.dst, Mac::BROADCAST);
    let a = parse_arp(f.payload).unwrap();
    assert_eq!((a.op, a.sender_ip, a.target_ip), (ArpOp::Request, US, US));
}

#[test]
fn group_destinations_need_no_resolution() {
    let mut e = iface();
    let mut w = Wire::default();
    let h = e
        .send(0, &packet_to(Ipv4Addr::BROADCAST), &mut w.out())
        .unwrap();
    assert_eq!(&h[..6], &Mac::BROADCAST.0);
    let h = e
        .send(0, &packet_to(Ipv4Addr::new(224, 0, 0, 251)), &mut w.out())
        .unwrap();
    assert_eq!(&h[..6], &[0x01, 0, 0x5e, 0, 0, 251]);
    assert!(w.0.is_empty());
}
