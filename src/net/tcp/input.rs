//! Segment arrival (RFC 9293 §3.10.7) for a connection that exists: the
//! SYN-SENT checks, then PAWS (RFC 7323 §5), acceptability, RST and SYN
//! with RFC 5961's challenge ACKs, the ACK (send side, RTT, congestion),
//! the text, and the FIN.

use super::cc::Signal;
use super::{State, Tcb, TcpError};
use crate::net::seq::Seq;
use crate::net::wire::tcp::{Segment, ACK, FIN, RST, SYN};
use crate::net::Millis;

/// What the stack must do beyond what the connection queued for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Done,
    /// Send a RST with this sequence number (no ACK), unrelated to the
    /// connection's own state (a bad ACK to a SYN).
    Rst(Seq),
    /// RFC 5961 asks for a challenge ACK; the stack rate-limits them.
    Challenge,
}

/// `a < b` in the 32-bit timestamp space (RFC 7323 §5.3).
fn ts_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl Tcb {
    pub fn input(&mut self, now: Millis, seg: &Segment<'_>) -> Verdict {
        // Whatever it says, the peer is there: keep-alive waits a whole
        // idle period again.
        self.keepalive_probes = 0;
        if let Some(k) = self.cfg.keepalive {
            self.keepalive_at = Some(now + k.idle);
        }
        match self.state {
            State::Closed | State::Listen => Verdict::Done,
            State::SynSent => self.syn_sent(now, seg),
            _ => self.synchronized_input(now, seg),
        }
    }

    fn syn_sent(&mut self, now: Millis, seg: &Segment<'_>) -> Verdict {
        let ack_ok = seg.has(ACK) && seg.ack > self.iss && seg.ack <= self.snd_max;
        if seg.has(ACK) && !ack_ok {
            return if seg.has(RST) {
                Verdict::Done
            } else {
                Verdict::Rst(seg.ack)
            };
        }
        if seg.has(RST) {
            if ack_ok {
                self.error = Some(TcpError::Reset);
                self.set_state_at(now, State::Closed);
            }
            return Verdict::Done;
        }
        if !seg.has(SYN) {
            return Verdict::Done;
        }
        self.take_syn_options(seg);
        self.irs = seg.seq;
        self.rcv_nxt = seg.seq + 1;
        self.rcv_adv = self.rcv_nxt;
        self.snd_wnd = usize::from(seg.window);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = seg.seq;
        self.snd_wl2 = seg.ack;
        if ack_ok {
            self.snd_una = seg.ack;
            self.rtt_sample(now, seg);
            self.rto_at = None;
            self.retries = 0;
            self.set_state_at(now, State::Established);
            self.ack_now = true;
        } else {
            // Simultaneous open (RFC 9293 §3.5, figure 8): SYN-ACK our SYN.
            self.set_state_at(now, State::SynReceived);
            self.send_syn = true;
        }
        Verdict::Done
    }

    /// The window the peer was last told, for acceptability.
    fn rcv_wnd(&self) -> usize {
        if self.rcv_adv > self.rcv_nxt {
            self.rcv_adv - self.rcv_nxt
        } else {
            0
        }
    }

    fn acceptable(&self, seg: &Segment<'_>) -> bool {
        let wnd = self.rcv_wnd();
        let len = seg.seq_len();
        let end = self.rcv_nxt + wnd;
        match (len, wnd) {
            (0, 0) => seg.seq == self.rcv_nxt,
            (0, _) => seg.seq.in_range(self.rcv_nxt, end),
            // A zero window still takes the ACK of a segment at RCV.NXT
            // (a window probe); its data is dropped below.
            (_, 0) => seg.seq == self.rcv_nxt,
            _ => {
                seg.seq.in_range(self.rcv_nxt, end)
                    || (seg.seq + (len - 1)).in_range(self.rcv_nxt, end)
            }
        }
    }

    fn synchronized_input(&mut self, now: Millis, seg: &Segment<'_>) -> Verdict {
        // PAWS: an old timestamp marks an old duplicate (RFC 7323 §5.3).
        if self.ts_ok && !seg.has(RST) {
            if let Some((val, _)) = seg.options.timestamps {
                if ts_before(val, self.ts_recent) {
                    self.ack_now = true;
                    return Verdict::Done;
                }
            }
        }
        // Simultaneous open, step 6 of RFC 9293 figure 8: the peer's
        // SYN-ACK repeats its SYN and acknowledges ours.
        if self.state == State::SynReceived
            && seg.has(SYN)
            && seg.has(ACK)
            && !seg.has(RST)
            && seg.seq == self.irs
            && seg.ack > self.snd_una
            && seg.ack <= self.snd_max
        {
            self.snd_una = seg.ack;
            self.snd_wnd = usize::from(seg.window);
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = seg.ack;
            self.rto_at = None;
            self.retries = 0;
            self.set_state_at(now, State::Established);
            self.ack_now = true;
            return Verdict::Done;
        }
        if !self.acceptable(seg) {
            if !seg.has(RST) {
                if self.state == State::SynReceived {
                    // The peer lost our SYN-ACK (its SYN again).
                    self.send_syn = true;
                } else {
                    self.ack_now = true;
                }
                if self.state == State::TimeWait && seg.has(FIN) {
                    self.close_at = Some(now + 2 * self.cfg.msl);
                }
            }
            return Verdict::Done;
        }
        if seg.has(RST) {
            // RFC 5961 §3.2: only an exact match resets.
            if seg.seq != self.rcv_nxt {
                return Verdict::Challenge;
            }
            if !(self.passive && self.state == State::SynReceived) {
                self.error = Some(TcpError::Reset);
            }
            self.snd_buf.clear();
            self.set_state_at(now, State::Closed);
            return Verdict::Done;
        }
        if seg.has(SYN) {
            // RFC 5961 §4.2: a SYN in a synchronized state is answered with
            // a challenge ACK, never a reset.
            if self.state == State::SynReceived && seg.seq == self.irs {
                self.send_syn = true;
                return Verdict::Done;
            }
            return Verdict::Challenge;
        }
        if !seg.has(ACK) {
            return Verdict::Done;
        }
        if let Some((val, _)) = seg.options.timestamps {
            if self.ts_ok && seg.seq <= self.last_ack_sent {
                self.ts_recent = val;
            }
        }

        if self.state == State::SynReceived {
            if !(seg.ack > self.snd_una && seg.ack <= self.snd_max) {
                return Verdict::Rst(seg.ack);
            }
            self.set_state_at(now, State::Established);
            self.snd_wnd = usize::from(seg.window) << self.snd_wscale;
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = seg.ack;
        }
        if let Some(v) = self.ack(now, seg) {
            return v;
        }
        match self.state {
            State::FinWait1 if self.fin_acked() => {
                self.set_state_at(now, State::FinWait2);
                if !self.owned {
                    self.close_at = Some(now + self.cfg.fin_wait2_timeout);
                }
            }
            State::Closing if self.fin_acked() => self.enter_time_wait(now),
            State::LastAck if self.fin_acked() => {
                self.set_state_at(now, State::Closed);
                return Verdict::Done;
            }
            _ => {}
        }
        self.text(now, seg);
        Verdict::Done
    }

    fn enter_time_wait(&mut self, now: Millis) {
        self.set_state_at(now, State::TimeWait);
        self.snd_buf = Default::default();
        self.close_at = Some(now + 2 * self.cfg.msl);
    }

    /// The ACK field: `Some` ends processing of the segment.
    fn ack(&mut self, now: Millis, seg: &Segment<'_>) -> Option<Verdict> {
        if seg.ack > self.snd_max {
            self.ack_now = true;
            return Some(Verdict::Done);
        }
        // RFC 5961 §5.2: an ACK older than the window the peer could have
        // seen is a blind injection.
        let oldest = Seq(self.snd_una.0.wrapping_sub(self.max_snd_wnd as u32));
        if seg.ack < oldest {
            return Some(Verdict::Challenge);
        }
        let window = usize::from(seg.window) << self.snd_wscale;
        if seg.ack > self.snd_una {
            let acked = seg.ack - self.snd_una;
            if seg.ack > self.snd_buf_seq {
                let data = (seg.ack - self.snd_buf_seq).min(self.snd_buf.len());
                self.snd_buf.drain(..data);
                self.snd_buf_seq = self.snd_buf_seq + data;
            }
            self.snd_una = seg.ack;
            if self.snd_nxt < self.snd_una {
                self.snd_nxt = self.snd_una;
            }
            self.rtt_sample(now, seg);
            self.retries = 0;
            let flight = self.snd_max - self.snd_una;
            if self.cc.on_ack(acked, flight, seg.ack) == Signal::Retransmit {
                self.rexmit_una = true;
            }
            self.rto_at = (self.snd_una < self.snd_max).then(|| now + self.rtt.rto());
        } else if seg.ack == self.snd_una
            && seg.payload.is_empty()
            && !seg.has(FIN)
            && window == self.snd_wnd
            // Answers to window probes are not signs of loss.
            && self.snd_wnd > 0
            && self.snd_una < self.snd_max
        {
            let flight = self.snd_max - self.snd_una;
            if self.cc.on_dupack(flight, self.snd_max, self.snd_una) == Signal::Retransmit {
                self.rexmit_una = true;
                self.karn_until = self.snd_max;
                self.timing = None;
            }
        }
        // The window, from the newest segment only (RFC 9293 §3.10.7.4).
        if self.snd_wl1 < seg.seq || (self.snd_wl1 == seg.seq && self.snd_wl2 <= seg.ack) {
            if self.snd_wnd == 0 && window > 0 && self.snd_nxt > self.snd_una {
                // The window reopened without taking our probe: send from
                // SND.UNA again rather than wait for the timer.
                self.snd_nxt = self.snd_una;
                self.rto_at = None;
            }
            self.snd_wnd = window;
            self.max_snd_wnd = self.max_snd_wnd.max(window);
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = seg.ack;
        }
        if self.snd_wnd == 0 && seg.ack == self.snd_una && !self.released {
            // The peer answers our probes: it is alive, only full. An
            // orphan is not kept for that (see `orphan_retries`).
            self.retries = 0;
        }
        if self.snd_wnd > 0 {
            self.persist_at = None;
            self.persist_backoff = 0;
        }
        None
    }

    /// RTT from the timestamp echo, or from the one timed segment, never
    /// from retransmitted data (Karn).
    fn rtt_sample(&mut self, now: Millis, seg: &Segment<'_>) {
        if seg.ack <= self.karn_until {
            return;
        }
        if let (true, Some((_, ecr))) = (self.ts_ok, seg.options.timestamps) {
            if ecr != 0 {
                let r = self.ts_now(now).wrapping_sub(ecr);
                if r < 600_000 {
                    self.rtt.sample(u64::from(r));
                }
                return;
            }
        }
        if let Some((end, at)) = self.timing {
            if seg.ack >= end {
                self.rtt.sample(now.saturating_sub(at));
                self.timing = None;
            }
        }
    }

    /// The segment's data and FIN (RFC 9293 §3.10.7.4, seventh and eighth).
    fn text(&mut self, now: Millis, seg: &Segment<'_>) {
        if !matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ) {
            return;
        }
        // Trim to the window: what lies before RCV.NXT was had, what lies
        // beyond the right edge is dropped (and the FIN with it).
        let mut data = seg.payload;
        let mut seq = seg.seq;
        if seq < self.rcv_nxt {
            let skip = (self.rcv_nxt - seq).min(data.len());
            data = &data[skip..];
            seq = self.rcv_nxt;
        }
        let room = self.rcv_wnd().saturating_sub(seq - self.rcv_nxt);
        let mut fin = seg.has(FIN);
        if data.len() > room {
            data = &data[..room];
            fin = false;
        }
        if fin {
            self.rcv_fin = Some(seq + data.len());
        }
        if !data.is_empty() && self.released {
            // New data for a connection nobody will read again: reset it
            // rather than acknowledge what is thrown away (RFC 1122
            // §4.2.2.13), as Linux does for data after close.
            self.abort();
            return;
        }
        if !data.is_empty() {
            let had_holes = self.rx.has_holes();
            let before = self.rcv_nxt;
            self.rcv_nxt = self.rx.insert(self.rcv_nxt, seq, data);
            if self.rcv_nxt == before || had_holes {
                // Out of order, or filling a hole: ACK at once (RFC 5681 §4.2).
                self.ack_now = true;
            } else {
                self.unacked += 1;
                if self.unacked >= 2 {
                    self.ack_now = true;
                } else if self.ack_at.is_none() {
                    self.ack_at = Some(now + self.cfg.delayed_ack);
                }
            }
        } else if seg.seq_len() > 0 && !fin {
            self.ack_now = true;
        }
        if self.rcv_fin == Some(self.rcv_nxt) && !self.fin_received {
            self.rcv_nxt = self.rcv_nxt + 1;
            self.fin_received = true;
            self.ack_now = true;
            match self.state {
                State::Established => self.set_state_at(now, State::CloseWait),
                State::FinWait1 if self.fin_acked() => self.enter_time_wait(now),
                State::FinWait1 => self.set_state_at(now, State::Closing),
                State::FinWait2 => self.enter_time_wait(now),
                _ => {}
            }
        }
    }
}
