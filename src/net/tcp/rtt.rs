//! The retransmission timer's estimator (RFC 6298): smoothed RTT and its
//! variance from samples the caller has already filtered by Karn's rule,
//! and the exponential backoff of §5.5.

/// Milliseconds of the stack's clock.
use crate::net::Millis;

#[derive(Debug, Clone)]
pub struct Rtt {
    /// Smoothed RTT and variance, in 1/8 ms, once a sample was taken.
    srtt8: Option<u64>,
    rttvar8: u64,
    /// The current timeout, backoff included.
    rto: Millis,
    min: Millis,
    max: Millis,
}

impl Rtt {
    pub fn new(initial: Millis, min: Millis, max: Millis) -> Rtt {
        Rtt {
            srtt8: None,
            rttvar8: 0,
            rto: initial,
            min,
            max,
        }
    }

    pub fn rto(&self) -> Millis {
        self.rto
    }

    /// The smoothed RTT in ms, once measured.
    pub fn srtt(&self) -> Option<Millis> {
        self.srtt8.map(|s| s / 8)
    }

    pub fn rttvar(&self) -> Millis {
        self.rttvar8 / 8
    }

    /// A new measurement (§2.2, §2.3); it also ends any backoff.
    pub fn sample(&mut self, r: Millis) {
        let r8 = r.max(1) * 8;
        match self.srtt8 {
            None => {
                self.srtt8 = Some(r8);
                self.rttvar8 = r8 / 2;
            }
            Some(s) => {
                self.rttvar8 = (3 * self.rttvar8 + s.abs_diff(r8)) / 4;
                self.srtt8 = Some((7 * s + r8) / 8);
            }
        }
        let s = self.srtt8.unwrap_or(r8);
        // RTO = SRTT + max(G, 4·RTTVAR), G being the 1 ms clock.
        let rto = (s + (4 * self.rttvar8).max(8)) / 8;
        self.rto = rto.clamp(self.min, self.max);
    }

    /// The timer expired: double it (§5.5), up to the maximum.
    pub fn backoff(&mut self) {
        self.rto = (self.rto * 2).min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::Rtt;

    #[test]
    fn first_sample_and_smoothing() {
        let mut r = Rtt::new(1000, 200, 60_000);
        assert_eq!(r.rto(), 1000);
        r.sample(100);
        // SRTT 100, RTTVAR 50: RTO = 100 + 200 = 300.
        assert_eq!((r.srtt(), r.rttvar(), r.rto()), (Some(100), 50, 300));
        r.sample(100);
        // RTTVAR 3/4·50 = 37.5, SRTT 100: 100 + 150 = 250.
        assert_eq!(r.rto(), 250);
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_a_sample_ends_it() {
        let mut r = Rtt::new(1000, 200, 5000);
        r.backoff();
        assert_eq!(r.rto(), 2000);
        r.backoff();
        r.backoff();
        assert_eq!(r.rto(), 5000);
        r.sample(10);
        assert_eq!(r.rto(), 200);
    }
}
