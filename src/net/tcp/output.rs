//! What a connection sends and when: SYNs, data under the minimum of the
//! peer's window and the congestion window with Nagle and sender-side SWS
//! avoidance (RFC 9293 §3.7.4, §3.8.6.2.1), retransmissions, window
//! probes, FINs, ACKs (delayed, RFC 9293 §3.8.6.3), and the timers that
//! schedule them (RFC 6298 §5).

use super::{State, Tcb, TcpError};
use crate::net::seq::Seq;
use crate::net::wire::tcp::{self as wtcp, Options, Segment, ACK, FIN, PSH, RST, SYN};
use crate::net::Millis;

/// The most the persist timer backs off to.
const PERSIST_MAX: Millis = 60_000;

impl Tcb {
    /// Runs the timers that are due.
    pub fn on_timer(&mut self, now: Millis) {
        if self.close_at.is_some_and(|t| t <= now) {
            self.set_state_at(now, State::Closed);
            return;
        }
        if self.ack_at.is_some_and(|t| t <= now) {
            self.ack_at = None;
            self.ack_now = true;
        }
        if self.persist_at.is_some_and(|t| t <= now) {
            self.persist_at = None;
            if self.released && self.persist_backoff >= self.cfg.orphan_retries {
                // An orphan whose peer keeps its window shut.
                self.error = Some(TcpError::TimedOut);
                self.send_rst = true;
                return;
            }
            self.probe = true;
            self.persist_backoff = (self.persist_backoff + 1).min(16);
        }
        if self.rto_at.is_some_and(|t| t <= now) {
            self.rto_at = None;
            self.retransmit_timeout(now);
        }
        if self.keepalive_at.is_some_and(|t| t <= now) {
            self.keepalive_at = None;
            self.keepalive_timer(now);
        }
    }

    /// The peer has been silent for the idle period (or a probe's
    /// interval): probe it, or give up on it (RFC 9293 §3.8.4).
    fn keepalive_timer(&mut self, now: Millis) {
        let Some(k) = self.cfg.keepalive else {
            return;
        };
        // Handshakes, closes under way and TIME-WAIT have timers of their
        // own; a connection is probed only where it may idle forever.
        if !matches!(
            self.state,
            State::Established | State::CloseWait | State::FinWait2
        ) {
            return;
        }
        if self.snd_una < self.snd_max || self.unsent() > 0 {
            // Data outstanding: retransmissions and window probes will
            // find out whether the peer is there.
            self.keepalive_at = Some(now + k.idle);
            return;
        }
        if self.keepalive_probes >= k.probes {
            self.error = Some(TcpError::TimedOut);
            self.send_rst = true;
            return;
        }
        self.keepalive_probes += 1;
        self.send_keepalive = true;
        self.keepalive_at = Some(now + k.interval);
    }

    fn retransmit_timeout(&mut self, now: Millis) {
        self.retries += 1;
        let mut limit = match self.state {
            State::SynSent | State::SynReceived => self.cfg.syn_retries,
            _ => self.cfg.data_retries,
        };
        if self.released {
            limit = limit.min(self.cfg.orphan_retries);
        }
        if self.retries > limit {
            self.error = Some(TcpError::TimedOut);
            // A peer that may still be there learns we gave up.
            self.send_rst = self.state.synchronized();
            if !self.send_rst {
                self.set_state_at(now, State::Closed);
            }
            return;
        }
        self.rtt.backoff();
        self.timing = None;
        self.karn_until = self.snd_max;
        if self.snd_wnd == 0 && self.state.synchronized() && self.snd_una < self.snd_max {
            // The peer's window is shut: this is the persist timer's probe
            // again, not a loss, so the congestion window stays.
            self.probe = true;
            self.rto_at = Some(now + self.rtt.rto());
            return;
        }
        match self.state {
            State::SynSent | State::SynReceived => self.send_syn = true,
            _ if self.snd_una < self.snd_max => {
                let flight = self.snd_max - self.snd_una;
                self.cc.on_timeout(flight, self.snd_max);
                // Go back to the first unacknowledged byte.
                self.snd_nxt = self.snd_una;
                self.rexmit_una = false;
            }
            _ => return,
        }
        self.rto_at = Some(now + self.rtt.rto());
    }

    /// Payload bytes of a full data segment: the MSS less the timestamp
    /// option's 12 bytes when it is in use.
    fn payload_mss(&self) -> usize {
        self.mss - if self.ts_ok { 12 } else { 0 }
    }

    fn our_options(&self, now: Millis, syn: bool) -> Options {
        let mut o = Options::default();
        if syn {
            o.mss = Some(self.cfg.mss as u16);
            // In SYN-SENT we offer everything; in SYN-RECEIVED we answer
            // only what the peer offered.
            let offer = self.state == State::SynSent;
            if offer || self.rcv_wscale > 0 || self.snd_wscale > 0 {
                o.wscale = Some(self.rcv_wscale);
            }
            o.sack_permitted = self.sack_ok;
        }
        if self.ts_ok {
            let ecr = if self.state == State::SynSent {
                0
            } else {
                self.ts_recent
            };
            o.timestamps = Some((self.ts_now(now), ecr));
        }
        if !syn && self.sack_ok && self.rx.has_holes() {
            o.sack = self.rx.sack_blocks();
            if self.ts_ok {
                // 40 option bytes: timestamps leave room for two blocks.
                o.sack[2] = None;
            }
        }
        o
    }

