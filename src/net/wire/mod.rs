//! The wire formats the stack speaks, parsed into plain structs (`*Repr`)
//! that borrow the packet and emitted back into bytes: Ethernet and ARP,
//! IPv4, TCP, ICMP.
//! Nothing here holds state between packets; the state machines live in
//! `net::tcp` and `net::stack`.

pub mod ether;
pub mod icmp;
pub mod ipv4;
pub mod offload;
pub mod tcp;

/// The one's-complement sum of RFC 1071, not yet folded or inverted, so
/// that a pseudo-header and a payload can be summed apart.
///
/// Eight bytes at a time into a 64-bit accumulator: the one's-complement
/// sum is the same whatever the word size, once folded (RFC 1071 §2(B)),
/// and a data segment is summed once per sending.
pub fn sum(data: &[u8], acc: u32) -> u32 {
    let mut wide = u64::from(acc);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // Adding the two halves keeps 32 bits of headroom per step.
        wide += (w >> 32) + (w & 0xffff_ffff);
    }
    let mut rest = chunks.remainder().chunks_exact(2);
    for c in &mut rest {
        wide += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = rest.remainder() {
        wide += u64::from(*last) << 8;
    }
    // Fold to 16 bits so the result fits the u32 callers add to.
    while wide > 0xffff {
        wide = (wide & 0xffff) + (wide >> 16);
    }
    wide as u32
}

/// Folds and inverts a sum into the checksum field's value.
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The Internet checksum of `data` (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    fold(sum(data, 0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the sum of these words is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(super::checksum(&data), !0xddf2);
    }

    /// The wide sum agrees with the plain 16-bit one on every length and
    /// alignment of the tail.
    #[test]
    fn wide_sum_matches_the_word_by_word_sum() {
        fn plain(data: &[u8], mut acc: u64) -> u16 {
            let mut c = data.chunks_exact(2);
            for w in &mut c {
                acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
            }
            if let [b] = c.remainder() {
                acc += u64::from(*b) << 8;
            }
            while acc > 0xffff {
                acc = (acc & 0xffff) + (acc >> 16);
            }
            !(acc as u16)
        }
        let mut x: u32 = 0x1234_5678;
        let data: Vec<u8> = (0..3000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for len in (0..64).chain([1459, 1460, 1500, 2999, 3000]) {
            for acc in [0u32, 0xffff, 0x1_fffe] {
                assert_eq!(
                    super::fold(super::sum(&data[..len], acc)),
                    plain(&data[..len], u64::from(acc)),
                    "len {len} acc {acc:#x}"
                );
            }
        }
    }
}
