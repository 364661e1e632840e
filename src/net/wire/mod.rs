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
pub fn sum(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
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
}
