//! Segment-level tests of the userland TCP/IP core (`glasshouse::net`):
//! handcrafted IPv4/TCP packets in, the stack's packets out and parsed,
//! on a fake clock. The peer is 10.0.0.1:5000, the stack 10.0.0.2:80.

use std::net::Ipv4Addr;

use glasshouse::net::seq::Seq;
use glasshouse::net::tcp::{Keepalive, State, TcpError};
use glasshouse::net::wire::tcp::{self as wtcp, Options, Segment, ACK, FIN, PSH, RST, SYN};
use glasshouse::net::wire::{icmp, ipv4};
use glasshouse::net::{Handle, Stack, StackConfig};

const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PISS: u32 = 1000;

#[derive(Debug, Clone)]
struct Out {
    flags: u8,
    seq: u32,
    ack: u32,
    window: u16,
    opts: Options,
    payload: Vec<u8>,
}

fn packet(
    sport: u16,
    flags: u8,
    seq: u32,
    ack: u32,
    window: u16,
    opts: Options,
    payload: &[u8],
) -> Vec<u8> {
    let s = Segment {
        src_port: sport,
        dst_port: 80,
        seq: Seq(seq),
        ack: Seq(ack),
        flags,
        window,
        options: opts,
        payload,
    };
    let mut p = Vec::new();
    ipv4::emit(&mut p, PEER, US, ipv4::PROTO_TCP, 1, wtcp::emitted_len(&s));
    wtcp::emit(&s, PEER, US, &mut p);
    p
}

fn syn_opts(ts: u32) -> Options {
    Options {
        mss: Some(1460),
        wscale: Some(7),
        sack_permitted: true,
        timestamps: Some((ts, 0)),
        ..Options::default()
    }
}

struct T {
    s: Stack,
    now: u64,
    /// Our (the peer's) next sequence number and the stack's.
    pnxt: u32,
    snxt: u32,
    ts_on: bool,
    /// The window the peer advertises.
    win: u16,
}

impl T {
    fn new() -> T {
        T::with(|_| {})
    }

    fn with(f: impl FnOnce(&mut StackConfig)) -> T {
        let mut cfg = StackConfig::new(US, [42; 16]);
        f(&mut cfg);
        let mut s = Stack::new(cfg);
        s.listen(80, 128);
        T {
            s,
            now: 0,
            pnxt: PISS + 1,
            snxt: 0,
            ts_on: true,
            win: 65535,
        }
    }

    fn opts(&self) -> Options {
        Options {
            timestamps: self.ts_on.then_some((self.now as u32 + 1, 0)),
            ..Options::default()
        }
    }

    fn inject(&mut self, p: &[u8]) {
        self.s.receive(self.now, p);
        self.s.poll(self.now);
    }

    /// A segment from the peer with the current sequence numbers.
    fn seg(&mut self, flags: u8, payload: &[u8]) {
        let p = packet(
            5000,
            flags,
            self.pnxt,
            self.snxt,
            self.win,
            self.opts(),
            payload,
        );
        self.inject(&p);
    }

    fn out(&mut self) -> Vec<Out> {
        self.s.poll(self.now);
        let mut v = Vec::new();
        while let Some(p) = self.s.transmit() {
            let ip = ipv4::parse(&p).expect("the stack's IPv4 header checks");
            assert_eq!((ip.src, ip.dst), (US, PEER));
            if ip.protocol != ipv4::PROTO_TCP {
                continue;
            }
            let s =
                wtcp::parse(ip.src, ip.dst, ip.payload).expect("the stack's TCP checksum checks");
            v.push(Out {
                flags: s.flags,
                seq: s.seq.0,
                ack: s.ack.0,
                window: s.window,
                opts: s.options,
                payload: s.payload.to_vec(),
            });
        }
        v
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.s.poll(self.now);
    }

    /// SYN, SYN-ACK, ACK; the accepted handle.
    fn handshake(&mut self) -> Handle {
        let p = packet(
            5000,
            SYN,
            PISS,
            0,
            65535,
            if self.ts_on {
                syn_opts(1)
            } else {
                Options {
                    mss: Some(1460),
                    ..Options::default()
                }
            },
            b"",
        );
        self.inject(&p);
        let o = self.out();
        assert_eq!(o.len(), 1, "one SYN-ACK: {o:?}");
        assert_eq!(o[0].flags, SYN | ACK);
        assert_eq!(o[0].ack, PISS + 1);
        self.snxt = o[0].seq.wrapping_add(1);
        self.advance(10);
        self.seg(ACK, b"");
        assert!(self.out().is_empty());
        let h = self
            .s
            .accept(80)
            .expect("an established connection in the accept queue");
        assert_eq!(self.s.state(h), State::Established);
        h
    }

    /// Reads everything readable.
    fn read(&mut self, h: Handle) -> Vec<u8> {
        let mut buf = vec![0u8; 1 << 20];
        match self.s.recv(h, &mut buf) {
            Ok(n) => buf[..n].to_vec(),
            Err(TcpError::WouldBlock) => Vec::new(),
            Err(e) => panic!("recv: {e:?}"),
        }
    }
}

