//! Initial sequence numbers per RFC 6528: ISN = M + F(4-tuple, secret),
//! M a clock ticking every 4 µs and F SipHash-1-3 keyed with a secret the
//! stack draws at start, so that sequence numbers of one 4-tuple grow
//! with time while those of another cannot be predicted from it.

use std::hash::Hasher;
use std::net::SocketAddrV4;

use siphasher::sip::SipHasher13;

use crate::net::seq::Seq;
use crate::net::Millis;

#[derive(Clone)]
pub struct IsnGen {
    key: [u8; 16],
}

impl IsnGen {
    pub fn new(key: [u8; 16]) -> IsnGen {
        IsnGen { key }
    }

    fn hash(&self, local: SocketAddrV4, remote: SocketAddrV4, salt: u8) -> u64 {
        let mut h = SipHasher13::new_with_key(&self.key);
        h.write(&local.ip().octets());
        h.write(&local.port().to_be_bytes());
        h.write(&remote.ip().octets());
        h.write(&remote.port().to_be_bytes());
        h.write_u8(salt);
        h.finish()
    }

    pub fn isn(&self, now: Millis, local: SocketAddrV4, remote: SocketAddrV4) -> Seq {
        let m = now.wrapping_mul(250) as u32;
        Seq(m.wrapping_add(self.hash(local, remote, 0) as u32))
    }

    /// A per-connection offset for timestamp values (RFC 7323 §5.4), so
    /// that they do not reveal the host's clock.
    pub fn ts_offset(&self, local: SocketAddrV4, remote: SocketAddrV4) -> u32 {
        self.hash(local, remote, 1) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_time_and_differs_by_tuple_and_key() {
        let a: SocketAddrV4 = "10.0.0.1:80".parse().unwrap();
        let b: SocketAddrV4 = "10.0.0.2:5000".parse().unwrap();
        let c: SocketAddrV4 = "10.0.0.2:5001".parse().unwrap();
        let g = IsnGen::new([7; 16]);
        assert_eq!(g.isn(1, a, b) - g.isn(0, a, b), 250);
        assert_ne!(g.isn(0, a, b), g.isn(0, a, c));
        assert_ne!(g.isn(0, a, b), IsnGen::new([8; 16]).isn(0, a, b));
    }
}
