//! One TCP connection (RFC 9293) as a state machine without I/O: the
//! stack hands it segments addressed to its 4-tuple (`input`), asks it for
//! the segments it wants to send (`dispatch`), tells it the time
//! (`on_timer`, `deadline`), and passes the user calls through (`send`,
//! `recv`, `close`, `abort`, `status`). Listening and demultiplexing are the
//! stack's; the wire format is `net::wire`'s.
//!
//! Architecture invariant: nothing here reads a clock, owns a descriptor
//! or spawns a thread; time is a number the caller passes in.

mod cc;
mod input;
pub mod isn;
mod output;
mod rtt;
mod rx;

use std::collections::VecDeque;
use std::net::SocketAddrV4;

pub use cc::NewReno;
pub use input::Verdict;
use rtt::Rtt;
use rx::RxBuffer;

use super::seq::Seq;
use super::Millis;

/// The eleven states of RFC 9293 §3.3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl State {
    /// All eleven, in RFC 9293's order; [`State::index`] is a position here.
    pub const ALL: [State; 11] = [
        State::Closed,
        State::Listen,
        State::SynSent,
        State::SynReceived,
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::CloseWait,
        State::Closing,
        State::LastAck,
        State::TimeWait,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
        }
    }

    /// Both sides' SYNs have been seen.
    pub fn synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }
}

/// How a connection ended, for the user call that finds it gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpError {
    /// Nothing to read or no room to write yet.
    WouldBlock,
    /// The peer reset the connection (or refused it, in SYN-SENT).
    Reset,
    /// Retransmissions ran out.
    TimedOut,
    /// The connection is closing or closed on our side.
    Closed,
}

/// Keep-alive probing of an idle connection (RFC 9293 §3.8.4, RFC 1122
/// §4.2.3.6): after `idle` with nothing heard and nothing outstanding, a
/// probe every `interval`; `probes` unanswered ones and the connection is
/// reset and reported timed out, as Linux's SO_KEEPALIVE with TCP_KEEPIDLE,
/// TCP_KEEPINTVL and TCP_KEEPCNT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    pub idle: Millis,
    pub interval: Millis,
    pub probes: u32,
}

/// The knobs of every connection.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// The MSS we announce and the most we send per segment: the link MTU
    /// less 40 bytes of headers.
    pub mss: usize,
    pub recv_buffer: usize,
    pub send_buffer: usize,
    pub rto_initial: Millis,
    pub rto_min: Millis,
    pub rto_max: Millis,
    /// Maximum segment lifetime; TIME-WAIT lasts twice this.
    pub msl: Millis,
    /// How long an ACK may wait for a second segment or outgoing data.
    pub delayed_ack: Millis,
    /// Disables Nagle's algorithm.
    pub nodelay: bool,
    /// Retransmissions of a SYN or SYN-ACK before giving up.
    pub syn_retries: u32,
    /// Retransmissions of data before giving up.
    pub data_retries: u32,
    /// Retransmissions (window probes among them) before a connection the
    /// application has let go of is given up: an orphan that a peer keeps
    /// at a shut window must not be held forever (Linux's
    /// `tcp_orphan_retries`, whose 0 means 8).
    pub orphan_retries: u32,
    /// FIN-WAIT-2 of a connection the application has let go of lasts this
    /// long at most (the peer may never close).
    pub fin_wait2_timeout: Millis,
    /// Off by default, as on a socket.
    pub keepalive: Option<Keepalive>,
    /// Segmentation offload: the most payload one emitted segment may
    /// carry, in whole segments of the MSS, for a link that cuts it into
    /// segments itself (TUN with `IFF_VNET_HDR`). 0: every segment is one
    /// on the wire.
    pub tso_max: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            mss: 1460,
            recv_buffer: 256 * 1024,
            send_buffer: 256 * 1024,
            rto_initial: 1000,
            rto_min: 200,
            rto_max: 60_000,
            msl: 30_000,
            delayed_ack: 40,
            nodelay: false,
            syn_retries: 6,
            data_retries: 12,
            orphan_retries: 8,
            fin_wait2_timeout: 60_000,
            keepalive: None,
            tso_max: 0,
        }
    }
}

