//! Links behind one trait: whatever carries bare IPv4 packets to and from
//! the stack. The TUN device implements it in the driver; `MemoryLink` is
//! a pair of queues for tests.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};

/// A packet link. `recv` never blocks: `Ok(None)` when nothing waits.
pub trait Link {
    fn send(&mut self, packet: &[u8]) -> io::Result<()>;
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>>;
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
    fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        self.tx
            .lock()
            .map_err(|_| io::ErrorKind::BrokenPipe)?
            .push_back(packet.to_vec());
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut q = self.rx.lock().map_err(|_| io::ErrorKind::BrokenPipe)?;
        let Some(p) = q.pop_front() else {
            return Ok(None);
        };
        let n = p.len().min(buf.len());
        buf[..n].copy_from_slice(&p[..n]);
        Ok(Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_crosses() {
        let (mut a, mut b) = MemoryLink::pair();
        a.send(b"ping").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(b.recv(&mut buf).unwrap(), Some(4));
        assert_eq!(&buf[..4], b"ping");
        assert_eq!(a.recv(&mut buf).unwrap(), None);
    }
}
