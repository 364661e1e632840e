//! The interface: one IPv4 address, the TCP connection table keyed by
//! 4-tuple, the listeners with their SYN and accept queues, ICMP (echo,
//! unreachable, fragmentation needed), RSTs for segments nobody owns
//! (RFC 9293 §3.10.7.1), the challenge-ACK rate limit of RFC 5961 §7, and
//! the user calls (OPEN, SEND, RECEIVE, CLOSE, ABORT, STATUS) by handle.
//!
//! Half-open connections are plain table entries in SYN-RECEIVED without
//! buffers, at most `syn_backlog` per listener: a SYN flood fills that
//! bound and is dropped past it, it cannot grow memory.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

use super::seq::Seq;
use super::tcp::isn::IsnGen;
use super::tcp::{State, Status, Tcb, TcpConfig, TcpError, Verdict};
use super::wire::tcp::{Options, Segment, ACK, RST, SYN};
use super::wire::{icmp, ipv4, tcp as wtcp};
use super::Millis;

#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The address the stack answers for.
    pub addr: Ipv4Addr,
    pub tcp: TcpConfig,
    /// Half-open connections per listener.
    pub syn_backlog: usize,
    /// Challenge ACKs per second, for the whole stack (RFC 5961 §7).
    pub challenge_acks_per_sec: u32,
    /// The RFC 6528 secret; draw it at random outside tests.
    pub secret: [u8; 16],
    /// The link finishes TCP checksums ([`Packet::csum_partial`]): the
    /// stack writes only the pseudo-header's sum.
    pub csum_offload: bool,
}

/// A packet for the link, with what a link that offloads work must do to
/// it (TUN with `IFF_VNET_HDR` takes both as its `virtio_net_hdr`).
#[derive(Debug)]
pub struct Packet {
    pub bytes: Vec<u8>,
    /// Cut the TCP payload into segments of this many bytes (segmentation
    /// offload, `tcp.tso_max`); 0: the packet is one on the wire.
    pub gso_size: u16,
    /// The TCP checksum holds only the pseudo-header's sum, to be finished
    /// from byte [`Packet::CSUM_START`] and stored [`Packet::CSUM_OFFSET`]
    /// into it.
    pub csum_partial: bool,
}

impl Packet {
    /// The TCP header's place: the stack sends IPv4 headers without options.
    pub const CSUM_START: usize = 20;
    pub const CSUM_OFFSET: usize = 16;
    /// IPv4 and TCP headers, options included: what each segment cut from
    /// a `gso_size` packet repeats.
    pub fn header_len(&self) -> usize {
        Self::CSUM_START + usize::from(self.bytes.get(32).map_or(5, |b| b >> 4)) * 4
    }
}

impl StackConfig {
    pub fn new(addr: Ipv4Addr, secret: [u8; 16]) -> StackConfig {
        StackConfig {
            addr,
            tcp: TcpConfig::default(),
            syn_backlog: 4096,
            challenge_acks_per_sec: 1000,
            secret,
            csum_offload: false,
        }
    }
}

/// A connection, as the application names it. Stale handles (of a freed
/// connection whose slot was reused) are refused, not confused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle {
    index: u32,
    generation: u32,
}

/// Counters of what the stack did with packets, for STATUS and tests.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counters {
    pub packets_in: u64,
    pub packets_out: u64,
    pub bad_ip: u64,
    pub bad_tcp: u64,
    pub not_ours: u64,
    pub fragments_dropped: u64,
    pub rst_sent: u64,
    pub syn_dropped: u64,
    pub challenge_acks: u64,
    pub challenge_acks_suppressed: u64,
    pub icmp_echo: u64,
    pub icmp_unreachable_sent: u64,
    /// Connections that reached ESTABLISHED.
    pub established: u64,
    /// Retransmitted segments and out-of-order arrivals of connections
    /// already gone (the live ones carry their own: see `Stack::view`).
    pub retransmissions_of_closed: u64,
    pub out_of_order_of_closed: u64,
    /// State changes, by the state entered (`State::index`); `StackView`
    /// names them.
    #[serde(skip)]
    pub entered: [u64; 11],
}

struct Listener {
    backlog: usize,
    accept: VecDeque<Handle>,
    half_open: usize,
}

struct Slot {
    generation: u32,
    tcb: Option<Tcb>,
    dirty: bool,
}