/// A snapshot for STATUS (and, later, telemetry).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub state: &'static str,
    pub local: String,
    pub remote: String,
    pub snd_una: u32,
    pub snd_nxt: u32,
    pub snd_wnd: usize,
    pub rcv_nxt: u32,
    pub rcv_wnd: usize,
    pub cwnd: usize,
    pub ssthresh: usize,
    pub srtt_ms: Option<Millis>,
    pub rttvar_ms: Millis,
    pub rto_ms: Millis,
    pub mss: usize,
    pub retransmissions: u64,
    pub unread: usize,
    /// Bytes held out of order now.
    pub out_of_order: usize,
    /// Segments that arrived ahead of a hole since the connection began.
    pub out_of_order_segments: u64,
    pub unsent: usize,
}

/// State changes a connection remembers for telemetry: a whole life fits
/// (SYN-RECEIVED, ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2, TIME-WAIT, CLOSED is
/// six); past it the oldest are forgotten, and counted as such.
pub const TRANSITION_LOG: usize = 8;

/// One state change, at the connection's clock (`at` is when the event
/// that caused it was handled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub at: Millis,
    pub from: State,
    pub to: State,
}

/// The last [`TRANSITION_LOG`] state changes of a connection, numbered
/// from 0 since it was opened. Fixed-size, so that `Facts` stays `Copy`
/// and recording a change never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transitions {
    total: u32,
    /// Some change waits for its time (see [`UNSTAMPED`]).
    unstamped: bool,
    log: [Transition; TRANSITION_LOG],
}

/// `at` of a change made by a user call (CLOSE, ABORT), which is given no
/// time: the next `dispatch`, which the call always leads to, stamps it.
const UNSTAMPED: Millis = Millis::MAX;

impl Default for Transitions {
    fn default() -> Self {
        let t = Transition {
            at: 0,
            from: State::Closed,
            to: State::Closed,
        };
        Transitions {
            total: 0,
            unstamped: false,
            log: [t; TRANSITION_LOG],
        }
    }
}

impl Transitions {
    fn push(&mut self, t: Transition) {
        self.unstamped |= t.at == UNSTAMPED;
        self.log[self.total as usize % TRANSITION_LOG] = t;
        self.total = self.total.wrapping_add(1);
    }

    pub(super) fn stamp(&mut self, now: Millis) {
        if !self.unstamped {
            return;
        }
        self.unstamped = false;
        for t in self.log.iter_mut().filter(|t| t.at == UNSTAMPED) {
            t.at = now;
        }
    }

    /// How many changes there have been.
    pub fn total(&self) -> u32 {
        self.total
    }

    /// The changes numbered `from` on that are still remembered, oldest
    /// first.
    pub fn since(&self, from: u32) -> impl Iterator<Item = &Transition> + '_ {
        let oldest = self.total.saturating_sub(TRANSITION_LOG as u32);
        (from.max(oldest)..self.total).map(move |i| &self.log[i as usize % TRANSITION_LOG])
    }
}

/// A connection's figures at one moment, cheap to copy (no strings): what
/// a request span records of the TCP that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub state: State,
    pub transitions: Transitions,
    pub srtt_ms: Option<Millis>,
    pub rto_ms: Millis,
    pub cwnd: usize,
    pub retransmissions: u64,
    pub out_of_order_segments: u64,
}

/// The transmission control block.
pub struct Tcb {
    pub state: State,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    /// Opened by a listener: a reset in SYN-RECEIVED deletes it quietly.
    pub passive: bool,
    /// The application holds a handle to it (accepted or connected).
    pub owned: bool,
    /// Waiting in a listener's accept queue.
    pub queued: bool,
    /// The application let go of it ([`Tcb::release`]): nobody will read
    /// what still arrives.
    released: bool,
    pub error: Option<TcpError>,
    /// Every state change, for span events and the transitions metric.
    transitions: Transitions,
    /// How many of them the stack has counted into its metric.
    pub(crate) transitions_counted: u32,