    /// The window to advertise, with receiver-side SWS avoidance: the
    /// right edge moves only by enough to matter, and never left.
    fn advertise(&mut self) -> u16 {
        let space = self.rcv_space();
        let edge = self.rcv_nxt + space;
        let step = (self.cfg.recv_buffer / 2).min(self.cfg.mss);
        if edge > self.rcv_adv
            && (edge - self.rcv_adv >= step || self.rcv_adv <= self.rcv_nxt && space >= step)
        {
            self.rcv_adv = edge;
        }
        if self.rcv_adv < self.rcv_nxt {
            self.rcv_adv = self.rcv_nxt;
        }
        let field = ((self.rcv_adv - self.rcv_nxt) >> self.rcv_wscale).min(65535);
        // What the peer will compute from the field, rounded down.
        self.rcv_adv = self.rcv_nxt + (field << self.rcv_wscale);
        field as u16
    }

    /// Emits every segment that is due, through `emit`.
    pub fn dispatch(&mut self, now: Millis, emit: &mut dyn FnMut(&Segment<'_>)) {
        self.transitions.stamp(now);
        let (lp, rp) = (self.local.port(), self.remote.port());
        let base = |seq: Seq, ack: Seq, flags: u8, window: u16, options: Options| Segment {
            src_port: lp,
            dst_port: rp,
            seq,
            ack,
            flags,
            window,
            options,
            payload: &[],
        };
        if self.send_rst {
            self.send_rst = false;
            // A zero-window probe may have put SND.NXT past the peer's
            // window, where its RST check (RFC 5961 §3.2) would take a
            // reset for a blind attack: the window's end is as far as
            // acceptable goes (Linux's tcp_acceptable_seq).
            let edge = self.snd_una + self.snd_wnd;
            let seq = if self.snd_nxt <= edge {
                self.snd_nxt
            } else {
                edge
            };
            let s = base(seq, self.rcv_nxt, RST | ACK, 0, Options::default());
            emit(&s);
            self.set_state_at(now, State::Closed);
            return;
        }
        match self.state {
            State::Closed | State::Listen => return,
            State::SynSent | State::SynReceived => {
                if self.send_syn {
                    self.send_syn = false;
                    let synack = self.state == State::SynReceived;
                    let (flags, ack, window) = if synack {
                        // The window of a SYN is never scaled (RFC 7323 §2.2).
                        self.rcv_adv = self.rcv_nxt + self.rcv_space().min(65535);
                        (SYN | ACK, self.rcv_nxt, self.rcv_space().min(65535) as u16)
                    } else {
                        (SYN, Seq(0), self.rcv_space().min(65535) as u16)
                    };
                    let s = base(self.iss, ack, flags, window, self.our_options(now, true));
                    emit(&s);
                    self.last_ack_sent = ack;
                    if self.snd_max != self.iss {
                        self.retransmissions += 1;
                    }
                    if self.snd_max == self.iss {
                        self.timing = Some((self.iss + 1, now));
                    }
                    self.snd_nxt = self.iss + 1;
                    self.snd_max = self.iss + 1;
                    if self.rto_at.is_none() {
                        self.rto_at = Some(now + self.rtt.rto());
                    }
                }
                self.ack_now = false;
                return;
            }
            State::TimeWait => {
                if self.ack_now {
                    self.ack_now = false;
                    let w = self.advertise();
                    let s = base(
                        self.snd_nxt,
                        self.rcv_nxt,
                        ACK,
                        w,
                        self.our_options(now, false),
                    );
                    emit(&s);
                }
                return;
            }
            _ => {}
        }
        let mut sent = false;
        let mut payload = Vec::new();
        if self.rexmit_una && self.snd_una < self.snd_max {
            self.rexmit_una = false;
            let end = self.snd_max;
            self.send_data(now, self.snd_una, end, self.mss, &mut payload, emit);
            sent = true;
        }
        self.rexmit_una = false;
        if self.probe {
            self.probe = false;
            // A window probe: one byte (or whatever the window allows)
            // beyond what the peer acknowledged; its ACK reopens the window.
            let (from, end) = if self.snd_wnd == 0 {
                (self.snd_una, self.snd_una + 1)
            } else {
                let usable = self
                    .snd_wnd
                    .saturating_sub(self.snd_nxt - self.snd_una)
                    .max(1);
                (self.snd_nxt, self.snd_nxt + usable.min(self.unsent()))
            };
            if end > from {
                self.send_data(now, from, end, self.mss, &mut payload, emit);
                sent = true;
            }
        }
        if self.send_keepalive {
            self.send_keepalive = false;
            // SEG.SEQ = SND.NXT − 1 with no data: old to the peer, which
            // must answer it with an ACK (RFC 9293 §3.8.4; Linux sends the
            // same, without the garbage octet RFC 1122 allows).
            let w = self.advertise();
            let seq = Seq(self.snd_una.0.wrapping_sub(1));
            let s = base(seq, self.rcv_nxt, ACK, w, self.our_options(now, false));
            emit(&s);
            self.last_ack_sent = self.rcv_nxt;
            sent = true;
        }
        loop {
            let in_flight = self.snd_nxt - self.snd_una;
            let usable = self.snd_wnd.min(self.cc.cwnd).saturating_sub(in_flight);
            let unsent = self.unsent();
            let fin_due = self.fin_seq().is_some_and(|f| self.snd_nxt <= f);
            if unsent == 0 && !fin_due {
                break;
            }
            let full = self.payload_mss();
            // With segmentation offload one emitted segment carries whole
            // segments' worth, which the link cuts apart; only the tail of
            // what is queued may end in a short one.
            let most = if self.cfg.tso_max > full {
                self.cfg.tso_max / full * full
            } else {
                full
            };
            let mut len = unsent.min(usable).min(most);
            if len > full && len < unsent {
                len = len / full * full;
            }
            let all = len == unsent;
            let idle = self.snd_nxt == self.snd_una;
            let ok = if unsent == 0 {
                true // a bare FIN
            } else if len == 0 {
                false
            } else {
                len >= full
                    || (all && (idle || self.cfg.nodelay || fin_due))
                    || (self.max_snd_wnd > 0 && len >= self.max_snd_wnd / 2 && idle)
            };
            if !ok {
                break;
            }
            let from = self.snd_nxt;
            // The bound on payload and options: the MSS, stretched by what
            // offload takes beyond one segment.
            self.send_data(
                now,
                from,
                from + len + usize::from(all && fin_due),
                self.mss + (len - len.min(full)),
                &mut payload,
                emit,
            );
            sent = true;
        }
        // Data waits with nothing in flight: only the persist timer will
        // move it (a zero window, or a window too small to be worth it).
        if self.unsent() > 0 && self.snd_nxt == self.snd_una && self.rto_at.is_none() {
            if self.persist_at.is_none() {
                let t = (self.rtt.rto() << self.persist_backoff).min(PERSIST_MAX);
                self.persist_at = Some(now + t);
            }
        } else {
            self.persist_at = None;
        }
        if !sent && self.ack_now {
            let w = self.advertise();
            let s = base(
                self.snd_nxt,
                self.rcv_nxt,
                ACK,
                w,
                self.our_options(now, false),
            );
            emit(&s);
            self.last_ack_sent = self.rcv_nxt;
            sent = true;
        }
        if sent {
            self.ack_now = false;
            self.ack_at = None;
            self.unacked = 0;
        }
    }

    /// Sends `[from, end)` (data, then the FIN if `end` passes it), at most
    /// `mss` payload bytes, advancing SND.NXT past it.
    fn send_data(
        &mut self,
        now: Millis,
        from: Seq,
        end: Seq,
        mss: usize,
        payload: &mut Vec<u8>,
        emit: &mut dyn FnMut(&Segment<'_>),
    ) {
        let window = self.advertise();
        let options = self.our_options(now, false);
        // The MSS bounds the segment less its options (RFC 6691): with
        // timestamps and SACK blocks the payload is smaller, or the packet
        // would exceed the MTU the peer announced.
        let opt_len = wtcp::emitted_len(&Segment {
            options,
            ..Segment::empty()
        }) - 20;
        let mss = mss.saturating_sub(opt_len).max(1);
        let off = from - self.snd_buf_seq;
        let data_end = self.snd_buf_seq + self.snd_buf.len();
        let data_len = if from < data_end {
            (data_end - from).min(end - from).min(mss)
        } else {
            0
        };
        payload.clear();
        // Copied slice by slice (the deque may wrap), not byte by byte.
        let (a, b) = self.snd_buf.as_slices();
        let (from_a, to_a) = (off.min(a.len()), (off + data_len).min(a.len()));
        payload.extend_from_slice(&a[from_a..to_a]);
        let rest = data_len - (to_a - from_a);
        let from_b = off.saturating_sub(a.len());
        payload.extend_from_slice(&b[from_b..from_b + rest]);
        let fin = self
            .fin_seq()
            .is_some_and(|f| from + data_len == f && end > f);
        let mut flags = ACK;
        if fin {
            flags |= FIN;
        }
        if data_len > 0 && from + data_len == data_end {
            flags |= PSH;
        }
        let seg = Segment {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: from,
            ack: self.rcv_nxt,
            flags,
            window,
            options,
            payload,
        };
        emit(&seg);
        self.last_ack_sent = self.rcv_nxt;
        if from < self.snd_max {
            self.retransmissions += 1;
        }
        let next = from + data_len + usize::from(fin);
        if next > self.snd_max {
            if self.timing.is_none() && from >= self.snd_max {
                self.timing = Some((next, now));
            }
            self.snd_max = next;
        }
        if next > self.snd_nxt {
            self.snd_nxt = next;
        }
        if self.rto_at.is_none() && self.snd_una < self.snd_max {
            self.rto_at = Some(now + self.rtt.rto());
        }
    }
}
