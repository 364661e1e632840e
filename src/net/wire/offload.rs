//! Checksums a sender left to offload. A frame read where the kernel hands
//! it over (an `AF_PACKET` tap on a veth, or a frame this host sent) can
//! carry a TCP checksum the kernel never finished, trusting a NIC that does
//! not exist on that path: the field holds only the pseudo-header's sum.
//! The link says so per frame, and this completes the sum before the stack,
//! which checks every checksum, sees the packet.

use super::{fold, sum};

/// Completes the TCP checksum of an IPv4 packet in place. Packets that are
/// not whole, unfragmented IPv4/TCP are left as they are (the stack counts
/// and drops what it cannot parse).
pub fn complete_tcp_checksum(packet: &mut [u8]) {
    if packet.len() < 20 || packet[0] >> 4 != 4 || packet[9] != super::ipv4::PROTO_TCP {
        return;
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    let fragmented = u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0;
    if ihl < 20 || total > packet.len() || total < ihl + 20 || fragmented {
        return;
    }
    let tcp_len = total - ihl;
    let mut pseudo = [0u8; 12];
    pseudo[..8].copy_from_slice(&packet[12..20]);
    pseudo[9] = super::ipv4::PROTO_TCP;
    pseudo[10..].copy_from_slice(&(tcp_len as u16).to_be_bytes());
    let seg = &mut packet[ihl..total];
    seg[16] = 0;
    seg[17] = 0;
    let c = fold(sum(seg, sum(&pseudo, 0)));
    seg[16..18].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::complete_tcp_checksum;
    use crate::net::wire::{ipv4, tcp};
    use std::net::Ipv4Addr;

    #[test]
    fn a_partial_checksum_is_completed() {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let mut seg = tcp::Segment::empty();
        seg.src_port = 40000;
        seg.dst_port = 80;
        seg.payload = b"GET / HTTP/1.1\r\n\r\n";
        let mut body = Vec::new();
        tcp::emit(&seg, a, b, &mut body);
        let mut p = Vec::new();
        ipv4::emit(&mut p, a, b, ipv4::PROTO_TCP, 1, body.len());
        p.extend_from_slice(&body);
        let good = p.clone();
        // What a veth peer hands over: the field holds some partial sum.
        p[20 + 16] = 0x12;
        p[20 + 17] = 0x34;
        assert!(tcp::parse(a, b, &p[20..]).is_err());
        complete_tcp_checksum(&mut p);
        assert_eq!(p, good);
        assert!(tcp::parse(a, b, &p[20..]).is_ok());
    }

    #[test]
    fn other_packets_are_left_alone() {
        for mut p in [vec![], vec![0x45; 19], vec![0x60; 40], {
            let mut v = vec![0u8; 40];
            v[0] = 0x45;
            v[2..4].copy_from_slice(&400u16.to_be_bytes());
            v[9] = 6;
            v
        }] {
            let before = p.clone();
            complete_tcp_checksum(&mut p);
            assert_eq!(p, before);
        }
    }
}