pub struct Stack {
    cfg: StackConfig,
    isn: IsnGen,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// (remote address, local port) → slot.
    table: HashMap<(SocketAddrV4, u16), u32>,
    listeners: HashMap<u16, Listener>,
    outbox: VecDeque<Packet>,
    /// Buffers of sent packets handed back ([`Stack::recycle`]), so that
    /// a steady flow allocates none.
    spare: Vec<Vec<u8>>,
    dirty: Vec<u32>,
    /// Owned connections something happened to since `take_events`.
    events: Vec<Handle>,
    /// No connection's timer is due before this (it may be early: a
    /// cancelled timer only costs a scan).
    next_timer: Option<Millis>,
    ip_id: u16,
    challenge_window: Millis,
    challenge_count: u32,
    next_port: u16,
    pub counters: Counters,
}

impl Stack {
    pub fn new(cfg: StackConfig) -> Stack {
        Stack {
            isn: IsnGen::new(cfg.secret),
            next_port: 49152 + (u16::from_be_bytes([cfg.secret[0], cfg.secret[1]]) % 16000),
            cfg,
            slots: Vec::new(),
            free: Vec::new(),
            table: HashMap::new(),
            listeners: HashMap::new(),
            outbox: VecDeque::new(),
            spare: Vec::new(),
            dirty: Vec::new(),
            events: Vec::new(),
            next_timer: None,
            ip_id: 0,
            challenge_window: 0,
            challenge_count: 0,
            counters: Counters::default(),
        }
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.cfg.addr
    }

    /// LISTEN on a port with an accept queue of `backlog` connections.
    pub fn listen(&mut self, port: u16, backlog: usize) {
        self.listeners.insert(
            port,
            Listener {
                backlog: backlog.max(1),
                accept: VecDeque::new(),
                half_open: 0,
            },
        );
    }

    /// Stops listening. Connections waiting in the accept queue are reset
    /// (as a closed listening socket does); half-open ones finish their
    /// handshake into nothing and are then reset or time out.
    pub fn unlisten(&mut self, port: u16) {
        let Some(l) = self.listeners.remove(&port) else {
            return;
        };
        for h in l.accept {
            if let Some(t) = self.tcb_mut(h) {
                t.queued = false;
                t.abort();
                self.mark(h.index);
            }
        }
    }

    /// Takes an established connection from a listener's queue.
    pub fn accept(&mut self, port: u16) -> Option<Handle> {
        let h = self.listeners.get_mut(&port)?.accept.pop_front()?;
        let t = self.tcb_mut(h)?;
        t.owned = true;
        t.queued = false;
        // What arrived while it waited in the queue (a request, a FIN)
        // raised no event, since nobody owned it: the first look is owed.
        self.events.push(h);
        Some(h)
    }

    /// OPEN with a foreign socket: an active open from an ephemeral port.
    pub fn connect(&mut self, now: Millis, remote: SocketAddrV4) -> Handle {
        let mut port = self.next_port;
        while self.table.contains_key(&(remote, port)) || self.listeners.contains_key(&port) {
            port = if port == u16::MAX { 49152 } else { port + 1 };
        }
        self.next_port = if port == u16::MAX { 49152 } else { port + 1 };
        let local = SocketAddrV4::new(self.cfg.addr, port);
        let iss = self.isn.isn(now, local, remote);
        let tcb = Tcb::connect(
            &self.cfg.tcp,
            local,
            remote,
            iss,
            self.isn.ts_offset(local, remote),
        );
        let h = self.insert(tcb);
        self.mark(h.index);
        h
    }

    fn insert(&mut self, tcb: Tcb) -> Handle {
        let key = (tcb.remote, tcb.local.port());
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    tcb: None,
                    dirty: false,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.tcb = Some(tcb);
        self.table.insert(key, index);
        Handle {
            index,
            generation: slot.generation,
        }
    }

    fn handle(&self, index: u32) -> Handle {
        Handle {
            index,
            generation: self.slots[index as usize].generation,
        }
    }

    fn tcb_mut(&mut self, h: Handle) -> Option<&mut Tcb> {
        let s = self.slots.get_mut(h.index as usize)?;
        if s.generation != h.generation {
            return None;
        }
        s.tcb.as_mut()
    }