    iss: Seq,
    irs: Seq,
    snd_una: Seq,
    snd_nxt: Seq,
    /// The highest sequence number sent, which `snd_nxt` falls back from
    /// after a timeout.
    snd_max: Seq,
    snd_wnd: usize,
    snd_wl1: Seq,
    snd_wl2: Seq,
    max_snd_wnd: usize,
    /// Shift applied to the windows the peer sends (its scale).
    snd_wscale: u8,
    /// Shift applied to the windows we send (ours).
    rcv_wscale: u8,
    /// Payload bytes per segment we may send.
    mss: usize,
    cfg: TcpConfig,

    /// Bytes from `snd_buf_seq` on: sent-unacknowledged, then unsent.
    snd_buf: VecDeque<u8>,
    snd_buf_seq: Seq,
    /// The application closed its side: a FIN follows the data.
    fin_queued: bool,

    rx: RxBuffer,
    rcv_nxt: Seq,
    /// The right edge of the last window advertised, never moved left.
    rcv_adv: Seq,
    /// The peer's FIN, once its sequence number is known.
    rcv_fin: Option<Seq>,
    fin_received: bool,

    ts_ok: bool,
    ts_recent: u32,
    ts_offset: u32,
    last_ack_sent: Seq,
    sack_ok: bool,

    rtt: Rtt,
    /// The segment being timed without timestamps: (end seq, sent at).
    timing: Option<(Seq, Millis)>,
    /// Acks up to here cover retransmitted data: no RTT samples (Karn).
    karn_until: Seq,
    cc: NewReno,
    retransmissions: u64,

    rto_at: Option<Millis>,
    retries: u32,
    ack_at: Option<Millis>,
    persist_at: Option<Millis>,
    persist_backoff: u32,
    /// TIME-WAIT's end, or an orphaned FIN-WAIT-2's.
    close_at: Option<Millis>,
    /// The next keep-alive check (idle since the peer was last heard, or
    /// the interval after a probe).
    keepalive_at: Option<Millis>,
    /// Keep-alive probes sent since the peer was last heard.
    keepalive_probes: u32,
    /// A keep-alive probe is due.
    send_keepalive: bool,

    ack_now: bool,
    /// Full segments received since our last ACK (every second one is
    /// acknowledged at once, RFC 9293 §3.8.6.3).
    unacked: u32,
    /// Fast retransmit or a partial ACK asks for the first hole again.
    rexmit_una: bool,
    /// The persist timer fired: send a window probe.
    probe: bool,
    /// A SYN (or SYN-ACK) is due.
    send_syn: bool,
    /// `abort`: a RST is due, then CLOSED.
    send_rst: bool,
}

impl Tcb {
    fn new(
        cfg: &TcpConfig,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: Seq,
        ts_offset: u32,
    ) -> Tcb {
        let mut rcv_wscale = 0;
        while rcv_wscale < 14 && (cfg.recv_buffer >> rcv_wscale) > 65535 {
            rcv_wscale += 1;
        }
        Tcb {
            state: State::Closed,
            local,
            remote,
            passive: false,
            owned: false,
            queued: false,
            released: false,
            error: None,
            transitions: Transitions::default(),
            transitions_counted: 0,
            iss,
            irs: Seq(0),
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            snd_wl1: Seq(0),
            snd_wl2: Seq(0),
            max_snd_wnd: 0,
            snd_wscale: 0,
            rcv_wscale,
            mss: cfg.mss,
            cfg: cfg.clone(),
            snd_buf: VecDeque::new(),
            snd_buf_seq: iss + 1,
            fin_queued: false,
            rx: RxBuffer::default(),
            rcv_nxt: Seq(0),
            rcv_adv: Seq(0),
            rcv_fin: None,
            fin_received: false,
            ts_ok: true,
            ts_recent: 0,
            ts_offset,
            last_ack_sent: Seq(0),
            sack_ok: true,
            rtt: Rtt::new(cfg.rto_initial, cfg.rto_min, cfg.rto_max),
            timing: None,
            karn_until: iss,
            cc: NewReno::new(cfg.mss),
            retransmissions: 0,
            rto_at: None,
            retries: 0,
            ack_at: None,
            persist_at: None,
            persist_backoff: 0,
            close_at: None,
            keepalive_at: None,
            keepalive_probes: 0,
            send_keepalive: false,
            ack_now: false,
            unacked: 0,
            rexmit_una: false,
            probe: false,
            send_syn: false,
            send_rst: false,
        }
    }

