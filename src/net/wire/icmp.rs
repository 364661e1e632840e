//! ICMPv4 (RFC 792) as far as a TCP needs it: echo, destination unreachable
//! (port and protocol) to send, "fragmentation needed" (RFC 1191) to learn
//! a smaller path MTU from.

use super::checksum;

pub const ECHO_REPLY: u8 = 0;
pub const UNREACHABLE: u8 = 3;
pub const ECHO_REQUEST: u8 = 8;
pub const CODE_PROTOCOL: u8 = 2;
pub const CODE_PORT: u8 = 3;
pub const CODE_FRAG_NEEDED: u8 = 4;

/// A parsed message: `rest` is the 4 bytes after the checksum, `body` what
/// follows (echo data, or the quoted datagram).
#[derive(Debug, Clone, Copy)]
pub struct Icmp<'a> {
    pub kind: u8,
    pub code: u8,
    pub rest: [u8; 4],
    pub body: &'a [u8],
}

pub fn parse(data: &[u8]) -> Option<Icmp<'_>> {
    if data.len() < 8 || checksum(data) != 0 {
        return None;
    }
    Some(Icmp {
        kind: data[0],
        code: data[1],
        rest: [data[4], data[5], data[6], data[7]],
        body: &data[8..],
    })
}

pub fn emit(m: &Icmp<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[m.kind, m.code, 0, 0]);
    out.extend_from_slice(&m.rest);
    out.extend_from_slice(m.body);
    let c = checksum(&out[start..]);
    out[start + 2..start + 4].copy_from_slice(&c.to_be_bytes());
}

pub fn len(m: &Icmp<'_>) -> usize {
    8 + m.body.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = Icmp {
            kind: ECHO_REQUEST,
            code: 0,
            rest: [0, 1, 0, 2],
            body: b"ping",
        };
        let mut out = Vec::new();
        emit(&m, &mut out);
        let p = parse(&out).unwrap();
        assert_eq!(
            (p.kind, p.rest, p.body),
            (ECHO_REQUEST, [0, 1, 0, 2], &b"ping"[..])
        );
        out[8] ^= 1;
        assert!(parse(&out).is_none());
    }
}