    pub fn tcb(&self, h: Handle) -> Option<&Tcb> {
        let s = self.slots.get(h.index as usize)?;
        if s.generation != h.generation {
            return None;
        }
        s.tcb.as_ref()
    }

    fn mark(&mut self, index: u32) {
        let s = &mut self.slots[index as usize];
        if !s.dirty {
            s.dirty = true;
            self.dirty.push(index);
        }
    }

    /// Runs a user call on a connection and schedules what it queued.
    fn with<R>(&mut self, h: Handle, f: impl FnOnce(&mut Tcb) -> R) -> Option<R> {
        let r = f(self.tcb_mut(h)?);
        self.mark(h.index);
        Some(r)
    }

    pub fn send(&mut self, h: Handle, data: &[u8]) -> Result<usize, TcpError> {
        self.with(h, |t| t.send(data))
            .unwrap_or(Err(TcpError::Closed))
    }

    pub fn recv(&mut self, h: Handle, buf: &mut [u8]) -> Result<usize, TcpError> {
        self.with(h, |t| t.recv(buf))
            .unwrap_or(Err(TcpError::Closed))
    }

    pub fn close(&mut self, h: Handle) {
        self.with(h, Tcb::close);
    }

    pub fn abort(&mut self, h: Handle) {
        self.with(h, Tcb::abort);
    }

    /// The application is done with the handle; the connection finishes
    /// closing on its own and is then freed.
    pub fn release(&mut self, now: Millis, h: Handle) {
        self.with(h, |t| t.release(now));
    }

    pub fn state(&self, h: Handle) -> State {
        self.tcb(h).map_or(State::Closed, |t| t.state)
    }

    pub fn facts(&self, h: Handle) -> Option<super::tcp::Facts> {
        self.tcb(h).map(Tcb::facts)
    }

    pub fn status(&self, h: Handle) -> Option<Status> {
        self.tcb(h).map(Tcb::status)
    }

    /// Each listening port's queues, in port order.
    pub fn listeners(&self) -> Vec<super::view::ListenStatus> {
        let mut v: Vec<_> = self
            .listeners
            .iter()
            .map(|(&port, l)| super::view::ListenStatus {
                port,
                backlog: l.backlog,
                queued: l.accept.len(),
                half_open: l.half_open,
            })
            .collect();
        v.sort_by_key(|l| l.port);
        v
    }