#[test]
fn passive_handshake_negotiates_options() {
    let mut t = T::new();
    let p = packet(5000, SYN, PISS, 0, 65535, syn_opts(77), b"");
    t.inject(&p);
    let o = t.out();
    assert_eq!(o.len(), 1);
    let sa = &o[0];
    assert_eq!(sa.flags, SYN | ACK);
    assert_eq!(sa.ack, PISS + 1);
    assert_eq!(sa.opts.mss, Some(1460));
    // 256 KiB of receive buffer needs a shift of 3 to fit 16 bits.
    assert_eq!(sa.opts.wscale, Some(3));
    assert!(sa.opts.sack_permitted);
    assert_eq!(
        sa.opts.timestamps.map(|t| t.1),
        Some(77),
        "TSecr echoes our TSval"
    );
    assert!(t.s.accept(80).is_none(), "not established before the ACK");
    // The peer's SYN again (our SYN-ACK was lost): the same SYN-ACK again.
    t.inject(&p);
    let again = t.out();
    assert_eq!(
        (again.len(), again[0].flags, again[0].seq),
        (1, SYN | ACK, sa.seq)
    );
    t.snxt = sa.seq + 1;
    t.now = 100; // later than the SYN's TSval 77, or PAWS drops the ACK
    t.seg(ACK, b"");
    let h = t.s.accept(80).unwrap();
    assert_eq!(t.s.state(h), State::Established);
}

#[test]
fn a_syn_without_options_gets_none_back_and_mss_536() {
    let mut t = T::new();
    t.ts_on = false;
    let p = packet(5000, SYN, PISS, 0, 8192, Options::default(), b"");
    t.inject(&p);
    let o = t.out();
    assert_eq!(o[0].opts.wscale, None);
    assert_eq!(o[0].opts.timestamps, None);
    assert!(!o[0].opts.sack_permitted);
    t.snxt = o[0].seq + 1;
    t.seg(ACK, b"");
    let h = t.s.accept(80).unwrap();
    t.s.send(h, &[7u8; 3000]).unwrap();
    let o = t.out();
    assert!(
        o.iter().all(|s| s.payload.len() == 536),
        "MSS 536 without the option"
    );
    assert_eq!(
        o.len(),
        5,
        "Nagle keeps the short tail while data is in flight"
    );
    t.snxt += 5 * 536;
    t.seg(ACK, b"");
    let o = t.out();
    assert_eq!((o.len(), o[0].payload.len()), (1, 3000 - 5 * 536));
}

#[test]
fn data_both_ways_with_delayed_ack() {
    let mut t = T::new();
    let h = t.handshake();
    t.seg(ACK | PSH, b"hello");
    t.pnxt += 5;
    assert!(t.out().is_empty(), "one small segment: the ACK is delayed");
    assert_eq!(t.read(h), b"hello");
    t.advance(40);
    let o = t.out();
    assert_eq!(o.len(), 1);
    assert_eq!((o[0].flags, o[0].ack), (ACK, PISS + 6));
    // Two full segments: the second is acknowledged at once.
    let full = vec![1u8; 1460];
    t.seg(ACK, &full);
    t.pnxt += 1460;
    assert!(t.out().is_empty());
    t.seg(ACK, &full);
    t.pnxt += 1460;
    let o = t.out();
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].ack, t.pnxt);
    // Our data: one segment, PSH, carrying the ACK.
    assert_eq!(t.s.send(h, b"world").unwrap(), 5);
    let o = t.out();
    assert_eq!(o.len(), 1);
    assert_eq!(
        (o[0].flags, o[0].seq, &o[0].payload[..]),
        (ACK | PSH, t.snxt, &b"world"[..])
    );
    assert!(o[0].opts.timestamps.is_some());
}

#[test]
fn data_that_arrives_before_accept_is_an_event_of_the_accept() {
    let mut t = T::new();
    let p = packet(5000, SYN, PISS, 0, 65535, syn_opts(1), b"");
    t.inject(&p);
    let o = t.out();
    t.snxt = o[0].seq.wrapping_add(1);
    t.advance(10);
    t.seg(ACK, b"");
    // The request comes in right behind the handshake's last ACK, before
    // the application has accepted: nobody owns the connection, so no
    // event is raised for it, but the stack has work for the application.
    t.seg(ACK | PSH, b"GET / HTTP/1.1\r\n\r\n");
    t.pnxt += 18;
    assert!(t.s.take_events().is_empty());
    assert!(t.s.has_events(), "a connection waits in the accept queue");
    let h = t.s.accept(80).expect("queued");
    assert!(t.s.accept(80).is_none());
    assert_eq!(t.s.take_events(), vec![h], "the accept owes the first look");
    assert!(!t.s.has_events());
    assert_eq!(t.read(h), b"GET / HTTP/1.1\r\n\r\n");
}

