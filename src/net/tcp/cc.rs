//! NewReno congestion control (RFC 5681, RFC 6582) with the initial window
//! of RFC 6928: slow start, congestion avoidance, fast retransmit on the
//! third duplicate ACK and fast recovery that stays in recovery across
//! partial ACKs.

use crate::net::seq::Seq;

#[derive(Debug, Clone)]
pub struct NewReno {
    pub cwnd: usize,
    pub ssthresh: usize,
    pub dupacks: u32,
    /// `snd_max` when recovery began (RFC 6582's "recover").
    pub recover: Option<Seq>,
    pub in_recovery: bool,
    mss: usize,
}

/// What the sender must do after an ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Nothing,
    /// Retransmit the first unacknowledged segment now.
    Retransmit,
}

impl NewReno {
    pub fn new(mss: usize) -> NewReno {
        NewReno {
            cwnd: Self::initial(mss),
            ssthresh: usize::MAX,
            dupacks: 0,
            recover: None,
            in_recovery: false,
            mss,
        }
    }

    /// IW = min(10·MSS, max(2·MSS, 14600)) (RFC 6928 §2).
    fn initial(mss: usize) -> usize {
        (10 * mss).min((2 * mss).max(14600))
    }

    pub fn set_mss(&mut self, mss: usize) {
        self.mss = mss;
        self.cwnd = self.cwnd.max(mss);
    }

    /// New data was acknowledged: `acked` bytes, `flight` still in flight
    /// after it, `ack` the new SND.UNA.
    pub fn on_ack(&mut self, acked: usize, flight: usize, ack: Seq) -> Signal {
        self.dupacks = 0;
        if self.in_recovery {
            if self.recover.is_none_or(|r| ack > r) {
                // Full ACK: leave recovery (RFC 6582 §3.2 step 3, option 1).
                self.in_recovery = false;
                self.cwnd = self.ssthresh.min(flight.max(self.mss) + self.mss);
                return Signal::Nothing;
            }
            // Partial ACK: deflate by what was acknowledged, add back one
            // MSS, and retransmit the next hole.
            self.cwnd = self.cwnd.saturating_sub(acked) + self.mss.min(acked).max(1);
            return Signal::Retransmit;
        }
        if self.cwnd < self.ssthresh {
            self.cwnd += acked.min(self.mss);
        } else {
            self.cwnd += (self.mss * self.mss / self.cwnd).max(1);
        }
        Signal::Nothing
    }

    /// A duplicate ACK (RFC 5681 §2's definition, checked by the caller).
    pub fn on_dupack(&mut self, flight: usize, snd_max: Seq, una: Seq) -> Signal {
        self.dupacks += 1;
        if self.in_recovery {
            self.cwnd += self.mss;
            return Signal::Nothing;
        }
        // RFC 6582 §4.1: a third duplicate ACK for data below `recover`
        // belongs to the last recovery, not a new loss.
        if self.dupacks == 3 && self.recover.is_none_or(|r| una > r) {
            self.ssthresh = (flight / 2).max(2 * self.mss);
            self.cwnd = self.ssthresh + 3 * self.mss;
            self.recover = Some(snd_max);
            self.in_recovery = true;
            return Signal::Retransmit;
        }
        Signal::Nothing
    }

    /// The retransmission timer expired (RFC 5681 §3.1, eq. 4): one
    /// segment's loss window, and recovery is over.
    pub fn on_timeout(&mut self, flight: usize, snd_max: Seq) {
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = self.mss;
        self.in_recovery = false;
        self.dupacks = 0;
        self.recover = Some(snd_max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_window_is_ten_segments() {
        assert_eq!(NewReno::new(1460).cwnd, 14600);
        assert_eq!(NewReno::new(536).cwnd, 5360);
        assert_eq!(NewReno::new(8960).cwnd, 17920);
    }

    #[test]
    fn three_dupacks_then_partial_then_full() {
        let mut c = NewReno::new(1000);
        c.cwnd = 20_000;
        assert_eq!(c.on_dupack(20_000, Seq(21_000), Seq(1000)), Signal::Nothing);
        assert_eq!(c.on_dupack(20_000, Seq(21_000), Seq(1000)), Signal::Nothing);
        assert_eq!(
            c.on_dupack(20_000, Seq(21_000), Seq(1000)),
            Signal::Retransmit
        );
        assert_eq!((c.ssthresh, c.cwnd), (10_000, 13_000));
        c.on_dupack(20_000, Seq(21_000), Seq(1000));
        assert_eq!(c.cwnd, 14_000);
        assert_eq!(c.on_ack(5000, 15_000, Seq(6000)), Signal::Retransmit);
        assert!(c.in_recovery);
        assert_eq!(c.on_ack(15_000, 0, Seq(21_001)), Signal::Nothing);
        assert!(!c.in_recovery);
        assert_eq!(c.cwnd, 2000);
    }

    #[test]
    fn slow_start_then_avoidance_and_timeout() {
        let mut c = NewReno::new(1000);
        c.ssthresh = 12_000;
        c.cwnd = 10_000;
        c.on_ack(1000, 0, Seq(1));
        c.on_ack(1000, 0, Seq(2));
        assert_eq!(c.cwnd, 12_000);
        c.on_ack(1000, 0, Seq(3));
        assert_eq!(c.cwnd, 12_083);
        c.on_timeout(8000, Seq(9));
        assert_eq!((c.cwnd, c.ssthresh), (1000, 4000));
    }
}