    /// An active open (OPEN with a foreign socket): SYN-SENT, a SYN due.
    pub fn connect(
        cfg: &TcpConfig,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: Seq,
        ts_offset: u32,
    ) -> Tcb {
        let mut t = Tcb::new(cfg, local, remote, iss, ts_offset);
        t.set_state(State::SynSent);
        t.send_syn = true;
        t.owned = true;
        t
    }

    /// A passive open from a listener's SYN: SYN-RECEIVED, a SYN-ACK due.
    /// No buffer is allocated until data arrives, so the SYN queue costs
    /// one small entry per half-open connection.
    pub fn accept_syn(
        cfg: &TcpConfig,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        iss: Seq,
        ts_offset: u32,
        syn: &super::wire::tcp::Segment<'_>,
    ) -> Tcb {
        let mut t = Tcb::new(cfg, local, remote, iss, ts_offset);
        // The listener's LISTEN, as RFC 9293's diagram has it.
        t.state = State::Listen;
        t.set_state(State::SynReceived);
        t.passive = true;
        t.take_syn_options(syn);
        t.irs = syn.seq;
        t.rcv_nxt = syn.seq + 1;
        t.rcv_adv = t.rcv_nxt;
        t.snd_wnd = usize::from(syn.window);
        t.max_snd_wnd = t.snd_wnd;
        t.snd_wl1 = syn.seq;
        t.send_syn = true;
        t
    }

    /// Options of the peer's SYN: what both sides offered is in force
    /// (RFC 7323 §1.3, §3.2; RFC 2018 §2).
    fn take_syn_options(&mut self, syn: &super::wire::tcp::Segment<'_>) {
        let o = &syn.options;
        // RFC 9293 §3.7.1: without an MSS option, assume 536.
        self.mss = self.cfg.mss.min(usize::from(o.mss.unwrap_or(536))).max(64);
        self.cc.set_mss(self.mss);
        self.cc = NewReno::new(self.mss);
        match o.wscale {
            Some(s) => self.snd_wscale = s,
            None => {
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
        match o.timestamps {
            Some((v, _)) if self.ts_ok => self.ts_recent = v,
            _ => self.ts_ok = false,
        }
        self.sack_ok &= o.sack_permitted;
    }

    fn set_state(&mut self, s: State) {
        self.set_state_at(UNSTAMPED, s);
    }

    fn set_state_at(&mut self, now: Millis, s: State) {
        if s != self.state {
            self.transitions.push(Transition {
                at: now,
                from: self.state,
                to: s,
            });
        }
        self.state = s;
        if s == State::Closed {
            self.rto_at = None;
            self.ack_at = None;
            self.persist_at = None;
            self.close_at = None;
            self.keepalive_at = None;
        }
    }

    /// SEND: queues what fits in the send buffer; returns how much.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, TcpError> {
        match self.state {
            State::SynSent | State::SynReceived | State::Established | State::CloseWait
                if !self.fin_queued =>
            {
                let room = self.cfg.send_buffer.saturating_sub(self.snd_buf.len());
                if room == 0 {
                    return Err(TcpError::WouldBlock);
                }
                let n = room.min(data.len());
                self.snd_buf.extend(&data[..n]);
                Ok(n)
            }
            _ => Err(self.error.unwrap_or(TcpError::Closed)),
        }
    }

    /// Room in the send buffer.
    pub fn send_room(&self) -> usize {
        if self.fin_queued {
            return 0;
        }
        self.cfg.send_buffer.saturating_sub(self.snd_buf.len())
    }

    /// RECEIVE: `Ok(0)` is the end of the peer's stream.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TcpError> {
        if !self.rx.ready.is_empty() {
            let n = buf.len().min(self.rx.ready.len());
            for (d, s) in buf.iter_mut().zip(self.rx.ready.drain(..n)) {
                *d = s;
            }
            // Tell the peer about a window that opened by enough to be
            // worth a segment (receiver-side SWS avoidance).
            if self.state.synchronized() && self.window_opened() {
                self.ack_now = true;
            }
            return Ok(n);
        }
        if self.fin_received {
            return Ok(0);
        }
        if let Some(e) = self.error {
            return Err(e);
        }
        match self.state {
            State::Closed => Err(TcpError::Closed),
            _ => Err(TcpError::WouldBlock),
        }
    }