#[test]
fn retransmission_timeout_doubles_and_an_ack_ends_it() {
    let mut t = T::new();
    let h = t.handshake();
    // The handshake measured 10 ms: RTO = max(200, 10 + 4·5) = 200.
    assert_eq!(t.s.status(h).unwrap().rto_ms, 200);
    t.s.send(h, b"data").unwrap();
    let first = t.out();
    assert_eq!(first.len(), 1);
    let mut gaps = Vec::new();
    let mut last = t.now;
    for _ in 0..4 {
        let mut waited = 0;
        loop {
            t.advance(1);
            waited += 1;
            let o = t.out();
            if !o.is_empty() {
                assert_eq!(o.len(), 1);
                assert_eq!((o[0].seq, &o[0].payload[..]), (t.snxt, &b"data"[..]));
                break;
            }
            assert!(waited < 10_000, "no retransmission");
        }
        gaps.push(t.now - last);
        last = t.now;
    }
    assert_eq!(gaps, [200, 400, 800, 1600], "RFC 6298 §5.5 backoff");
    assert_eq!(t.s.status(h).unwrap().retransmissions, 4);
    // The ACK arrives: no more retransmissions, and Karn keeps the RTO
    // from a sample of a retransmitted segment.
    t.snxt += 4;
    t.seg(ACK, b"");
    t.advance(10_000);
    assert!(t.out().is_empty());
}

#[test]
fn three_duplicate_acks_retransmit_before_the_timer() {
    let mut t = T::new();
    let h = t.handshake();
    t.s.send(h, &vec![9u8; 1448 * 6]).unwrap();
    let o = t.out();
    assert_eq!(o.len(), 6, "IW10 lets six segments go at once");
    // The first is lost; the peer acks the SYN's end three times more.
    for _ in 0..2 {
        t.seg(ACK, b"");
        assert!(t.out().is_empty(), "fewer than three dup ACKs do nothing");
    }
    t.seg(ACK, b"");
    let o = t.out();
    assert_eq!(o.len(), 1, "fast retransmit: {o:?}");
    // 1460 less 12 bytes of timestamp option (RFC 6691).
    assert_eq!((o[0].seq, o[0].payload.len()), (t.snxt, 1448));
    let st = t.s.status(h).unwrap();
    assert_eq!(st.ssthresh, 6 * 1448 / 2);
    // The retransmission fills the hole: a full ACK ends recovery.
    t.snxt += 1448 * 6;
    t.seg(ACK, b"");
    assert!(t.s.status(h).unwrap().cwnd <= 3 * 1460 + 1460);
}

#[test]
fn out_of_order_data_is_acked_at_once_with_sack() {
    let mut t = T::new();
    let h = t.handshake();
    let base = t.pnxt;
    t.pnxt = base + 100;
    t.seg(ACK, &[2u8; 100]);
    let o = t.out();
    assert_eq!(o.len(), 1, "a duplicate ACK at once");
    assert_eq!(o[0].ack, base);
    assert_eq!(o[0].opts.sack[0], Some((Seq(base + 100), Seq(base + 200))));
    assert!(t.read(h).is_empty());
    t.pnxt = base;
    t.seg(ACK, &[1u8; 100]);
    let o = t.out();
    assert_eq!(o.len(), 1, "the hole filled: ACK at once");
    assert_eq!(o[0].ack, base + 200);
    assert_eq!(o[0].opts.sack[0], None);
    let got = t.read(h);
    assert_eq!(got.len(), 200);
    assert!(got[..100].iter().all(|&b| b == 1) && got[100..].iter().all(|&b| b == 2));
    // A duplicate of old data: a duplicate ACK, nothing delivered twice.
    t.seg(ACK, &[1u8; 100]);
    let o = t.out();
    assert_eq!((o.len(), o[0].ack), (1, base + 200));
    assert!(t.read(h).is_empty());
}

#[test]
fn rst_exact_resets_in_window_challenges_outside_is_ignored() {
    let mut t = T::new();
    let h = t.handshake();
    // Outside the window: silently dropped.
    let p = packet(
        5000,
        RST,
        t.pnxt.wrapping_add(1 << 30),
        0,
        0,
        Options::default(),
        b"",
    );
    t.inject(&p);
    assert!(t.out().is_empty());
    // In the window but not RCV.NXT: a challenge ACK (RFC 5961 §3.2).
    let p = packet(5000, RST, t.pnxt + 10, 0, 0, Options::default(), b"");
    t.inject(&p);
    let o = t.out();
    assert_eq!((o.len(), o[0].flags, o[0].ack), (1, ACK, t.pnxt));
    assert_eq!(t.s.state(h), State::Established);
    // A SYN in ESTABLISHED: a challenge ACK, not a reset (§4.2).
    let p = packet(5000, SYN, t.pnxt + 5, 0, 0, Options::default(), b"");
    t.inject(&p);
    let o = t.out();
    assert_eq!((o.len(), o[0].flags), (1, ACK));
    assert_eq!(t.s.state(h), State::Established);
    // Exactly RCV.NXT: reset.
    let p = packet(5000, RST, t.pnxt, 0, 0, Options::default(), b"");
    t.inject(&p);
    assert!(t.out().is_empty());
    assert_eq!(t.s.state(h), State::Closed);
    assert_eq!(t.s.recv(h, &mut [0u8; 8]), Err(TcpError::Reset));
    t.s.release(t.now, h);
    t.s.poll(t.now);
    assert_eq!(t.s.len(), 0, "freed once released");
}