    /// STATUS of every connection (a listener is not one: see
    /// [`Stack::listeners`]).
    pub fn connections(&self) -> impl Iterator<Item = Status> + '_ {
        self.slots
            .iter()
            .filter_map(|s| s.tcb.as_ref())
            .map(Tcb::status)
    }

    /// Connections still exchanging segments: not TIME-WAIT, not CLOSED.
    pub fn active(&self) -> usize {
        self.slots
            .iter()
            .filter_map(|s| s.tcb.as_ref())
            .filter(|t| !matches!(t.state, State::TimeWait | State::Closed))
            .count()
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Whether the application has something to do: a connection touched
    /// ([`Stack::take_events`]) or one waiting to be accepted.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty() || self.listeners.values().any(|l| !l.accept.is_empty())
    }

    /// Owned connections that may be readable, writable or closed now.
    pub fn take_events(&mut self) -> Vec<Handle> {
        std::mem::take(&mut self.events)
    }

    /// The next packet to put on the link.
    pub fn transmit(&mut self) -> Option<Vec<u8>> {
        let mut p = self.transmit_packet()?;
        // A link that does not offload gets finished packets (a stack
        // configured for segmentation offload must use `transmit_packet`).
        debug_assert_eq!(p.gso_size, 0, "segmentation offload needs transmit_packet");
        if p.csum_partial {
            super::wire::offload::complete_tcp_checksum(&mut p.bytes);
        }
        Some(p.bytes)
    }

    /// The next packet with its offload instructions.
    pub fn transmit_packet(&mut self) -> Option<Packet> {
        let p = self.outbox.pop_front()?;
        self.counters.packets_out += 1;
        Some(p)
    }

    /// When `poll` has work: now if something is due, else the earliest
    /// timer.
    pub fn poll_at(&self, now: Millis) -> Option<Millis> {
        if !self.dirty.is_empty() {
            return Some(now);
        }
        self.next_timer
    }

    /// Fires due timers and queues every segment that is due.
    pub fn poll(&mut self, now: Millis) {
        if self.next_timer.is_some_and(|t| t <= now) {
            let mut next: Option<Millis> = None;
            for i in 0..self.slots.len() {
                let Some(t) = self.slots[i].tcb.as_mut() else {
                    continue;
                };
                if t.deadline().is_some_and(|d| d <= now) {
                    let before = t.state;
                    t.on_timer(now);
                    self.after(i as u32, before);
                    self.mark(i as u32);
                }
                if let Some(d) = self.slots[i].tcb.as_ref().and_then(Tcb::deadline) {
                    next = Some(next.map_or(d, |n| n.min(d)));
                }
            }
            self.next_timer = next;
        }
        let dirty = std::mem::take(&mut self.dirty);
        for i in dirty {
            self.slots[i as usize].dirty = false;
            self.dispatch(now, i);
        }
    }

    fn dispatch(&mut self, now: Millis, i: u32) {
        let Some(mut t) = self.slots[i as usize].tcb.take() else {
            return;
        };
        let before = t.state;
        let (local, remote) = (*t.local.ip(), *t.remote.ip());
        let (outbox, ip_id, spare) = (&mut self.outbox, &mut self.ip_id, &mut self.spare);
        let rst_sent = &mut self.counters.rst_sent;
        let csum_partial = self.cfg.csum_offload;
        let wire_mss = t.wire_mss();
        t.dispatch(now, &mut |s| {
            let len = wtcp::emitted_len(s);
            let mut p = spare.pop().unwrap_or_default();
            p.clear();
            p.reserve(20 + len);
            ipv4::emit(&mut p, local, remote, ipv4::PROTO_TCP, 0, len);
            if csum_partial {
                wtcp::emit_partial(s, local, remote, &mut p);
            } else {
                wtcp::emit(s, local, remote, &mut p);
            }
            if s.flags & RST != 0 {
                *rst_sent += 1;
            }
            // Longer than one segment on the wire (segmentation offload):
            // cut into segments of what the MSS leaves beside these options.
            let per_segment = wire_mss.saturating_sub(len - 20 - s.payload.len()).max(1);
            let gso_size = if s.payload.len() > per_segment {
                per_segment as u16
            } else {
                0
            };
            enqueue(
                outbox,
                ip_id,
                Packet {
                    bytes: p,
                    gso_size,
                    csum_partial,
                },
            );
        });
        if let Some(d) = t.deadline() {
            self.next_timer = Some(self.next_timer.map_or(d, |n| n.min(d)));
        }
        self.slots[i as usize].tcb = Some(t);
        self.after(i, before);
    }

    /// Bookkeeping after a connection's state may have changed: SYN-queue
    /// counts, the accept queue, events, freeing.
    fn after(&mut self, i: u32, before: State) {
        let h = self.handle(i);
        let Some(t) = self.slots[i as usize].tcb.as_mut() else {
            return;
        };
        let now_state = t.state;
        if before != State::Established && now_state == State::Established {
            self.counters.established += 1;
        }
        let counted = t.transitions_counted;
        for tr in t.transitions().since(counted) {
            self.counters.entered[tr.to.index()] += 1;
        }
        t.transitions_counted = t.transitions().total();
        let port = t.local.port();
        let passive = t.passive;
        if passive && before == State::SynReceived && now_state != State::SynReceived {
            if let Some(l) = self.listeners.get_mut(&port) {
                l.half_open = l.half_open.saturating_sub(1);
                if now_state != State::Closed && !t.owned && !t.queued {
                    t.queued = true;
                    l.accept.push_back(h);
                }
            }
        }
        if t.owned {
            self.events.push(h);
        }
        if t.state == State::Closed && !t.owned && !t.queued {
            let (retx, ooo) = t.segment_counts();
            self.counters.retransmissions_of_closed += retx;
            self.counters.out_of_order_of_closed += ooo;
            self.table.remove(&(t.remote, port));
            let s = &mut self.slots[i as usize];
            s.tcb = None;
            s.generation = s.generation.wrapping_add(1);
            self.free.push(i);
        }
    }

    /// A packet the stack made whole (ICMP, resets to strangers).
    fn push_ip(&mut self, p: Vec<u8>) {
        let p = Packet {
            bytes: p,
            gso_size: 0,
            csum_partial: false,
        };
        enqueue(&mut self.outbox, &mut self.ip_id, p);
    }

    /// Hands back the buffer of a packet [`Stack::transmit`] gave out,
    /// once it is on the link.
    pub fn recycle(&mut self, p: Vec<u8>) {
        // Enough for what one turn sends; more would only hold memory
        // after a burst (with segmentation offload a buffer can be 64 KiB,
        // so these hold at most 2 MiB).
        if self.spare.len() < SPARE_BUFFERS {
            self.spare.push(p);
        }
    }

    fn challenge_allowed(&mut self, now: Millis) -> bool {
        if now >= self.challenge_window + 1000 {
            self.challenge_window = now;
            self.challenge_count = 0;
        }
        if self.challenge_count < self.cfg.challenge_acks_per_sec {
            self.challenge_count += 1;
            self.counters.challenge_acks += 1;
            true
        } else {
            self.counters.challenge_acks_suppressed += 1;
            false
        }
    }

    /// One IPv4 packet from the link.
    pub fn receive(&mut self, now: Millis, packet: &[u8]) {
        self.counters.packets_in += 1;
        let Ok(ip) = ipv4::parse(packet) else {
            self.counters.bad_ip += 1;
            return;
        };
        if ip.dst != self.cfg.addr {
            self.counters.not_ours += 1;
            return;
        }
        if ip.fragment {
            self.counters.fragments_dropped += 1;
            return;
        }
        match ip.protocol {
            ipv4::PROTO_TCP => self.receive_tcp(now, &ip),
            ipv4::PROTO_ICMP => self.receive_icmp(&ip),
            ipv4::PROTO_UDP => self.unreachable(&ip, icmp::CODE_PORT),
            _ => self.unreachable(&ip, icmp::CODE_PROTOCOL),
        }
    }

    fn send_icmp(&mut self, dst: Ipv4Addr, m: &icmp::Icmp<'_>) {
        let mut p = Vec::new();
        ipv4::emit(
            &mut p,
            self.cfg.addr,
            dst,
            ipv4::PROTO_ICMP,
            0,
            icmp::len(m),
        );
        icmp::emit(m, &mut p);
        self.push_ip(p);
    }

    /// Destination unreachable, quoting the header and 8 bytes (RFC 792).
    fn unreachable(&mut self, ip: &ipv4::Ipv4<'_>, code: u8) {
        let mut quote = ip.header.to_vec();
        quote.extend_from_slice(&ip.payload[..ip.payload.len().min(8)]);
        let m = icmp::Icmp {
            kind: icmp::UNREACHABLE,
            code,
            rest: [0; 4],
            body: &quote,
        };
        self.counters.icmp_unreachable_sent += 1;
        self.send_icmp(ip.src, &m);
    }

    fn receive_icmp(&mut self, ip: &ipv4::Ipv4<'_>) {
        let Some(m) = icmp::parse(ip.payload) else {
            self.counters.bad_ip += 1;
            return;
        };
        match (m.kind, m.code) {
            (icmp::ECHO_REQUEST, 0) => {
                self.counters.icmp_echo += 1;
                let reply = icmp::Icmp {
                    kind: icmp::ECHO_REPLY,
                    ..m
                };
                self.send_icmp(ip.src, &reply);
            }
            (icmp::UNREACHABLE, icmp::CODE_FRAG_NEEDED) => {
                // The quoted datagram is one we sent: find its connection.
                let q = m.body;
                if q.len() < 28 || q[0] >> 4 != 4 || q[9] != ipv4::PROTO_TCP {
                    return;
                }
                let ihl = usize::from(q[0] & 0x0f) * 4;
                if q.len() < ihl + 4 {
                    return;
                }
                let dst = Ipv4Addr::new(q[16], q[17], q[18], q[19]);
                let sport = u16::from_be_bytes([q[ihl], q[ihl + 1]]);
                let dport = u16::from_be_bytes([q[ihl + 2], q[ihl + 3]]);
                let mtu = usize::from(u16::from_be_bytes([m.rest[2], m.rest[3]]));
                if let Some(&i) = self.table.get(&(SocketAddrV4::new(dst, dport), sport)) {
                    if let Some(t) = self.slots[i as usize].tcb.as_mut() {
                        t.path_mtu(mtu);
                    }
                    self.mark(i);
                }
            }
            _ => {}
        }
    }

    fn receive_tcp(&mut self, now: Millis, ip: &ipv4::Ipv4<'_>) {
        let Ok(seg) = wtcp::parse(ip.src, ip.dst, ip.payload) else {
            self.counters.bad_tcp += 1;
            return;
        };
        let remote = SocketAddrV4::new(ip.src, seg.src_port);
        if let Some(&i) = self.table.get(&(remote, seg.dst_port)) {
            let Some(t) = self.slots[i as usize].tcb.as_mut() else {
                return;
            };
            // A full accept queue leaves the handshake unfinished; the
            // peer's retransmission will find room later.
            if t.passive && t.state == State::SynReceived && !seg.has(RST) {
                let full = self
                    .listeners
                    .get(&seg.dst_port)
                    .is_none_or(|l| l.accept.len() >= l.backlog);
                if full && seg.has(ACK) && !seg.has(SYN) {
                    self.counters.syn_dropped += 1;
                    return;
                }
            }
            let before = t.state;
            let verdict = t.input(now, &seg);
            match verdict {
                Verdict::Done => {}
                Verdict::Rst(seq) => self.reset(ip.src, &seg, Some(seq)),
                Verdict::Challenge => {
                    if self.challenge_allowed(now) {
                        if let Some(t) = self.slots[i as usize].tcb.as_mut() {
                            t.force_ack();
                        }
                    }
                }
            }
            self.after(i, before);
            if self.slots[i as usize].tcb.is_some() {
                self.mark(i);
            }
            return;
        }
        if let Some(l) = self.listeners.get_mut(&seg.dst_port) {
            // LISTEN (RFC 9293 §3.10.7.2).
            if seg.has(RST) {
                return;
            }
            if seg.has(ACK) {
                return self.reset(ip.src, &seg, Some(seg.ack));
            }
            if !seg.has(SYN) {
                return;
            }
            if l.half_open >= self.cfg.syn_backlog {
                self.counters.syn_dropped += 1;
                return;
            }
            l.half_open += 1;
            let local = SocketAddrV4::new(self.cfg.addr, seg.dst_port);
            let iss = self.isn.isn(now, local, remote);
            let ts = self.isn.ts_offset(local, remote);
            let t = Tcb::accept_syn(&self.cfg.tcp, local, remote, iss, ts, &seg);
            let h = self.insert(t);
            self.mark(h.index);
            return;
        }
        // CLOSED (RFC 9293 §3.10.7.1).
        if !seg.has(RST) {
            let seq = seg.has(ACK).then_some(seg.ack);
            self.reset(ip.src, &seg, seq);
        }
    }

    /// A RST answering `seg`: with `seq` when the segment had an ACK,
    /// else acknowledging it.
    fn reset(&mut self, dst: Ipv4Addr, seg: &Segment<'_>, seq: Option<Seq>) {
        let (seq, ack, flags) = match seq {
            Some(s) => (s, Seq(0), RST),
            None => (Seq(0), seg.seq + seg.seq_len(), RST | ACK),
        };
        let r = Segment {
            src_port: seg.dst_port,
            dst_port: seg.src_port,
            seq,
            ack,
            flags,
            window: 0,
            options: Options::default(),
            payload: &[],
        };
        let mut p = Vec::new();
        ipv4::emit(
            &mut p,
            self.cfg.addr,
            dst,
            ipv4::PROTO_TCP,
            0,
            wtcp::emitted_len(&r),
        );
        wtcp::emit(&r, self.cfg.addr, dst, &mut p);
        self.counters.rst_sent += 1;
        self.push_ip(p);
    }
}

/// Packet buffers kept for reuse (see [`Stack::recycle`]).
const SPARE_BUFFERS: usize = 32;

/// Puts a packet in the outbox with its IP ID (RFC 6864: any value for
/// atomic datagrams; a counter keeps captures readable) and its header
/// checksum again.
fn enqueue(outbox: &mut VecDeque<Packet>, ip_id: &mut u16, mut p: Packet) {
    *ip_id = ip_id.wrapping_add(1);
    let b = &mut p.bytes;
    b[4..6].copy_from_slice(&ip_id.to_be_bytes());
    b[10..12].copy_from_slice(&[0, 0]);
    let c = super::wire::checksum(&b[..20]);
    b[10..12].copy_from_slice(&c.to_be_bytes());
    outbox.push_back(p);
}