    /// Bytes ready to read.
    pub fn readable(&self) -> usize {
        self.rx.ready.len()
    }

    /// The peer's FIN has been read up to, or the connection is gone.
    pub fn at_eof(&self) -> bool {
        self.rx.ready.is_empty() && (self.fin_received || self.error.is_some())
    }

    /// CLOSE: our side is done sending; a FIN follows the queued data.
    pub fn close(&mut self) {
        match self.state {
            State::SynSent => self.set_state(State::Closed),
            State::SynReceived | State::Established => {
                self.fin_queued = true;
                self.set_state(State::FinWait1);
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.set_state(State::LastAck);
            }
            _ => {}
        }
    }

    /// ABORT: a RST to the peer (when it knows us), then CLOSED.
    pub fn abort(&mut self) {
        if self.state.synchronized() || self.state == State::SynReceived {
            self.send_rst = true;
        } else {
            self.set_state(State::Closed);
        }
        self.snd_buf.clear();
    }

    /// The application let go of its handle: our side is closed if it was
    /// not, and an orphan in FIN-WAIT-2 is not kept forever.
    pub fn release(&mut self, now: Millis) {
        self.owned = false;
        self.released = true;
        if !self.rx.ready.is_empty() && self.state.synchronized() {
            // Data that will never be read: a RST tells the peer it was
            // lost, where a FIN would say it was taken (RFC 1122
            // §4.2.2.13; Linux's close(2) does the same).
            self.abort();
            return;
        }
        // As close(2) on a socket: letting go closes our side.
        self.close();
        if self.state == State::FinWait2 && self.close_at.is_none() {
            self.close_at = Some(now + self.cfg.fin_wait2_timeout);
        }
    }

    /// Segments retransmitted and segments that arrived out of order, since
    /// the connection began.
    pub fn transitions(&self) -> &Transitions {
        &self.transitions
    }

    pub fn segment_counts(&self) -> (u64, u64) {
        (self.retransmissions, self.rx.out_of_order_segments)
    }

    pub fn facts(&self) -> Facts {
        Facts {
            state: self.state,
            transitions: self.transitions,
            srtt_ms: self.rtt.srtt(),
            rto_ms: self.rtt.rto(),
            cwnd: self.cc.cwnd,
            retransmissions: self.retransmissions,
            out_of_order_segments: self.rx.out_of_order_segments,
        }
    }

    pub fn status(&self) -> Status {
        Status {
            state: self.state.name(),
            local: self.local.to_string(),
            remote: self.remote.to_string(),
            snd_una: self.snd_una.0,
            snd_nxt: self.snd_nxt.0,
            snd_wnd: self.snd_wnd,
            rcv_nxt: self.rcv_nxt.0,
            rcv_wnd: self.rcv_adv.0.wrapping_sub(self.rcv_nxt.0) as usize,
            cwnd: self.cc.cwnd,
            ssthresh: self.cc.ssthresh,
            srtt_ms: self.rtt.srtt(),
            rttvar_ms: self.rtt.rttvar(),
            rto_ms: self.rtt.rto(),
            mss: self.mss,
            retransmissions: self.retransmissions,
            unread: self.rx.ready.len(),
            out_of_order: self.rx.ooo_bytes(),
            out_of_order_segments: self.rx.out_of_order_segments,
            unsent: self.unsent(),
        }
    }

