//! The receive side's buffer: bytes in order waiting for the application,
//! and out-of-order ranges held until the hole before them fills. Ranges
//! are kept sorted and disjoint; their total is bounded by the window the
//! caller trims segments to.

use std::collections::VecDeque;

use crate::net::seq::Seq;

#[derive(Debug, Default)]
pub struct RxBuffer {
    /// In-order bytes not yet read by the application.
    pub ready: VecDeque<u8>,
    /// Out-of-order ranges, sorted by sequence number, disjoint.
    ooo: Vec<(Seq, Vec<u8>)>,
    /// The most recently received out-of-order range's start, reported
    /// first among SACK blocks (RFC 2018 §4).
    latest: Option<Seq>,
    /// Segments that arrived ahead of a hole, ever.
    pub out_of_order_segments: u64,
}

impl RxBuffer {
    pub fn has_holes(&self) -> bool {
        !self.ooo.is_empty()
    }

    pub fn ooo_bytes(&self) -> usize {
        self.ooo.iter().map(|(_, d)| d.len()).sum()
    }

    /// Takes `data` at `seq` (already trimmed to start at or after
    /// `rcv_nxt`); returns the new `rcv_nxt`.
    pub fn insert(&mut self, rcv_nxt: Seq, seq: Seq, data: &[u8]) -> Seq {
        if data.is_empty() {
            return rcv_nxt;
        }
        if seq == rcv_nxt {
            self.ready.extend(data);
            let mut next = rcv_nxt + data.len();
            // Pull in the ranges the new bytes reach.
            while let Some((s, _)) = self.ooo.first() {
                if *s > next {
                    break;
                }
                let (s, d) = self.ooo.remove(0);
                let skip = next - s;
                if skip < d.len() {
                    self.ready.extend(&d[skip..]);
                    next = s + d.len();
                }
            }
            if self.ooo.is_empty() {
                self.latest = None;
            }
            return next;
        }
        self.out_of_order_segments += 1;
        self.add_range(seq, data);
        rcv_nxt
    }

    /// Merges `[seq, seq+len)` with the ranges it touches.
    fn add_range(&mut self, seq: Seq, data: &[u8]) {
        let mut start = seq;
        let mut end = seq + data.len();
        let mut bytes = data.to_vec();
        let mut i = 0;
        while i < self.ooo.len() {
            let (s, d) = &self.ooo[i];
            let (s, e) = (*s, *s + d.len());
            if e < start || s > end {
                i += 1;
                continue;
            }
            // Overlapping or adjacent: build the union, preferring bytes
            // already held (they were first; a sender must not change them).
            let (_, d) = self.ooo.remove(i);
            let new_start = start.min(s);
            let new_end = end.max(e);
            let mut merged = vec![0u8; new_end - new_start];
            merged[start - new_start..start - new_start + bytes.len()].copy_from_slice(&bytes);
            merged[s - new_start..s - new_start + d.len()].copy_from_slice(&d);
            start = new_start;
            end = new_end;
            bytes = merged;
        }
        let at = self.ooo.partition_point(|(s, _)| *s < start);
        self.ooo.insert(at, (start, bytes));
        self.latest = Some(start);
    }

    /// Up to three SACK blocks, the latest first (RFC 2018 §4).
    pub fn sack_blocks(&self) -> [Option<(Seq, Seq)>; 3] {
        let mut out = [None; 3];
        let mut n = 0;
        let latest = self.latest.and_then(|l| {
            self.ooo
                .iter()
                .find(|(s, d)| l.in_range(*s, *s + d.len().max(1)))
        });
        if let Some((s, d)) = latest {
            out[0] = Some((*s, *s + d.len()));
            n = 1;
        }
        for (s, d) in &self.ooo {
            if n == 3 {
                break;
            }
            let b = Some((*s, *s + d.len()));
            if out[0] != b {
                out[n] = b;
                n += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_fill_in_any_order() {
        let mut b = RxBuffer::default();
        let base = Seq(u32::MAX - 2);
        let mut nxt = base;
        nxt = b.insert(nxt, base + 6, b"ghi");
        nxt = b.insert(nxt, base + 3, b"def");
        assert_eq!(nxt, base);
        assert_eq!(b.sack_blocks()[0], Some((base + 3, base + 9)));
        nxt = b.insert(nxt, base + 10, b"k");
        assert_eq!(b.sack_blocks()[0], Some((base + 10, base + 11)));
        assert_eq!(b.sack_blocks()[1], Some((base + 3, base + 9)));
        nxt = b.insert(nxt, base, b"abc");
        assert_eq!(nxt, base + 9);
        nxt = b.insert(nxt, base + 9, b"j");
        assert_eq!(nxt, base + 11);
        assert!(!b.has_holes());
        assert_eq!(b.ready.iter().copied().collect::<Vec<_>>(), b"abcdefghijk");
    }

    #[test]
    fn overlaps_keep_the_first_bytes() {
        let mut b = RxBuffer::default();
        let mut nxt = Seq(0);
        nxt = b.insert(nxt, Seq(2), b"CD");
        nxt = b.insert(nxt, Seq(1), b"xxxE");
        assert_eq!(b.ooo_bytes(), 4);
        nxt = b.insert(nxt, Seq(0), b"AB");
        assert_eq!(nxt, Seq(5));
        assert_eq!(b.ready.iter().copied().collect::<Vec<_>>(), b"ABCDE");
    }
}
