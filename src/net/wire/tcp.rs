//! TCP segments (RFC 9293 §3.1) with the options the stack negotiates: MSS,
//! window scale and timestamps (RFC 7323), SACK-permitted and SACK blocks
//! (RFC 2018). The checksum covers the IPv4 pseudo-header.

use std::net::Ipv4Addr;

use super::{fold, sum};
use crate::net::seq::Seq;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// The options of one segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    /// (TSval, TSecr).
    pub timestamps: Option<(u32, u32)>,
    /// Up to three SACK blocks, `[left, right)`.
    pub sack: [Option<(Seq, Seq)>; 3],
}

/// A parsed segment; `payload` borrows the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: Seq,
    pub ack: Seq,
    pub flags: u8,
    /// The window field as sent (unscaled).
    pub window: u16,
    pub options: Options,
    pub payload: &'a [u8],
}

impl Segment<'_> {
    /// A segment of zeros and no options, to build others from.
    pub fn empty() -> Segment<'static> {
        Segment {
            src_port: 0,
            dst_port: 0,
            seq: Seq(0),
            ack: Seq(0),
            flags: 0,
            window: 0,
            options: Options::default(),
            payload: &[],
        }
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// The sequence space the segment occupies: its payload, plus one each
    /// for SYN and FIN.
    pub fn seq_len(&self) -> usize {
        self.payload.len() + usize::from(self.has(SYN)) + usize::from(self.has(FIN))
    }
}

/// Why bytes were not accepted as a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpError {
    Truncated,
    Checksum,
}

fn pseudo(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> u32 {
    let mut p = [0u8; 12];
    p[..4].copy_from_slice(&src.octets());
    p[4..8].copy_from_slice(&dst.octets());
    p[9] = crate::net::wire::ipv4::PROTO_TCP;
    p[10..12].copy_from_slice(&(len as u16).to_be_bytes());
    sum(&p, 0)
}

pub fn parse(src: Ipv4Addr, dst: Ipv4Addr, data: &[u8]) -> Result<Segment<'_>, TcpError> {
    if data.len() < 20 {
        return Err(TcpError::Truncated);
    }
    let off = usize::from(data[12] >> 4) * 4;
    if off < 20 || off > data.len() {
        return Err(TcpError::Truncated);
    }
    if fold(sum(data, pseudo(src, dst, data.len()))) != 0 {
        return Err(TcpError::Checksum);
    }
    let be16 = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]);
    let be32 = |i: usize| u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    Ok(Segment {
        src_port: be16(0),
        dst_port: be16(2),
        seq: Seq(be32(4)),
        ack: Seq(be32(8)),
        flags: data[13] & 0x3f,
        window: be16(14),
        options: parse_options(&data[20..off]),
        payload: &data[off..],
    })
}

/// Unknown options are skipped by their length; a malformed list ends the
/// parse with what was read so far (RFC 9293 §3.1: options must not break
/// the connection).
fn parse_options(mut o: &[u8]) -> Options {
    let mut opts = Options::default();
    while let Some(&kind) = o.first() {
        match kind {
            0 => break,
            1 => {
                o = &o[1..];
                continue;
            }
            _ => {}
        }
        let Some(&len) = o.get(1) else { break };
        let len = usize::from(len);
        if len < 2 || len > o.len() {
            break;
        }
        let body = &o[2..len];
        match (kind, body.len()) {
            (2, 2) => opts.mss = Some(u16::from_be_bytes([body[0], body[1]])),
            (3, 1) => opts.wscale = Some(body[0].min(14)),
            (4, 0) => opts.sack_permitted = true,
            (8, 8) => {
                let v = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                let e = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                opts.timestamps = Some((v, e));
            }
            (5, n) if n % 8 == 0 => {
                for (i, b) in body.chunks_exact(8).take(3).enumerate() {
                    let l = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                    let r = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                    opts.sack[i] = Some((Seq(l), Seq(r)));
                }
            }
            _ => {}
        }
        o = &o[len..];
    }
    opts
}

/// The bytes `emit_options` writes for `o` (a multiple of four).
fn options_len(o: &Options) -> usize {
    let blocks = o.sack.iter().flatten().count();
    4 * usize::from(o.mss.is_some())
        + 4 * usize::from(o.sack_permitted)
        + 12 * usize::from(o.timestamps.is_some())
        + 4 * usize::from(o.wscale.is_some())
        + if blocks > 0 { 4 + 8 * blocks } else { 0 }
}