    /// Bytes queued but not yet sent.
    fn unsent(&self) -> usize {
        let sent = if self.snd_nxt > self.snd_buf_seq {
            self.snd_nxt - self.snd_buf_seq
        } else {
            0
        };
        self.snd_buf.len().saturating_sub(sent)
    }

    /// The FIN's sequence number, once the application closed.
    fn fin_seq(&self) -> Option<Seq> {
        self.fin_queued
            .then(|| self.snd_buf_seq + self.snd_buf.len())
    }

    fn fin_acked(&self) -> bool {
        self.fin_seq().is_some_and(|f| self.snd_una > f)
    }

    /// Free room in the receive buffer.
    fn rcv_space(&self) -> usize {
        self.cfg.recv_buffer.saturating_sub(self.rx.ready.len())
    }

    fn window_opened(&self) -> bool {
        let edge = self.rcv_nxt + self.rcv_space();
        edge > self.rcv_adv
            && edge - self.rcv_adv >= (self.cfg.recv_buffer / 2).min(2 * self.cfg.mss)
    }

    fn ts_now(&self, now: Millis) -> u32 {
        (now as u32).wrapping_add(self.ts_offset)
    }

    /// The earliest time `on_timer` has work.
    pub fn deadline(&self) -> Option<Millis> {
        [
            self.rto_at,
            self.ack_at,
            self.persist_at,
            self.close_at,
            self.keepalive_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Something is due to be sent at once.
    pub fn wants_dispatch(&self) -> bool {
        self.ack_now
            || self.send_syn
            || self.send_rst
            || self.send_keepalive
            || self.rexmit_una
            || self.probe
            || (self.state.synchronized() || self.state == State::SynReceived)
                && (self.unsent() > 0
                    || self.fin_queued && self.snd_max <= self.fin_seq().unwrap_or(self.snd_max))
    }
}

impl Tcb {
    /// A challenge ACK the stack allowed (RFC 5961).
    pub fn force_ack(&mut self) {
        self.ack_now = true;
    }

    /// Payload and options of one segment on the wire: what a segment
    /// longer than this is cut into by segmentation offload.
    pub fn wire_mss(&self) -> usize {
        self.mss
    }

    /// ICMP "fragmentation needed" reported a smaller path (RFC 1191).
    pub fn path_mtu(&mut self, mtu: usize) {
        if mtu >= 68 + 40 && mtu - 40 < self.mss {
            self.mss = mtu - 40;
            self.cc.set_mss(self.mss);
            // What was sent at the old size is lost: send it again.
            if self.snd_una < self.snd_max {
                self.snd_nxt = self.snd_una;
            }
        }
    }
}

#[cfg(test)]
mod transition_tests {
    use super::*;

    fn change(at: Millis, to: State) -> Transition {
        Transition {
            at,
            from: State::Closed,
            to,
        }
    }

    #[test]
    fn the_log_keeps_the_last_eight_and_numbers_them_all() {
        let mut t = Transitions::default();
        for i in 0..11 {
            t.push(change(i, State::ALL[i as usize]));
        }
        assert_eq!(t.total(), 11);
        let kept: Vec<Millis> = t.since(0).map(|c| c.at).collect();
        assert_eq!(
            kept,
            (3..11).collect::<Vec<_>>(),
            "the oldest three are gone"
        );
        let late: Vec<Millis> = t.since(9).map(|c| c.at).collect();
        assert_eq!(late, vec![9, 10]);
        assert_eq!(t.since(11).count(), 0);
    }

    #[test]
    fn a_change_made_by_a_user_call_takes_the_next_dispatch_time() {
        let mut t = Transitions::default();
        t.push(change(5, State::Established));
        t.push(change(UNSTAMPED, State::FinWait1));
        t.stamp(40);
        let at: Vec<Millis> = t.since(0).map(|c| c.at).collect();
        assert_eq!(at, vec![5, 40]);
        t.push(change(50, State::FinWait2));
        t.stamp(60);
        assert_eq!(t.since(2).next().map(|c| c.at), Some(50), "stamped once");
    }
}
