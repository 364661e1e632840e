//! Ethernet II frames (IEEE 802.3 with an EtherType, RFC 894 for IPv4 in
//! them) and ARP for IPv4 over Ethernet (RFC 826): parse into plain structs,
//! emit into fixed-size arrays. Nothing here remembers a neighbour; the
//! table is `net::arp`, the interface that uses both is `net::ether`.

use std::fmt;
use std::net::Ipv4Addr;

/// An Ethernet II header's length: destination, source, EtherType.
pub const HEADER_LEN: usize = 14;
/// An ARP packet for IPv4 over Ethernet.
pub const ARP_LEN: usize = 28;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;

/// A 48-bit Ethernet (MAC) address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);
    pub const ZERO: Mac = Mac([0; 6]);

    /// Group addresses (broadcast included) have the I/G bit set.
    pub fn is_group(self) -> bool {
        self.0[0] & 1 != 0
    }

    /// An address a station may have: not a group address, not zero.
    pub fn is_unicast(self) -> bool {
        !self.is_group() && self != Mac::ZERO
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// A parsed Ethernet II header; `payload` borrows the frame (and may end
/// in the padding that brings a short frame to 60 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub dst: Mac,
    pub src: Mac,
    pub ethertype: u16,
    pub payload: &'a [u8],
}

fn mac_at(b: &[u8], at: usize) -> Mac {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[at..at + 6]);
    Mac(m)
}

/// `None` for a frame too short to hold a header. An 802.3 length field
/// (below 0x0600) parses as an EtherType the interface does not serve.
pub fn parse(frame: &[u8]) -> Option<Frame<'_>> {
    if frame.len() < HEADER_LEN {
        return None;
    }
    Some(Frame {
        dst: mac_at(frame, 0),
        src: mac_at(frame, 6),
        ethertype: u16::from_be_bytes([frame[12], frame[13]]),
        payload: &frame[HEADER_LEN..],
    })
}

/// The header of a frame from `src` to `dst`.
pub fn header(dst: Mac, src: Mac, ethertype: u16) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..6].copy_from_slice(&dst.0);
    h[6..12].copy_from_slice(&src.0);
    h[12..].copy_from_slice(&ethertype.to_be_bytes());
    h
}

/// ARP's two operations (RFC 826's `ar$op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOp {
    Request,
    Reply,
}

/// An ARP packet for IPv4 over Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub op: ArpOp,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
}

/// Why an ARP packet was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpError {
    Truncated,
    /// Another hardware or protocol type, or their lengths.
    NotIpv4OverEthernet,
    Op(u16),
}

fn ip_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// Parses an ARP packet (trailing padding ignored).
pub fn parse_arp(b: &[u8]) -> Result<Arp, ArpError> {
    if b.len() < ARP_LEN {
        return Err(ArpError::Truncated);
    }
    // Hardware type 1 (Ethernet), protocol 0x0800, lengths 6 and 4.
    if b[..6] != [0, 1, 0x08, 0x00, 6, 4] {
        return Err(ArpError::NotIpv4OverEthernet);
    }
    let op = match u16::from_be_bytes([b[6], b[7]]) {
        1 => ArpOp::Request,
        2 => ArpOp::Reply,
        other => return Err(ArpError::Op(other)),
    };
    Ok(Arp {
        op,
        sender_mac: mac_at(b, 8),
        sender_ip: ip_at(b, 14),
        target_mac: mac_at(b, 18),
        target_ip: ip_at(b, 24),
    })
}

/// The 28 bytes of an ARP packet.
pub fn emit_arp(a: &Arp) -> [u8; ARP_LEN] {
    let mut b = [0u8; ARP_LEN];
    b[..6].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
    let op: u16 = match a.op {
        ArpOp::Request => 1,
        ArpOp::Reply => 2,
    };
    b[6..8].copy_from_slice(&op.to_be_bytes());
    b[8..14].copy_from_slice(&a.sender_mac.0);
    b[14..18].copy_from_slice(&a.sender_ip.octets());
    b[18..24].copy_from_slice(&a.target_mac.0);
    b[24..28].copy_from_slice(&a.target_ip.octets());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A who-has for 10.0.0.2 from 02:00:00:00:00:01 (10.0.0.1), as
    /// Linux sends it: broadcast, zero target MAC, padded to 60 bytes.
    const WHO_HAS: [u8; 60] = {
        let mut f = [0u8; 60];
        let head = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x08,
            0x06, // Ethernet
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype, ptype, lens, op
            0x02, 0, 0, 0, 0, 0x01, 10, 0, 0, 1, // sender
            0, 0, 0, 0, 0, 0, 10, 0, 0, 2, // target
        ];
        let mut i = 0;
        while i < head.len() {
            f[i] = head[i];
            i += 1;
        }
        f
    };

    #[test]
    fn parses_a_who_has() {
        let f = parse(&WHO_HAS).unwrap();
        assert_eq!(f.dst, Mac::BROADCAST);
        assert_eq!(f.src, Mac([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.ethertype, ETHERTYPE_ARP);
        let a = parse_arp(f.payload).unwrap();
        assert_eq!(a.op, ArpOp::Request);
        assert_eq!(a.sender_ip, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(a.target_ip, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(a.target_mac, Mac::ZERO);
    }

    #[test]
    fn emit_is_parse_inverted() {
        let a = parse_arp(&WHO_HAS[HEADER_LEN..]).unwrap();
        assert_eq!(emit_arp(&a)[..], WHO_HAS[HEADER_LEN..HEADER_LEN + ARP_LEN]);
        let h = header(Mac::BROADCAST, Mac([2, 0, 0, 0, 0, 1]), ETHERTYPE_ARP);
        assert_eq!(h[..], WHO_HAS[..HEADER_LEN]);
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert_eq!(parse(&WHO_HAS[..13]), None);
        let arp = &WHO_HAS[HEADER_LEN..];
        assert_eq!(parse_arp(&arp[..27]), Err(ArpError::Truncated));
        let mut bad = [0u8; ARP_LEN];
        bad.copy_from_slice(&arp[..ARP_LEN]);
        bad[5] = 16; // IPv6-sized protocol addresses
        assert_eq!(parse_arp(&bad), Err(ArpError::NotIpv4OverEthernet));
        bad[5] = 4;
        bad[7] = 9;
        assert_eq!(parse_arp(&bad), Err(ArpError::Op(9)));
        // Every prefix of a valid frame parses or errs; none panics.
        for n in 0..WHO_HAS.len() {
            if let Some(f) = parse(&WHO_HAS[..n]) {
                let _ = parse_arp(f.payload);
            }
        }
    }

    #[test]
    fn address_kinds() {
        assert!(Mac::BROADCAST.is_group());
        assert!(Mac([0x01, 0, 0x5e, 0, 0, 1]).is_group());
        assert!(Mac([2, 0, 0, 0, 0, 1]).is_unicast());
        assert!(!Mac::ZERO.is_unicast());
        assert_eq!(Mac([2, 0xab, 0, 0, 0, 1]).to_string(), "02:ab:00:00:00:01");
    }
}