#[test]
fn releasing_a_connection_with_unread_data_resets_it() {
    let mut t = T::new();
    let h = t.handshake();
    t.seg(ACK | PSH, b"never read");
    t.pnxt += 10;
    t.advance(40);
    t.out();
    t.s.release(t.now, h);
    let o = t.out();
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(o[0].flags & RST, RST, "a RST, not a FIN: {o:?}");
    assert_eq!(o[0].flags & FIN, 0);
    t.s.poll(t.now);
    assert_eq!(t.s.len(), 0, "freed after the reset");
}

#[test]
fn data_after_release_resets_the_orphan() {
    let mut t = T::new();
    let h = t.handshake();
    t.s.release(t.now, h);
    let o = t.out();
    assert_eq!(
        (o.len(), o[0].flags & FIN),
        (1, FIN),
        "nothing unread: a FIN"
    );
    assert_eq!(t.s.state(h), State::FinWait1);
    // The peer goes on sending to an application that is gone.
    t.seg(ACK | PSH, b"more");
    let o = t.out();
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(o[0].flags & RST, RST, "{o:?}");
    t.s.poll(t.now);
    assert_eq!(t.s.len(), 0);
}

#[test]
fn challenge_acks_are_rate_limited() {
    let mut t = T::with(|c| c.challenge_acks_per_sec = 2);
    let _h = t.handshake();
    let mut acks = 0;
    for i in 0..5 {
        let p = packet(5000, RST, t.pnxt + 1 + i, 0, 0, Options::default(), b"");
        t.inject(&p);
        acks += t.out().len();
    }
    assert_eq!(acks, 2);
    assert_eq!(t.s.counters.challenge_acks_suppressed, 3);
    t.advance(1000);
    let p = packet(5000, RST, t.pnxt + 1, 0, 0, Options::default(), b"");
    t.inject(&p);
    assert_eq!(t.out().len(), 1, "a new second, a new allowance");
}

#[test]
fn passive_close_through_close_wait_and_last_ack() {
    let mut t = T::new();
    let h = t.handshake();
    t.seg(ACK | FIN, b"bye");
    t.pnxt += 4;
    let o = t.out();
    assert_eq!(
        (o.len(), o[0].ack),
        (1, t.pnxt),
        "a FIN is acknowledged at once"
    );
    assert_eq!(t.s.state(h), State::CloseWait);
    assert_eq!(t.read(h), b"bye");
    assert_eq!(
        t.s.recv(h, &mut [0u8; 4]),
        Ok(0),
        "then the end of the stream"
    );
    // Half-close: we may still send.
    t.s.send(h, b"still here").unwrap();
    t.s.close(h);
    let o = t.out();
    assert_eq!(o.len(), 1);
    assert_eq!(
        (o[0].flags, &o[0].payload[..]),
        (ACK | PSH | FIN, &b"still here"[..])
    );
    assert_eq!(t.s.state(h), State::LastAck);
    t.s.release(t.now, h);
    t.snxt += 11;
    t.seg(ACK, b"");
    assert_eq!(t.s.len(), 0, "LAST-ACK → CLOSED frees the entry");
}

#[test]
fn active_close_waits_two_msl_in_time_wait() {
    let mut t = T::with(|c| c.tcp.msl = 1000);
    let h = t.handshake();
    t.s.close(h);
    let o = t.out();
    assert_eq!((o.len(), o[0].flags, o[0].seq), (1, ACK | FIN, t.snxt));
    assert_eq!(t.s.state(h), State::FinWait1);
    t.snxt += 1;
    t.seg(ACK, b"");
    assert_eq!(t.s.state(h), State::FinWait2);
    t.seg(ACK | FIN, b"");
    t.pnxt += 1;
    let o = t.out();
    assert_eq!((o.len(), o[0].ack), (1, t.pnxt));
    assert_eq!(t.s.state(h), State::TimeWait);
    t.s.release(t.now, h);
    // The peer lost our ACK and sends its FIN again: ACK again, restart.
    t.advance(1500);
    t.pnxt -= 1;
    t.seg(ACK | FIN, b"");
    t.pnxt += 1;
    let o = t.out();
    assert_eq!((o.len(), o[0].ack), (1, t.pnxt));
    t.advance(1999);
    assert_eq!(t.s.len(), 1, "still in TIME-WAIT 2·MSL after the restart");
    t.advance(1);
    assert_eq!(t.s.len(), 0);
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let mut t = T::new();
    let h = t.handshake();
    t.s.close(h);
    let o = t.out();
    assert_eq!(o[0].flags, ACK | FIN);
    // The peer's FIN crosses ours: it does not acknowledge our FIN.
    t.seg(ACK | FIN, b"");
    t.pnxt += 1;
    assert_eq!(t.s.state(h), State::Closing);
    t.out();
    t.snxt += 1;
    t.seg(ACK, b"");
    assert_eq!(t.s.state(h), State::TimeWait);
}

