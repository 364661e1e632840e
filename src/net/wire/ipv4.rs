//! IPv4 headers (RFC 791): parse with the header checksum checked, emit
//! with it computed. Options are skipped on input and never sent;
//! fragments are recognised so the stack can drop them (reassembly is not
//! done).

use std::net::Ipv4Addr;

/// Protocol numbers the stack answers.
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// A parsed IPv4 header; `payload` borrows the packet.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
    /// More-fragments set or a non-zero offset.
    pub fragment: bool,
    /// The header as received (options included), for ICMP quotes.
    pub header: &'a [u8],
    pub payload: &'a [u8],
}

/// Why a packet was not accepted as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Error {
    Truncated,
    Version,
    Checksum,
}

pub fn parse(packet: &[u8]) -> Result<Ipv4<'_>, Ipv4Error> {
    if packet.len() < 20 {
        return Err(Ipv4Error::Truncated);
    }
    if packet[0] >> 4 != 4 {
        return Err(Ipv4Error::Version);
    }
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if ihl < 20 || total < ihl || total > packet.len() {
        return Err(Ipv4Error::Truncated);
    }
    if super::checksum(&packet[..ihl]) != 0 {
        return Err(Ipv4Error::Checksum);
    }
    let frag = u16::from_be_bytes([packet[6], packet[7]]);
    Ok(Ipv4 {
        src: Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]),
        dst: Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]),
        protocol: packet[9],
        ttl: packet[8],
        fragment: frag & 0x3fff != 0,
        header: &packet[..ihl],
        payload: &packet[ihl..total],
    })
}

/// Appends a 20-byte header for a payload of `payload_len` bytes, with
/// Don't Fragment set (the stack sizes segments by MSS and learns smaller
/// paths from ICMP "fragmentation needed").
pub fn emit(
    out: &mut Vec<u8>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    id: u16,
    payload_len: usize,
) {
    let start = out.len();
    let total = (20 + payload_len) as u16;
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x40, 0, 64, protocol, 0, 0]);
    out.extend_from_slice(&src.octets());
    out.extend_from_slice(&dst.octets());
    let c = super::checksum(&out[start..start + 20]);
    out[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut p = Vec::new();
        emit(
            &mut p,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            PROTO_TCP,
            7,
            3,
        );
        p.extend_from_slice(b"abc");
        let ip = parse(&p).unwrap();
        assert_eq!(ip.src, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(ip.protocol, PROTO_TCP);
        assert_eq!(ip.payload, b"abc");
        assert!(!ip.fragment);
        p[8] ^= 1; // TTL flipped: the checksum no longer holds
        assert_eq!(parse(&p).unwrap_err(), Ipv4Error::Checksum);
        assert_eq!(parse(&p[..19]).unwrap_err(), Ipv4Error::Truncated);
    }

    #[test]
    fn known_header() {
        // A real header (from a capture) whose checksum is 0xb861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(super::super::checksum(&h), 0);
    }
}