fn emit_options(o: &Options, out: &mut Vec<u8>) {
    if let Some(mss) = o.mss {
        out.extend_from_slice(&[2, 4]);
        out.extend_from_slice(&mss.to_be_bytes());
    }
    if o.sack_permitted {
        out.extend_from_slice(&[1, 1, 4, 2]);
    }
    if let Some((v, e)) = o.timestamps {
        out.extend_from_slice(&[1, 1, 8, 10]);
        out.extend_from_slice(&v.to_be_bytes());
        out.extend_from_slice(&e.to_be_bytes());
    }
    if let Some(ws) = o.wscale {
        out.extend_from_slice(&[1, 3, 3, ws]);
    }
    let blocks = o.sack.iter().flatten().count();
    if blocks > 0 {
        out.extend_from_slice(&[1, 1, 5, 2 + 8 * blocks as u8]);
        for (l, r) in o.sack.iter().flatten() {
            out.extend_from_slice(&l.0.to_be_bytes());
            out.extend_from_slice(&r.0.to_be_bytes());
        }
    }
}

/// Appends the segment (header, options, payload) with its checksum.
pub fn emit(s: &Segment<'_>, src: Ipv4Addr, dst: Ipv4Addr, out: &mut Vec<u8>) {
    emit_with(s, src, dst, out, false);
}

/// Appends the segment with only the pseudo-header's sum in the checksum
/// field, for a link that completes it (checksum offload, `CHECKSUM_PARTIAL`
/// in Linux's words): the sum is finished over the segment from its first
/// byte, field included, and inverted there.
pub fn emit_partial(s: &Segment<'_>, src: Ipv4Addr, dst: Ipv4Addr, out: &mut Vec<u8>) {
    emit_with(s, src, dst, out, true);
}

fn emit_with(s: &Segment<'_>, src: Ipv4Addr, dst: Ipv4Addr, out: &mut Vec<u8>, partial: bool) {
    let start = out.len();
    out.extend_from_slice(&s.src_port.to_be_bytes());
    out.extend_from_slice(&s.dst_port.to_be_bytes());
    out.extend_from_slice(&s.seq.0.to_be_bytes());
    out.extend_from_slice(&s.ack.0.to_be_bytes());
    out.extend_from_slice(&[0, s.flags]);
    out.extend_from_slice(&s.window.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    emit_options(&s.options, out);
    let off = out.len() - start;
    debug_assert!(off % 4 == 0 && off <= 60);
    out[start + 12] = ((off / 4) as u8) << 4;
    out.extend_from_slice(s.payload);
    let len = out.len() - start;
    let c = if partial {
        !fold(pseudo(src, dst, len))
    } else {
        fold(sum(&out[start..], pseudo(src, dst, len)))
    };
    out[start + 16..start + 18].copy_from_slice(&c.to_be_bytes());
}

/// The length `emit` will produce, for the IPv4 header written before it.
pub fn emitted_len(s: &Segment<'_>) -> usize {
    20 + options_len(&s.options) + s.payload.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_options() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        let s = Segment {
            src_port: 1234,
            dst_port: 80,
            seq: Seq(0xfffffff0),
            ack: Seq(5),
            flags: SYN | ACK,
            window: 65535,
            options: Options {
                mss: Some(1460),
                wscale: Some(7),
                sack_permitted: true,
                timestamps: Some((1, 2)),
                sack: [Some((Seq(10), Seq(20))), None, None],
            },
            payload: b"hi",
        };
        let mut out = Vec::new();
        emit(&s, a, b, &mut out);
        assert_eq!(out.len(), emitted_len(&s));
        for sack in [
            [None, None, None],
            [Some((Seq(1), Seq(2))), Some((Seq(3), Seq(4))), None],
        ] {
            let o = Options { sack, ..s.options };
            let mut v = Vec::new();
            emit_options(&o, &mut v);
            assert_eq!(v.len(), options_len(&o));
        }
        assert_eq!(parse(a, b, &out).unwrap(), s);
        // The pseudo-header is covered: another destination fails.
        assert_eq!(parse(a, a, &out).unwrap_err(), TcpError::Checksum);
        // Left partial, it fails until finished as a NIC would (the sum
        // over the segment, field included, inverted into the field).
        let mut partial = Vec::new();
        emit_partial(&s, a, b, &mut partial);
        assert_eq!(parse(a, b, &partial).unwrap_err(), TcpError::Checksum);
        let c = fold(sum(&partial, 0));
        partial[16..18].copy_from_slice(&c.to_be_bytes());
        assert_eq!(partial, out);
    }

    #[test]
    fn malformed_options_do_not_fail_the_segment() {
        let o = parse_options(&[2, 4, 5, 0xb4, 3, 0]);
        assert_eq!(o.mss, Some(1460));
        assert_eq!(o.wscale, None);
        assert_eq!(parse_options(&[8, 200]), Options::default());
    }
}