#[test]
fn simultaneous_open_through_syn_received() {
    let mut cfg = StackConfig::new(US, [1; 16]);
    cfg.tcp.rto_initial = 1000;
    let mut s = Stack::new(cfg);
    let h = s.connect(0, "10.0.0.1:5000".parse().unwrap());
    s.poll(0);
    let p = s.transmit().unwrap();
    let ip = ipv4::parse(&p).unwrap();
    let syn = wtcp::parse(ip.src, ip.dst, ip.payload).unwrap();
    assert_eq!(syn.flags, SYN);
    assert_eq!(syn.options.timestamps.map(|t| t.1), Some(0));
    let lport = syn.src_port;
    let iss = syn.seq.0;
    let pkt = |flags, seq, ack| {
        let s = Segment {
            src_port: 5000,
            dst_port: lport,
            seq: Seq(seq),
            ack: Seq(ack),
            flags,
            window: 1000,
            options: Options {
                mss: Some(1000),
                ..Options::default()
            },
            payload: &[],
        };
        let mut p = Vec::new();
        ipv4::emit(&mut p, PEER, US, ipv4::PROTO_TCP, 1, wtcp::emitted_len(&s));
        wtcp::emit(&s, PEER, US, &mut p);
        p
    };
    // The peer's own SYN crosses ours.
    s.receive(1, &pkt(SYN, 500, 0));
    s.poll(1);
    assert_eq!(s.state(h), State::SynReceived);
    let p = s.transmit().unwrap();
    let ip = ipv4::parse(&p).unwrap();
    let sa = wtcp::parse(ip.src, ip.dst, ip.payload).unwrap();
    assert_eq!((sa.flags, sa.seq.0, sa.ack.0), (SYN | ACK, iss, 501));
    // Its SYN-ACK: ESTABLISHED.
    s.receive(2, &pkt(SYN | ACK, 500, iss + 1));
    s.poll(2);
    assert_eq!(s.state(h), State::Established);
}

#[test]
fn active_open_to_a_refusing_peer_reports_reset() {
    let mut s = Stack::new(StackConfig::new(US, [3; 16]));
    let h = s.connect(0, "10.0.0.1:5000".parse().unwrap());
    s.poll(0);
    let p = s.transmit().unwrap();
    let ip = ipv4::parse(&p).unwrap();
    let syn = wtcp::parse(ip.src, ip.dst, ip.payload).unwrap();
    // A RST whose ACK is wrong is ignored; the right one refuses.
    for (ack, state) in [
        (syn.seq.0 + 7, State::SynSent),
        (syn.seq.0 + 1, State::Closed),
    ] {
        let r = Segment {
            src_port: 5000,
            dst_port: syn.src_port,
            seq: Seq(0),
            ack: Seq(ack),
            flags: RST | ACK,
            window: 0,
            options: Options::default(),
            payload: &[],
        };
        let mut p = Vec::new();
        ipv4::emit(&mut p, PEER, US, ipv4::PROTO_TCP, 1, wtcp::emitted_len(&r));
        wtcp::emit(&r, PEER, US, &mut p);
        s.receive(1, &p);
        s.poll(1);
        assert_eq!(s.state(h), state);
    }
    assert_eq!(s.recv(h, &mut [0u8; 1]), Err(TcpError::Reset));
}

#[test]
fn syn_retransmissions_give_up() {
    let mut cfg = StackConfig::new(US, [3; 16]);
    cfg.tcp.syn_retries = 2;
    let mut s = Stack::new(cfg);
    let h = s.connect(0, "10.0.0.1:5000".parse().unwrap());
    let mut sent = 0;
    for now in 0..20_000 {
        s.poll(now);
        while s.transmit().is_some() {
            sent += 1;
        }
    }
    assert_eq!(sent, 3, "the SYN and two retransmissions");
    assert_eq!(s.recv(h, &mut [0u8; 1]), Err(TcpError::TimedOut));
}

#[test]
fn closed_ports_get_resets_per_rfc_9293() {
    let mut t = T::new();
    // A SYN to a port nobody listens on: RST|ACK acknowledging it.
    let s = Segment {
        src_port: 5000,
        dst_port: 81,
        seq: Seq(10),
        ack: Seq(0),
        flags: SYN,
        window: 100,
        options: Options::default(),
        payload: b"ab",
    };
    let mut p = Vec::new();
    ipv4::emit(&mut p, PEER, US, ipv4::PROTO_TCP, 1, wtcp::emitted_len(&s));
    wtcp::emit(&s, PEER, US, &mut p);
    t.inject(&p);
    let o = t.out();
    assert_eq!(
        (o.len(), o[0].flags, o[0].seq, o[0].ack),
        (1, RST | ACK, 0, 13)
    );
    // An ACK to the listener that matches no connection: RST at its ACK.
    let p = packet(6000, ACK, 1, 12345, 100, Options::default(), b"");
    t.inject(&p);
    let o = t.out();
    assert_eq!((o.len(), o[0].flags, o[0].seq), (1, RST, 12345));
    // A RST to nobody: nothing back.
    let p = packet(6000, RST, 1, 0, 0, Options::default(), b"");
    t.inject(&p);
    assert!(t.out().is_empty());
}

#[test]
fn syn_queue_is_bounded() {
    let mut t = T::with(|c| c.syn_backlog = 4);
    for port in 0..10u16 {
        let p = packet(6000 + port, SYN, 1, 0, 100, Options::default(), b"");
        t.inject(&p);
    }
    assert_eq!(t.out().len(), 4);
    assert_eq!(t.s.counters.syn_dropped, 6);
    assert_eq!(t.s.len(), 4);
}

