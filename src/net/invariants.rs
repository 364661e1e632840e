//! Arbitrary input against a live stack, for the fuzz target and its
//! stable replay: a listener, one connection brought to ESTABLISHED by a
//! real handshake, then segments built from the input (valid checksums,
//! sequence numbers near the connection's, any flags, options and
//! payload), raw packets, user calls and clock jumps. It must not panic,
//! and every packet it sends must be well-formed IPv4 with a valid TCP or
//! ICMP checksum.

use std::net::Ipv4Addr;

use super::seq::Seq;
use super::wire::tcp::{self as wtcp, Options, Segment, ACK, SYN};
use super::wire::{icmp, ipv4};
use super::{Millis, Stack, StackConfig};

const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

fn packet(s: &Segment<'_>) -> Vec<u8> {
    let mut p = Vec::new();
    ipv4::emit(&mut p, PEER, US, ipv4::PROTO_TCP, 1, wtcp::emitted_len(s));
    wtcp::emit(s, PEER, US, &mut p);
    p
}

/// Drains the stack's output, checking each packet; returns the last TCP
/// segment's (seq, ack) towards port 5000.
fn drain(stack: &mut Stack, now: Millis) -> Option<(u32, u32)> {
    stack.poll(now);
    let mut last = None;
    while let Some(p) = stack.transmit() {
        let ip = ipv4::parse(&p).expect("the stack emits valid IPv4");
        assert_eq!(ip.src, US);
        match ip.protocol {
            ipv4::PROTO_TCP => {
                let s = wtcp::parse(ip.src, ip.dst, ip.payload).expect("valid TCP checksum");
                if s.dst_port == 5000 {
                    last = Some((s.seq.0, s.ack.0));
                }
            }
            ipv4::PROTO_ICMP => {
                icmp::parse(ip.payload).expect("valid ICMP checksum");
            }
            other => panic!("the stack sent protocol {other}"),
        }
    }
    last
}

pub fn check(data: &[u8]) {
    let mut cfg = StackConfig::new(US, [5; 16]);
    cfg.syn_backlog = 8;
    cfg.tcp.recv_buffer = 4096;
    cfg.tcp.send_buffer = 4096;
    let mut stack = Stack::new(cfg);
    stack.listen(80, 4);
    let mut now: Millis = 0;
    let syn = Segment {
        src_port: 5000,
        dst_port: 80,
        seq: Seq(100),
        ack: Seq(0),
        flags: SYN,
        window: 65535,
        options: Options {
            mss: Some(1000),
            wscale: Some(2),
            sack_permitted: true,
            timestamps: Some((1, 0)),
            ..Options::default()
        },
        payload: &[],
    };
    stack.receive(now, &packet(&syn));
    let (iss, _) = drain(&mut stack, now).expect("a SYN-ACK");
    let mut rcv = 101u32;
    let mut snd = iss.wrapping_add(1);
    let ack = Segment {
        seq: Seq(rcv),
        ack: Seq(snd),
        flags: ACK,
        options: Options {
            timestamps: Some((2, 0)),
            ..Options::default()
        },
        ..syn
    };
    stack.receive(now, &packet(&ack));
    drain(&mut stack, now);
    let h = stack.accept(80).expect("established");

    let mut rest = data;
    let mut buf = [0u8; 2048];
    while let [op, a, b, tail @ ..] = rest {
        let n = usize::from(*b).min(tail.len());
        let (body, next) = tail.split_at(n);
        rest = next;
        match op % 8 {
            // A segment near the connection's sequence numbers.
            0..=3 => {
                let flags = *a & 0x3f;
                let delta = |x: u8| (i32::from(x as i8) * 97) as u32;
                let opt_ts = body.first().map(|&t| (u32::from(t) * 1000 + now as u32, 0));
                let s = Segment {
                    src_port: if op & 0x80 != 0 { 5001 } else { 5000 },
                    dst_port: if op & 0x40 != 0 { 81 } else { 80 },
                    seq: Seq(rcv.wrapping_add(delta(body.get(1).copied().unwrap_or(0)))),
                    ack: Seq(snd.wrapping_add(delta(body.get(2).copied().unwrap_or(0)))),
                    flags,
                    window: u16::from_be_bytes([body.get(3).copied().unwrap_or(1), *b]),
                    options: Options {
                        timestamps: opt_ts,
                        ..Options::default()
                    },
                    payload: body.get(4..).unwrap_or(&[]),
                };
                stack.receive(now, &packet(&s));
            }
            // A raw packet: the parsers' turn.
            4 => stack.receive(now, body),
            // User calls.
            5 => match a % 5 {
                0 => drop(stack.send(h, body)),
                1 => drop(stack.recv(h, &mut buf[..usize::from(*b) + 1])),
                2 => stack.close(h),
                3 => stack.abort(h),
                _ => drop(stack.status(h)),
            },
            // Time passes.
            _ => now += u64::from(*a) * u64::from(*b) + 1,
        }
        if let Some((s, a)) = drain(&mut stack, now) {
            // Follow the connection, so later segments stay near it.
            snd = s;
            rcv = a;
        }
        let _ = stack.poll_at(now);
    }
    // Whatever state it is in, time alone must bring it to an end.
    for _ in 0..64 {
        now += 60_000;
        drain(&mut stack, now);
    }
    stack.release(now, h);
    stack.unlisten(80);
    // Each poll fires each timer once: enough turns for every retry limit.
    for _ in 0..64 {
        now += 60_000;
        drain(&mut stack, now);
    }
    assert!(
        stack.is_empty(),
        "connections left after hours: {:?}",
        stack.connections().map(|s| s.state).collect::<Vec<_>>()
    );
}

#[cfg(test)]
mod tests {
    use crate::net::sim::Rng;

    #[test]
    fn seeded_inputs_hold_the_invariants() {
        let mut r = Rng::new(7);
        for i in 0..600 {
            let len = (i * 37) % 3000;
            let data: Vec<u8> = (0..len).map(|_| r.next_u64() as u8).collect();
            super::check(&data);
        }
    }
}
