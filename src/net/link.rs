//! Links behind one trait: whatever carries bare IPv4 packets to and from
//! the stack. The drivers (`models::usertcp`) run on any of them: a TUN
//! device, or an Ethernet interface through `AF_PACKET` with `net::ether`
//! doing ARP beneath; `MemoryLink` is a pair of queues for tests. A link
//! may keep timers of its own (ARP's retries): the driver fires them with
//! `poll` when `poll_at` says, as it does the stack's.
//!
//! Every method takes `&self`: the threaded driver reads on one thread and
//! sends from three, so a link with state guards it inside, for no longer
//! than one call.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};

use super::ether::EtherView;
use super::{Millis, Packet};

/// A packet link. Nothing blocks: `recv` says `Ok(None)` when nothing
/// waits, and `send` drops a packet the link has no room for, as a wire
/// would (the stack's retransmissions recover it).
pub trait Link {
    /// One IPv4 packet out.
    fn send(&self, now: Millis, packet: &[u8]) -> io::Result<()>;
    /// The next IPv4 packet, read into `buf` and returned as the part of
    /// it that holds the packet (a link header stays in front, unseen).
    fn recv<'b>(&self, now: Millis, buf: &'b mut [u8]) -> io::Result<Option<&'b [u8]>>;
    /// The largest IPv4 packet the link carries.
    fn mtu(&self) -> usize;
    /// Fires the link's own timers due by `now`.
    fn poll(&self, _now: Millis) -> io::Result<()> {
        Ok(())
    }
    /// When `poll` next has something to do; `None` for never.
    fn poll_at(&self) -> Option<Millis> {
        None
    }
    /// The link finishes TCP checksums and cuts long TCP segments into
    /// MSS-sized ones ([`Packet::csum_partial`], [`Packet::gso_size`]): the
    /// stack is then configured to leave both to it.
    fn offloads(&self) -> bool {
        false
    }
    /// One packet of `Stack::transmit_packet`, with its instructions. A
    /// link that does not offload is only ever given finished packets.
    fn send_packet(&self, now: Millis, p: &Packet) -> io::Result<()> {
        self.send(now, &p.bytes)
    }
    /// STATUS of the Ethernet beneath, for a link that has one.
    fn ether(&self) -> Option<EtherView> {
        None
    }
}

type Queue = Arc<Mutex<VecDeque<Vec<u8>>>>;

/// One end of an in-memory wire.
pub struct MemoryLink {
    tx: Queue,
    rx: Queue,
}

impl MemoryLink {
    /// Two ends: what one sends the other receives.
    pub fn pair() -> (MemoryLink, MemoryLink) {
        let a: Queue = Arc::default();
        let b: Queue = Arc::default();
        (
            MemoryLink {
                tx: a.clone(),
                rx: b.clone(),
            },
            MemoryLink { tx: b, rx: a },
        )
    }
}

impl Link for MemoryLink {
    fn send(&self, _now: Millis, packet: &[u8]) -> io::Result<()> {
        self.tx
            .lock()
            .map_err(|_| io::ErrorKind::BrokenPipe)?
            .push_back(packet.to_vec());
        Ok(())
    }

    fn recv<'b>(&self, _now: Millis, buf: &'b mut [u8]) -> io::Result<Option<&'b [u8]>> {
        let mut q = self.rx.lock().map_err(|_| io::ErrorKind::BrokenPipe)?;
        let Some(p) = q.pop_front() else {
            return Ok(None);
        };
        let n = p.len().min(buf.len());
        buf[..n].copy_from_slice(&p[..n]);
        Ok(Some(&buf[..n]))
    }

    fn mtu(&self) -> usize {
        1500
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_crosses() {
        let (a, b) = MemoryLink::pair();
        a.send(0, b"ping").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(b.recv(0, &mut buf).unwrap(), Some(&b"ping"[..]));
        assert_eq!(a.recv(0, &mut buf).unwrap(), None);
        assert_eq!(a.poll_at(), None);
    }
}