#[test]
fn half_open_entries_time_out_and_free_the_queue() {
    let mut t = T::with(|c| {
        c.syn_backlog = 1;
        c.tcp.syn_retries = 1;
    });
    let p = packet(6000, SYN, 1, 0, 100, Options::default(), b"");
    t.inject(&p);
    for _ in 0..10 {
        t.advance(1000);
    }
    t.out();
    assert_eq!(t.s.len(), 0, "the unanswered SYN-ACK gave up");
    let p = packet(6001, SYN, 1, 0, 100, Options::default(), b"");
    t.inject(&p);
    assert_eq!(t.out().len(), 1, "room in the SYN queue again");
}

#[test]
fn paws_drops_old_timestamps() {
    let mut t = T::new();
    let h = t.handshake();
    t.now = 100;
    t.seg(ACK, b"new");
    t.pnxt += 3;
    assert_eq!(t.read(h), b"new");
    // A segment whose TSval is older than the last one seen.
    let p = packet(
        5000,
        ACK,
        t.pnxt,
        t.snxt,
        65535,
        Options {
            timestamps: Some((5, 0)),
            ..Options::default()
        },
        b"old",
    );
    t.inject(&p);
    let o = t.out();
    assert_eq!(
        (o.len(), o[0].ack),
        (1, t.pnxt),
        "an ACK, and the data dropped"
    );
    assert!(t.read(h).is_empty());
}

#[test]
fn zero_window_is_probed_until_it_opens() {
    let mut t = T::new();
    let h = t.handshake();
    // The peer shuts its window.
    let p = packet(5000, ACK, t.pnxt, t.snxt, 0, t.opts(), b"");
    t.inject(&p);
    t.s.send(h, b"abcdef").unwrap();
    assert!(t.out().is_empty(), "nothing goes into a zero window");
    let mut probes = Vec::new();
    for _ in 0..5000 {
        t.advance(1);
        for o in t.out() {
            assert_eq!((o.seq, o.payload.len()), (t.snxt, 1), "a one-byte probe");
            probes.push(t.now);
            // The peer, still full, acknowledges nothing new.
            let p = packet(5000, ACK, t.pnxt, t.snxt, 0, t.opts(), b"");
            t.inject(&p);
        }
    }
    assert!(probes.len() >= 3, "probes: {probes:?}");
    assert!(
        probes.windows(3).all(|w| w[2] - w[1] >= w[1] - w[0]),
        "probes back off: {probes:?}"
    );
    assert_eq!(
        t.s.state(h),
        State::Established,
        "a peer that answers probes is kept"
    );
    // The window opens: all of the data goes.
    let p = packet(5000, ACK, t.pnxt, t.snxt, 65535, t.opts(), b"");
    t.inject(&p);
    let o = t.out();
    let sent: Vec<u8> = o.iter().flat_map(|s| s.payload.clone()).collect();
    assert_eq!(sent, b"abcdef");
}

#[test]
fn an_orphan_at_a_shut_window_is_given_up_with_an_acceptable_reset() {
    let mut t = T::with(|c| c.tcp.orphan_retries = 3);
    let h = t.handshake();
    let p = packet(5000, ACK, t.pnxt, t.snxt, 0, t.opts(), b"");
    t.inject(&p);
    t.s.send(h, b"never delivered").unwrap();
    // The application lets go with the data unsent: a FIN is queued
    // behind it, and only probes can move either.
    t.s.release(t.now, h);
    let (mut probes, mut reset) = (0, None);
    for _ in 0..600_000 {
        t.advance(10);
        for o in t.out() {
            if o.flags & RST != 0 {
                reset = Some(o);
            } else {
                assert_eq!(o.payload.len(), 1, "a one-byte probe: {o:?}");
                probes += 1;
                let p = packet(5000, ACK, t.pnxt, t.snxt, 0, t.opts(), b"");
                t.inject(&p);
            }
        }
        if reset.is_some() {
            break;
        }
    }
    let reset = reset
        .unwrap_or_else(|| panic!("the orphan is reset ({probes} probes, {:?})", t.s.state(h)));
    assert_eq!(probes, 1 + 3, "the first probe and three retries");
    // The probe byte lies past the peer's shut window: the reset carries
    // the window's edge, which the peer accepts, not SND.NXT beyond it.
    assert_eq!(reset.seq, t.snxt);
    t.s.poll(t.now);
    assert_eq!(t.s.len(), 0, "freed");
}

#[test]
fn nagle_holds_small_writes_while_data_is_in_flight() {
    let mut t = T::new();
    let h = t.handshake();
    t.s.send(h, b"a").unwrap();
    assert_eq!(t.out().len(), 1);
    t.s.send(h, b"b").unwrap();
    t.s.send(h, b"c").unwrap();
    assert!(
        t.out().is_empty(),
        "Nagle: one small segment in flight at a time"
    );
    t.snxt += 1;
    t.seg(ACK, b"");
    let o = t.out();
    assert_eq!((o.len(), &o[0].payload[..]), (1, &b"bc"[..]));
}

