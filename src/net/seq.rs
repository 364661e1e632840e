//! TCP sequence numbers: 32-bit values compared modulo 2^32 (RFC 9293
//! §3.4), so that a stream may wrap without any comparison going wrong.

use std::cmp::Ordering;
use std::ops::{Add, Sub};

/// A sequence number. Ordering is the RFC's: `a < b` when `b - a`, taken
/// as a signed 32-bit distance, is positive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Seq(pub u32);

impl Seq {
    /// `self` lies in `[lo, hi)`.
    pub fn in_range(self, lo: Seq, hi: Seq) -> bool {
        lo <= self && self < hi
    }
}

impl PartialOrd for Seq {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Seq {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.0.wrapping_sub(other.0) as i32).cmp(&0)
    }
}

impl Add<usize> for Seq {
    type Output = Seq;
    fn add(self, n: usize) -> Seq {
        Seq(self.0.wrapping_add(n as u32))
    }
}

impl Sub for Seq {
    type Output = usize;
    /// The distance from `rhs` up to `self`; callers only subtract an
    /// earlier number from a later one (a negative distance is a bug the
    /// debug build reports).
    fn sub(self, rhs: Seq) -> usize {
        let d = self.0.wrapping_sub(rhs.0) as i32;
        debug_assert!(d >= 0, "sequence distance {d} < 0");
        d.max(0) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::Seq;

    #[test]
    fn wraps() {
        let a = Seq(u32::MAX - 1);
        let b = a + 4;
        assert_eq!(b, Seq(2));
        assert!(a < b);
        assert_eq!(b - a, 4);
        assert!(Seq(0).in_range(a, b));
        assert!(!b.in_range(a, b));
    }
}
