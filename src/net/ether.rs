//! The stack's Ethernet interface, sans-I/O: frames in, bare IPv4 packets
//! out to the stack; IPv4 packets in from the stack, the Ethernet header to
//! put before each (or the packet held while its next hop resolves); ARP
//! answered for the stack's own address and asked for the addresses it
//! writes to. Frames it emits itself (ARP, held packets released) go
//! through the caller's `out(header, body)`, so that a link can send them
//! gathered, without a copy. Time is passed in. The table is `net::arp`,
//! the formats `net::wire::ether`; the socket is the link's.

use std::net::Ipv4Addr;

use super::arp::{Held, NeighbourConfig, NeighbourCounters, Neighbours};
use super::wire::ether::{self, Arp, ArpOp, Mac, ETHERTYPE_ARP, ETHERTYPE_IPV4, HEADER_LEN};
use super::Millis;

/// Where frames the interface emits go: the Ethernet header, then the body.
pub type Out<'a> = dyn FnMut(&[u8; HEADER_LEN], &[u8]) + 'a;

/// What the interface answers for.
#[derive(Debug, Clone, Copy)]
pub struct EtherConfig {
    /// The link's own address (the interface's: the frames go out of it).
    pub mac: Mac,
    /// The stack's own address.
    pub ip: Ipv4Addr,
    pub neighbours: NeighbourConfig,
}

/// What the interface did with frames, for STATUS and the tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EtherCounters {
    pub frames_in: u64,
    /// IPv4 packets handed to the stack.
    pub ipv4_in: u64,
    /// Too short, cut by the buffer, or an ARP packet that does not parse.
    pub malformed: u64,
    /// Addressed to another station's MAC (seen in promiscuous mode).
    pub other_host: u64,
    /// Neither IPv4 nor ARP (IPv6, LLDP, 802.3 frames, VLANs' frames).
    pub other_ethertype: u64,
    pub arp_in: u64,
    /// Who-has for the stack's address, answered.
    pub arp_replies_sent: u64,
    /// Who-has sent (first tries, retries, the announcement).
    pub arp_requests_sent: u64,
    /// ARP from another station claiming the stack's address.
    pub arp_conflicts: u64,
    /// IPv4 packets whose TCP checksum the link completed (the sender
    /// left it to an offload: a veth peer).
    pub checksums_completed: u64,
}

/// STATUS of an Ethernet link: its counters, its table's, and how many
/// neighbours it knows and packets it holds for one being resolved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EtherView {
    pub frames: EtherCounters,
    pub neighbours: NeighbourCounters,
    pub entries: usize,
    pub held: usize,
}

pub struct Ether {
    cfg: EtherConfig,
    table: Neighbours,
    pub counters: EtherCounters,
}