#[test]
fn peer_window_is_scaled_and_respected() {
    let mut t = T::new();
    // The handshake's ACK says 10 << 7 = 1280 bytes.
    t.win = 10;
    let h = t.handshake();
    t.s.send(h, &[5u8; 4000]).unwrap();
    let o = t.out();
    let sent: usize = o.iter().map(|s| s.payload.len()).sum();
    assert_eq!(sent, 1280);
    // A window of 100 << 7 from a peer that has shown 1280: half the
    // largest window is worth sending at once (sender SWS avoidance).
    t.snxt += 1280;
    t.win = 5;
    t.seg(ACK, b"");
    let o = t.out();
    assert_eq!((o.len(), o[0].payload.len()), (1, 640));
    t.snxt += 640;
    t.win = 2;
    t.seg(ACK, b"");
    assert!(
        t.out().is_empty(),
        "256 bytes of a 1280 window: silly, wait"
    );
    let mut waited = 0;
    while t.out().is_empty() {
        t.advance(1);
        waited += 1;
        assert!(waited < 5000, "the persist timer sends it in the end");
    }
}

#[test]
fn our_window_shrinks_as_data_waits_and_reopens_when_read() {
    let mut t = T::with(|c| c.tcp.recv_buffer = 8192);
    t.ts_on = false;
    let h = t.handshake();
    for _ in 0..8 {
        t.seg(ACK, &[3u8; 1024]);
        t.pnxt += 1024;
    }
    let o = t.out();
    let last = o.last().unwrap();
    assert_eq!((last.ack, last.window), (t.pnxt, 0), "the buffer is full");
    // Data beyond a zero window is not taken.
    t.seg(ACK, b"x");
    let o = t.out();
    assert_eq!((o.len(), o[0].ack), (1, t.pnxt));
    assert_eq!(t.read(h).len(), 8192);
    let o = t.out();
    assert_eq!(o.len(), 1, "a window update after the read");
    assert!(o[0].window > 0);
}

#[test]
fn icmp_echo_and_unreachable() {
    let mut t = T::new();
    let m = icmp::Icmp {
        kind: icmp::ECHO_REQUEST,
        code: 0,
        rest: [0, 9, 0, 1],
        body: b"ping!",
    };
    let mut p = Vec::new();
    ipv4::emit(&mut p, PEER, US, ipv4::PROTO_ICMP, 1, icmp::len(&m));
    icmp::emit(&m, &mut p);
    t.s.receive(0, &p);
    let r = t.s.transmit().unwrap();
    let ip = ipv4::parse(&r).unwrap();
    let e = icmp::parse(ip.payload).unwrap();
    assert_eq!(
        (ip.dst, e.kind, e.rest, e.body),
        (PEER, icmp::ECHO_REPLY, [0, 9, 0, 1], &b"ping!"[..])
    );
    // UDP to us: port unreachable quoting the datagram.
    let mut p = Vec::new();
    ipv4::emit(&mut p, PEER, US, ipv4::PROTO_UDP, 1, 12);
    p.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4]);
    t.s.receive(0, &p);
    let r = t.s.transmit().unwrap();
    let ip = ipv4::parse(&r).unwrap();
    let u = icmp::parse(ip.payload).unwrap();
    assert_eq!((u.kind, u.code), (icmp::UNREACHABLE, icmp::CODE_PORT));
    assert_eq!(u.body.len(), 28);
    // Bad checksums and foreign addresses are counted, not answered.
    let mut bad = p.clone();
    bad[8] = 1;
    t.s.receive(0, &bad);
    let mut other = Vec::new();
    ipv4::emit(
        &mut other,
        PEER,
        Ipv4Addr::new(10, 0, 0, 9),
        ipv4::PROTO_UDP,
        1,
        0,
    );
    t.s.receive(0, &other);
    assert!(t.s.transmit().is_none());
    assert_eq!((t.s.counters.bad_ip, t.s.counters.not_ours), (1, 1));
}

#[test]
fn fragmentation_needed_lowers_the_mss() {
    let mut t = T::new();
    let h = t.handshake();
    t.s.send(h, &[1u8; 1460]).unwrap();
    let o = t.out();
    assert_eq!(o[0].payload.len(), 1448, "the MSS less the timestamps");
    // The router's report quotes our segment.
    let mut quote = Vec::new();
    ipv4::emit(&mut quote, US, PEER, ipv4::PROTO_TCP, 0, 20);
    quote.extend_from_slice(&[0, 80, 0x13, 0x88, 0, 0, 0, 0]);
    let m = icmp::Icmp {
        kind: icmp::UNREACHABLE,
        code: icmp::CODE_FRAG_NEEDED,
        rest: [0, 0, 0x05, 0xdc - 0x64],
        body: &quote,
    };
    let mut p = Vec::new();
    ipv4::emit(&mut p, PEER, US, ipv4::PROTO_ICMP, 1, icmp::len(&m));
    icmp::emit(&m, &mut p);
    t.inject(&p);
    let o = t.out();
    assert!(
        !o.is_empty() && o.iter().all(|s| s.payload.len() <= 1400 - 40),
        "{:?}",
        o.iter().map(|s| s.payload.len()).collect::<Vec<_>>()
    );
    assert_eq!(t.s.status(h).unwrap().mss, 1360);
}

#[test]
fn abort_sends_a_reset() {
    let mut t = T::new();
    let h = t.handshake();
    t.s.abort(h);
    let o = t.out();
    assert_eq!((o.len(), o[0].flags & RST, o[0].seq), (1, RST, t.snxt));
    assert_eq!(t.s.state(h), State::Closed);
}

/// Steps the clock 1 ms at a time until the stack sends something; the
/// time it took and what it sent.
fn next_output(t: &mut T, limit: u64) -> (u64, Vec<Out>) {
    let start = t.now;
    loop {
        t.advance(1);
        let o = t.out();
        if !o.is_empty() {
            return (t.now - start, o);
        }
        assert!(t.now - start < limit, "nothing sent in {limit} ms");
    }
}

/// A stack probing after 1 s idle, every 500 ms, giving up after two.
fn with_keepalive() -> T {
    T::with(|c| {
        c.tcp.keepalive = Some(Keepalive {
            idle: 1000,
            interval: 500,
            probes: 2,
        })
    })
}

#[test]
fn keepalive_probes_an_idle_peer_and_gives_up_after_unanswered_probes() {
    let mut t = with_keepalive();
    let h = t.handshake();
    // The handshake's last segment was heard at `now`: idle from there.
    let (waited, o) = next_output(&mut t, 5000);
    assert_eq!(waited, 1000, "the first probe after the idle time");
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].flags, ACK);
    assert_eq!(
        o[0].seq,
        t.snxt.wrapping_sub(1),
        "SND.NXT - 1 (RFC 9293 §3.8.4)"
    );
    assert!(o[0].payload.is_empty());
    assert_eq!(o[0].ack, t.pnxt);
    // The peer answers: a whole idle period again before the next.
    t.advance(5);
    t.seg(ACK, b"");
    assert!(t.out().is_empty(), "the answer is not answered");
    let (waited, _) = next_output(&mut t, 5000);
    assert_eq!(waited, 1000);
    // Unanswered now: one more probe an interval later, then a reset.
    let (waited, o) = next_output(&mut t, 5000);
    assert_eq!((waited, o[0].flags), (500, ACK));
    let (waited, o) = next_output(&mut t, 5000);
    assert_eq!(waited, 500);
    assert_eq!(o.len(), 1);
    assert_eq!(
        o[0].flags & RST,
        RST,
        "given up after two unanswered probes: {o:?}"
    );
    assert_eq!(o[0].seq, t.snxt);
    let mut buf = [0u8; 8];
    assert_eq!(t.s.recv(h, &mut buf), Err(TcpError::TimedOut));
}

#[test]
fn keepalive_is_off_by_default_and_quiet_while_data_is_outstanding() {
    let mut t = T::new();
    t.handshake();
    t.advance(10 * 3600 * 1000);
    assert!(t.out().is_empty(), "no probe without keep-alive");

    let mut t = with_keepalive();
    let h = t.handshake();
    t.s.send(h, b"data").unwrap();
    let o = t.out();
    assert_eq!(o.len(), 1);
    // Unacknowledged data: the retransmission timer probes the peer, and
    // the keep-alive timer sends nothing of its own.
    for _ in 0..4 {
        let (_, o) = next_output(&mut t, 20_000);
        assert!(
            o.iter().all(|s| s.payload == b"data"),
            "only retransmissions while data is outstanding: {o:?}"
        );
    }
}

#[test]
fn segmentation_offload_sends_whole_segments_in_one_packet_for_the_link_to_cut() {
    let mut t = T::with(|c| {
        c.tcp.tso_max = 65_000;
        c.csum_offload = true;
    });
    let h = t.handshake();
    let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7) as u8).collect();
    assert_eq!(t.s.send(h, &data), Ok(50_000));
    t.s.poll(t.now);
    let mut packets = Vec::new();
    while let Some(p) = t.s.transmit_packet() {
        packets.push(p);
    }
    // The initial window, ten segments of 1448 bytes (1460 less the
    // timestamps), leaves in one packet marked to be cut at 1448.
    assert_eq!(packets.len(), 1, "{packets:?}");
    let mut p = packets.pop().unwrap();
    assert_eq!(p.gso_size, 1448);
    assert!(p.csum_partial);
    assert_eq!(p.header_len(), 20 + 32);
    let ip = ipv4::parse(&p.bytes).expect("the IPv4 header is whole");
    assert_eq!(
        wtcp::parse(ip.src, ip.dst, ip.payload).unwrap_err(),
        wtcp::TcpError::Checksum,
        "the TCP checksum is left for the link"
    );
    glasshouse::net::wire::offload::complete_tcp_checksum(&mut p.bytes);
    let ip = ipv4::parse(&p.bytes).unwrap();
    let seg = wtcp::parse(ip.src, ip.dst, ip.payload).expect("completed, it checks");
    assert_eq!(seg.payload, &data[..14_480]);
    assert_eq!(seg.seq.0, t.snxt);
    // Acknowledged, the window grows and the next packet is larger, still
    // in whole segments.
    t.snxt = t.snxt.wrapping_add(14_480);
    t.seg(ACK, b"");
    t.s.poll(t.now);
    let next = t.s.transmit_packet().expect("more data");
    let ip = ipv4::parse(&next.bytes).unwrap();
    let len = ip.payload.len() - 32;
    assert!(len > 14_480 && len % 1448 == 0, "{len} bytes");
    assert_eq!(next.gso_size, 1448);
}