/// The MAC an IPv4 group address maps to (RFC 1112 §6.4).
fn multicast_mac(ip: Ipv4Addr) -> Mac {
    let o = ip.octets();
    Mac([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
}

/// A source address a neighbour may have: not "this host", not a group
/// or broadcast address.
fn plausible_sender(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast())
}

impl Ether {
    pub fn new(cfg: EtherConfig) -> Ether {
        Ether {
            cfg,
            table: Neighbours::new(cfg.neighbours),
            counters: EtherCounters::default(),
        }
    }

    pub fn neighbour_counters(&self) -> NeighbourCounters {
        self.table.counters
    }

    /// A copy of what the interface and its table did and hold, for
    /// `/api/tcp` and the metrics.
    pub fn view(&self) -> EtherView {
        EtherView {
            frames: self.counters,
            neighbours: self.table.counters,
            entries: self.table.len(),
            held: self.table.held(),
        }
    }

    /// The neighbour table (its entries, what it holds).
    pub fn neighbours(&self) -> &Neighbours {
        &self.table
    }

    fn request(&mut self, target: Ipv4Addr, out: &mut Out<'_>) {
        self.counters.arp_requests_sent += 1;
        let arp = Arp {
            op: ArpOp::Request,
            sender_mac: self.cfg.mac,
            sender_ip: self.cfg.ip,
            target_mac: Mac::ZERO,
            target_ip: target,
        };
        out(
            &ether::header(Mac::BROADCAST, self.cfg.mac, ETHERTYPE_ARP),
            &ether::emit_arp(&arp),
        );
    }

    /// A gratuitous ARP (an RFC 5227 announcement: a request with the
    /// stack's address as sender and target), so that neighbours holding a
    /// stale entry for the address update it.
    pub fn announce(&mut self, out: &mut Out<'_>) {
        self.request(self.cfg.ip, out);
    }

    /// The packets that waited for `ip`, now that it is at `mac`.
    fn learn(&mut self, now: Millis, ip: Ipv4Addr, mac: Mac, out: &mut Out<'_>) {
        if let Some(held) = self.table.learn(now, ip, mac) {
            let head = ether::header(mac, self.cfg.mac, ETHERTYPE_IPV4);
            for p in held {
                out(&head, &p);
            }
        }
    }

    /// One frame from the wire. Returns the IPv4 packet in it for the
    /// stack, if it carries one; ARP is answered through `out`; anything
    /// else is counted and dropped. `frame` is mutable so that the link can
    /// touch the packet up in place before the stack sees it.
    pub fn receive<'a>(
        &mut self,
        now: Millis,
        frame: &'a mut [u8],
        out: &mut Out<'_>,
    ) -> Option<&'a mut [u8]> {
        self.counters.frames_in += 1;
        let Some(f) = ether::parse(frame) else {
            self.counters.malformed += 1;
            return None;
        };
        if f.dst != self.cfg.mac && !f.dst.is_group() {
            self.counters.other_host += 1;
            return None;
        }
        match f.ethertype {
            ETHERTYPE_IPV4 => {
                // Learn who brought a packet for us: the client itself
                // on this link, or the router in front of it. Only unicast
                // frames, so a broadcast cannot teach us a route.
                if f.dst == self.cfg.mac && f.src.is_unicast() && f.payload.len() >= 20 {
                    let p = f.payload;
                    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
                    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
                    if p[0] >> 4 == 4 && dst == self.cfg.ip && plausible_sender(src) {
                        self.learn(now, src, f.src, out);
                    }
                }
                self.counters.ipv4_in += 1;
                Some(&mut frame[HEADER_LEN..])
            }
            ETHERTYPE_ARP => {
                self.counters.arp_in += 1;
                match ether::parse_arp(f.payload) {
                    Ok(a) => self.receive_arp(now, f.src, &a, out),
                    Err(_) => self.counters.malformed += 1,
                }
                None
            }
            _ => {
                self.counters.other_ethertype += 1;
                None
            }
        }
    }

    /// RFC 826's reception algorithm, with RFC 5227's probes (sender
    /// 0.0.0.0) answered but not learned.
    fn receive_arp(&mut self, now: Millis, frame_src: Mac, a: &Arp, out: &mut Out<'_>) {
        if a.sender_mac == self.cfg.mac {
            return; // our own, read back
        }
        if a.sender_ip == self.cfg.ip {
            self.counters.arp_conflicts += 1;
            return;
        }
        let for_us = a.target_ip == self.cfg.ip;
        if plausible_sender(a.sender_ip)
            && a.sender_mac.is_unicast()
            && (for_us || self.table.knows(a.sender_ip))
        {
            self.learn(now, a.sender_ip, a.sender_mac, out);
        }
        if for_us && a.op == ArpOp::Request {
            self.counters.arp_replies_sent += 1;
            let reply = Arp {
                op: ArpOp::Reply,
                sender_mac: self.cfg.mac,
                sender_ip: self.cfg.ip,
                target_mac: a.sender_mac,
                target_ip: a.sender_ip,
            };
            // To the station that asked, as the frame says it (the ARP
            // sender field may differ behind a proxy).
            let to = if frame_src.is_unicast() {
                frame_src
            } else {
                a.sender_mac
            };
            out(
                &ether::header(to, self.cfg.mac, ETHERTYPE_ARP),
                &ether::emit_arp(&reply),
            );
        }
    }

    /// One IPv4 packet from the stack. Returns the header to send it
    /// with, or `None` when it is held for its next hop (a request going
    /// out through `out`) or dropped (counted in the table).
    pub fn send(
        &mut self,
        now: Millis,
        packet: &[u8],
        out: &mut Out<'_>,
    ) -> Option<[u8; HEADER_LEN]> {
        if packet.len() < 20 {
            return None;
        }
        let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
        let mac = if dst.is_broadcast() {
            Some(Mac::BROADCAST)
        } else if dst.is_multicast() {
            Some(multicast_mac(dst))
        } else {
            self.table.lookup(now, dst)
        };
        if let Some(mac) = mac {
            return Some(ether::header(mac, self.cfg.mac, ETHERTYPE_IPV4));
        }
        if self.table.hold(now, dst, packet) == Held::AskNow {
            self.request(dst, out);
        }
        None
    }

    /// Fires the table's timers: requests again, gives up on addresses.
    pub fn poll(&mut self, now: Millis, out: &mut Out<'_>) {
        let mut due = Vec::new();
        self.table.poll(now, |ip| due.push(ip));
        for ip in due {
            self.request(ip, out);
        }
    }

    /// When `poll` has something to do.
    pub fn poll_at(&self) -> Option<Millis> {
        self.table.poll_at()
    }
}

pub mod invariants;
#[cfg(test)]
mod tests;
